"""``scan --access s3`` end to end: the CDSE source on a loopback OData replay whose records'
``S3Path``s point at products uploaded to the moto S3 server. The scene (an original and its
COG twin: the twin is kept) is read in place — nothing under ``OUT/downloads`` — and the usual
outputs are written. Faults (a missing object, a 403, a dropped connection mid-range, a
throttling 503) each fail the scene clearly, recorded with its error; a rerun after the fault is
removed finishes the job."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.s3.conftest import odata_records
from tests.support.cdse_replay import cdse_env, serve_pages
from tests.support.loopback import LoopbackServer
from tests.support.scan_helpers import layer_counts, run_scan, scan_model

__all__ = ["scan_model"]


@pytest.fixture
def catalogue(s3_env, uploaded, test_data, monkeypatch):
    """The loopback OData server listing the uploaded original and twin; the S3 env set; GDAL's
    in-process /vsicurl/ cache off (a rerun in this process must not see an earlier run's
    bytes); GDAL retries a failed range once, not three times."""
    with LoopbackServer(max_lifetime=600) as srv:
        cdse_env(monkeypatch, srv, user=None)  # reading in place needs S3 keys, no login
        page = odata_records(test_data, uploaded)
        # the twin only, as CDSE lists scenes older than a year (see the xfail test below)
        page["value"] = [r for r in page["value"] if r["Name"].endswith("_COG.SAFE")]
        serve_pages(srv, [page])
        monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", "/vsis3/eodata/")
        monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
        yield srv


def _scan(out: Path, model: Path):
    return run_scan(
        "--source", "cdse", "--access", "s3", "--bbox", "60", "74", "110", "84",
        "--since", "2022-11-29", "--until", "2022-12-01", "--model", str(model),
        "--out", str(out), "--sequential", "--saliency", "none",
    )  # fmt: skip


def _record(out: Path):
    from scanner.record import Record

    with Record.open(out) as rec:
        return rec.scenes()


def _in_place(out: Path) -> None:
    downloads = out / "downloads"
    assert not downloads.exists() or not any(downloads.rglob("*")), list(downloads.rglob("*"))


def test_scan_over_s3_reads_the_twin_in_place(catalogue, s3_env, uploaded, scan_model, tmp_path):
    out = tmp_path / "out"
    s3_env.reset_log()
    rc, s, err = _scan(out, scan_model)
    assert rc == 0, err
    assert catalogue.hits("/odata/v1/Products") >= 1
    c = s["counts"]
    assert (c["found"], c["processed"], c["failed"]) == (1, 1, 0), s
    [scene] = _record(out)
    assert scene.status == "processed" and Path(scene.outputs["rgb"]).is_file()
    _in_place(out)
    assert layer_counts(out / "detections.gpkg")["scenes"] == 1
    # the twin was read (not the original), its TIFFs from overviews: a fraction of their bytes
    assert (
        s3_env.bytes_sent(uploaded.twin_key) > 0 and s3_env.bytes_sent(uploaded.original_key) == 0
    )
    tiffs = sum(f.stat().st_size for f in (uploaded.twin / "measurement").iterdir())
    assert s3_env.bytes_sent(".tiff") < 0.3 * tiffs
    # the monthly quota: the record has what the scene cost (the listing, the XML and the
    # TIFF reads, the last estimated), close to what the server sent for it
    from scanner.record import Record
    from scanner.scan.quota import this_month

    with Record.open(out) as rec:
        [usage] = rec.usage()
    assert (usage.month, usage.source, usage.scenes) == (this_month(), "cdse", 1)
    assert 0 < usage.estimated < usage.bytes
    assert abs(usage.bytes / s3_env.bytes_sent() - 1) < 0.15, (usage, s3_env.bytes_sent())
    assert s["quota"]["used_gb"] == round(usage.bytes / 1e9, 3) and not s["notices"]


FAULTS = {
    "missing object": (None, r"-hv-.*-cog\.tiff is missing under s3://eodata/.*access: download"),
    "403": ({"match": "calibration-s1a-ew-grd-hh", "status": 403, "times": 99},
            r"calibration-s1a-ew-grd-hh.*(403|AccessDenied)"),
    "dropped mid-range": ({"match": "-hh-", "drop_after": 1000, "times": 99, "ranged": True},
                          r"-hh-.*-cog\.tiff (cannot be opened|failed)"),
    "throttling 503": ({"match": "manifest.safe", "status": 503, "times": 99}, "SlowDown"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_fails_the_scene_clearly_and_a_rerun_finishes(
    name, catalogue, s3_env, s3, uploaded, scan_model, tmp_path
):
    import re

    fault, message = FAULTS[name]
    out = tmp_path / "out"
    removed = None
    if fault is None:  # the twin's HV measurement is not in the bucket
        prefix = f"{uploaded.twin_key}/measurement/"
        listing = s3.client().list_objects_v2(Bucket="eodata", Prefix=prefix)["Contents"]
        removed = next(o["Key"] for o in listing if "-hv-" in o["Key"])
        data = s3.client().get_object(Bucket="eodata", Key=removed)["Body"].read()
        s3.delete(removed)
    else:
        s3_env.set_faults([fault])
    try:
        rc, s, err = _scan(out, scan_model)
    finally:
        s3_env.set_faults([])
        if removed is not None:
            s3.client().put_object(Bucket="eodata", Key=removed, Body=data)
    assert rc == 1, err
    c = s["counts"]
    assert (c["found"], c["processed"], c["failed"]) == (1, 0, 1), s
    [failure] = s["failures"]
    assert re.search(message, failure["error"]), failure["error"]
    assert "testing-secret" not in failure["error"]  # never the keys
    [scene] = _record(out)
    assert scene.status == "failed" and scene.attempts == 1
    assert scene.last_error == failure["error"]
    _in_place(out)

    rc, s, err = _scan(out, scan_model)  # the fault removed: the rerun finishes the job
    assert rc == 0, err
    assert (s["counts"]["processed"], s["counts"]["failed"]) == (1, 0), s
    [scene] = _record(out)
    assert scene.status == "processed" and Path(scene.outputs["rgb"]).is_file()
    assert layer_counts(out / "detections.gpkg")["scenes"] == 1
    _in_place(out)


def test_an_original_and_its_twin_are_one_scene(s3_env, uploaded, test_data, monkeypatch):
    from scanner.access.eodata import configure_access
    from scanner.sources.cdse import CDSESource

    with LoopbackServer(max_lifetime=120) as srv:
        cdse_env(monkeypatch, srv, user=None)
        serve_pages(srv, [odata_records(test_data, uploaded)])
        source = CDSESource()
        configure_access(source, "s3")
        scenes = list(source.search(None, datetime(2022, 11, 29, tzinfo=UTC),
                                    datetime(2022, 12, 1, tzinfo=UTC)))  # fmt: skip
    assert len(scenes) == 1 and scenes[0].attrs["cog"] is True
