"""Bytes a product read in place costs the provider's quota, counted by polarscan (the S3 client's
GETs exactly, GDAL's TIFF range reads estimated from the tiles read) against what the moto S3
server actually sent (its request log), GDAL's /vsicurl/ cache off."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from polarscan.common.meter import metered
from scanner.mosaic.config import MosaicConfig

CONFIG = MosaicConfig(block=8, resolution_m=2560.0, threads=1)
TOLERANCE = 0.15


@pytest.fixture
def no_cache(s3_env, monkeypatch):
    monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", "/vsis3/eodata/")
    return s3_env


def _sent(server, key: str) -> tuple[int, int]:
    """(all, TIFF) body bytes the server sent for objects under ``key`` (their listing too)."""
    log = [e for e in server.log() if key in e["path"] or key in unquote(e["query"])]
    return sum(e["bytes"] for e in log), sum(e["bytes"] for e in log if ".tiff" in e["path"])


@pytest.mark.parametrize("which", ["twin", "average"])
def test_counted_bytes_match_what_the_server_sent(no_cache, uploaded, tmp_path, which):
    """The twin is read from its 1/4 overviews; the AVERAGE twin fails its overview check and
    is read at full resolution (long sequential reads: GDAL reads ahead)."""
    from scanner.mosaic import build_mosaic

    key = uploaded.twin_key if which == "twin" else uploaded.average_key
    path = f"/vsis3/eodata/{key}"
    no_cache.reset_log()
    with metered() as meter:
        build_mosaic([path], tmp_path / "m.tif", CONFIG)
    sent, sent_tiff = _sent(no_cache, key)
    assert sent_tiff > 0
    # the XML and the listing come through polarscan's own S3 client: counted to the byte
    assert meter.measured == sent - sent_tiff
    # the TIFF reads are GDAL's: estimated from the blocks read and the file's layout
    assert abs(meter.estimated / sent_tiff - 1) <= TOLERANCE, (meter.estimated, sent_tiff)
    assert abs(meter.total / sent - 1) <= TOLERANCE
    # all of it under the product's path, so a mosaic of several products tells them apart
    assert set(meter.by_key) == {path} and sum(meter.of(path)) == meter.total


def test_a_product_on_the_mount_counts_like_over_s3(no_cache, uploaded, tmp_path):
    """The eodata mount (a folder: here the twin as uploaded) reads the same blocks; whether
    CDSE counts mount reads is not known, so they are counted the same way (the XML files read
    to the byte: on a folder the reader reads both annotations)."""
    from scanner.mosaic import build_mosaic

    no_cache.reset_log()
    with metered() as over_s3:
        build_mosaic([f"/vsis3/eodata/{uploaded.twin_key}"], tmp_path / "a.tif", CONFIG)
    listings = sum(e["bytes"] for e in no_cache.log() if "list-type" in e["query"])
    with metered() as mount:
        build_mosaic([uploaded.twin], tmp_path / "b.tif", CONFIG)
    xml = sum(f.stat().st_size for f in uploaded.twin.rglob("*") if f.suffix in (".xml", ".safe"))
    assert listings > 0 and mount.measured == xml
    assert mount.estimated == over_s3.estimated > 0
    assert set(mount.by_key) == {str(uploaded.twin)}
