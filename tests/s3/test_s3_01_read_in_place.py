"""Products read in place from a moto S3 server on loopback: the SAFE reader over /vsis3/,
radiometry from RMS overviews (the mosaic of a COG twin read from overviews matches the mosaic of
the original read at full resolution), an AVERAGE overview refused, and faults as clear errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import rasterio

from polarscan.common.errors import ProcessingError
from scanner.mosaic.config import MosaicConfig
from scanner.safe import open_product
from scanner.safe.radiometry import choose_overview, mean_dn2_blocks

BLOCK = 8  # radar pixels per block at 320 m (scale 1/8): 2560 m output pixels
CONFIG = dict(block=BLOCK, resolution_m=2560.0, threads=1)


NOT_ALIGNED = pytest.mark.xfail(
    strict=True,
    reason="not done: GDAL's COG overview footprints (each level's size halved, rounded down) "
    "drift from uniform full-resolution blocks; block edges are not yet aligned to the "
    "overview's pixels in both paths (issue 10 item 4)",
)


def vsi(key: str) -> str:
    return f"/vsis3/eodata/{key}"


def test_choose_overview_table():
    assert choose_overview([2, 4, 8, 16], 12) == 4  # 8 does not tile 12
    assert choose_overview([2, 4, 8, 16], 16) == 8  # 16/16 = 1 < 1.5
    assert choose_overview([2, 4, 8], 3) is None  # 3/2 = 1.5 but 2 does not tile 3
    assert choose_overview([2, 4], 2) is None  # one pixel per block: too few
    assert choose_overview([], 12) is None


def test_remote_product_reads_like_the_local_one(s3_env, uploaded):
    s3_env.reset_log()
    with open_product(vsi(uploaded.twin_key)) as remote, open_product(uploaded.twin) as local:
        assert remote.name == local.name and remote.shape == local.shape
        assert remote.file("measurement", "HV").endswith("-cog.tiff")
        assert remote.footprint.equals(local.footprint)
        w = rasterio.windows.Window(100, 200, 64, 32)
        assert np.array_equal(remote.read_dn("HH", w), local.read_dn("HH", w))
    # nothing was written by the reader: every GET was a read
    assert {e["method"] for e in s3_env.log()} == {"GET"}


@NOT_ALIGNED
def test_overview_block_means_match_full_resolution(s3_env, uploaded):
    """Squared RMS overview values summed over a block = the block mean of DN² (same footprint)."""
    with open_product(vsi(uploaded.twin_key)) as p:
        fast = mean_dn2_blocks(p, "HV", BLOCK)
        assert p.overview_checks == {("HV", 4): None}
        slow = mean_dn2_blocks(p, "HV", BLOCK, overviews=False)
    ok = np.isfinite(slow) & np.isfinite(fast)
    assert ok.mean() > 0.95
    rel = np.abs(fast[ok] / slow[ok] - 1)
    assert np.median(rel) < 0.01 and np.quantile(rel, 0.99) < 0.05


def _rgb(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.transform, ds.crs, ds.shape


@NOT_ALIGNED
def test_mosaic_of_the_twin_from_overviews_matches_the_original(s3_env, uploaded, tmp_path):
    from scanner.mosaic import build_mosaic

    cfg = MosaicConfig(**CONFIG)
    s3_env.reset_log()
    a = build_mosaic([vsi(uploaded.twin_key)], tmp_path / "twin.tif", cfg)
    read = s3_env.bytes_sent()
    b = build_mosaic([uploaded.original], tmp_path / "orig.tif", cfg)
    (ra, ta, ca, sa), (rb, tb, cb, sb) = _rgb(a.path), _rgb(b.path)
    assert (ta, ca, sa) == (tb, cb, sb)  # geolocation unchanged
    valid = (ra != 0).any(axis=0) & (rb != 0).any(axis=0)
    assert valid.mean() > 0.2
    diff = np.abs(ra.astype(int) - rb.astype(int)).max(axis=0)[valid]
    assert (diff <= 1).mean() >= 0.99, np.bincount(diff)[:8]
    # in place, and from the 1/4 overviews: a fraction of the twin's bytes went over the wire
    assert read < 0.35 * uploaded.twin_bytes, (read, uploaded.twin_bytes)


def test_an_average_overview_fails_the_check_and_full_resolution_is_read(s3_env, uploaded, caplog):
    caplog.set_level(logging.WARNING, "scanner.safe.radiometry")
    with open_product(vsi(uploaded.average_key)) as p:
        got = mean_dn2_blocks(p, "HH", BLOCK)
        [(key, why)] = p.overview_checks.items()
        assert key == ("HH", 4) and why and "off the mean DN²" in why
        ref = mean_dn2_blocks(p, "HH", BLOCK, overviews=False)
    assert np.allclose(got, ref, equal_nan=True)  # the fallback is the full-resolution path
    assert "not using the 1/4 overview" in caplog.text


@pytest.mark.parametrize(("fault", "message"), [
    ({"match": "-hv-", "status": 403, "times": 99}, "cannot be opened|refused"),
    ({"match": "-hh-", "status": 503, "times": 99, "ranged": True}, "reading|failed"),
    ({"match": "-hh-", "drop_after": 1000, "times": 99, "ranged": True}, "reading|failed"),
    ({"match": "manifest.safe", "status": 503, "times": 99}, "SlowDown"),
])  # fmt: skip
def test_faults_are_processing_errors(s3_env, uploaded, fault, message, monkeypatch):
    from scanner.mosaic import build_mosaic

    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    s3_env.set_faults([fault])
    with pytest.raises(ProcessingError, match=message) as e:
        build_mosaic([vsi(uploaded.twin_key)], "/nonexistent/never.tif", MosaicConfig(**CONFIG))
    assert "testing-secret" not in str(e.value)


def test_missing_object_is_a_processing_error(s3_env, uploaded, s3):
    from scanner.mosaic import build_mosaic

    key = f"{uploaded.average_key}/annotation/calibration/"
    name = next(n for n in s3.client().list_objects_v2(Bucket="eodata", Prefix=key)["Contents"]
                if "calibration-s1a-ew-grd-hv" in n["Key"])["Key"]  # fmt: skip
    data = s3.client().get_object(Bucket="eodata", Key=name)["Body"].read()
    s3.delete(name)
    try:
        with pytest.raises(Exception, match="calibration") as e:
            build_mosaic([vsi(uploaded.average_key)], "/nonexistent/x.tif", MosaicConfig(**CONFIG))
        assert "missing" in str(e.value)
    finally:
        s3.client().put_object(Bucket="eodata", Key=name, Body=data)
