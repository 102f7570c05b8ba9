"""SIGTERM (what ``timeout`` and systemd send) and SIGINT (Ctrl-C) to a real scan mid-way: the
scan unwinds, releases the scenes it was working on and its lock, records the run as
interrupted, leaves no temporary file, and exits 143 / 130; the next run picks the scenes up at
once (no claim to wait out) and completes the job."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.scan_helpers import demo_cache, layer_counts, run_scan, scan_model
from tests.support.scan_process import leftovers, start_scan, stop, wait_for_mosaic

__all__ = ["demo_cache", "scan_model"]


@pytest.fixture(scope="module")
def common(scan_model, demo_cache) -> tuple[str, ...]:
    args = ("--source", "demo", "--model", str(scan_model))
    from scanner.demo.source import demo_products

    demo_products()  # generated here, not in the subprocess we stop
    return args


def _interrupted_then_rerun(common, mode: tuple[str, ...], sig, code: int, tmp_path) -> None:
    from scanner.record import Record

    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    proc = start_scan(out, *common, *mode, log=log)
    wait_for_mosaic(proc, out)
    rc = stop(proc, sig)
    err = log.read_text()
    assert rc == code, err
    assert f"interrupted by {signal.Signals(sig).name}" in err, err
    assert "released" in err  # the run says what became of its scenes

    with Record.open(out) as rec:
        [run] = rec.runs()
        assert run["status"] == "interrupted" and run["finished"]
        assert rec.claimed() == {} and rec.lock_holder() is None  # nothing to wait out
        assert rec.counts()["processed"] == 0 and rec.counts()["failed"] == 0
        assert all(r.attempts == 0 for r in rec.scenes())  # an interruption costs no attempt
    assert leftovers(out) == []

    t0 = time.monotonic()
    rc, s, err = run_scan(*common, "--sequential", "--out", str(out))
    assert rc == 0, err
    assert s["counts"]["failed"] == 0 and s["counts"]["processed"] == s["counts"]["found"]
    assert "claimed by another run" not in err
    assert layer_counts(out / "detections.gpkg")["windows"] == s["counts"]["windows"]
    assert time.monotonic() - t0 < 300
    assert leftovers(out) == []


def test_sigterm_mid_scan(common, tmp_path):
    _interrupted_then_rerun(common, ("--sequential",), signal.SIGTERM, 143, tmp_path)


@pytest.mark.slow  # another TensorFlow start-up in a subprocess
def test_sigint_mid_scan(common, tmp_path):
    _interrupted_then_rerun(common, ("--sequential",), signal.SIGINT, 130, tmp_path)


@pytest.mark.slow  # a LocalCluster whose worker starts TensorFlow too
def test_sigterm_mid_scan_on_a_local_cluster_stops_the_workers(common, tmp_path):
    """The default mode: SIGTERM to the scan process alone (as ``timeout`` sends it) also stops
    its LocalCluster's worker processes."""
    import psutil

    from scanner.record import Record

    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    proc = start_scan(out, *common, "--workers", "1", log=log)
    wait_for_mosaic(proc, out)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "no worker process"
    rc = stop(proc, signal.SIGTERM)
    assert rc == 143, log.read_text()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"worker processes left running: {alive}"
    with Record.open(out) as rec:
        assert rec.runs()[0]["status"] == "interrupted" and rec.claimed() == {}
    assert leftovers(out) == []
    rc, s, err = run_scan(*common, "--sequential", "--out", str(out))
    assert rc == 0 and s["counts"]["processed"] == s["counts"]["found"], err


def test_sigterm_writes_the_finished_mosaics_first(common, tmp_path):
    """The demo's first mosaic has finished and waits in a part-filled publish batch when the
    second one's mosaic appears (a sequential run does one mosaic after the other); SIGTERM then
    writes the first before the run unwinds: it is processed, only the second is redone."""
    from scanner.record import Record

    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    proc = start_scan(out, *common, "--sequential", log=log)
    t0 = time.monotonic()
    while len(list(out.glob("mosaics/*/*_rgb.tif"))) < 2:
        assert proc.poll() is None, "the scan ended before it could be stopped"
        assert time.monotonic() - t0 < 300, "the scan never reached its second mosaic"
        time.sleep(0.05)
    assert not (out / "detections.gpkg").exists()  # the first mosaic waits in the batch
    rc = stop(proc, signal.SIGTERM)
    assert rc == 143, log.read_text()
    with Record.open(out) as rec:
        assert rec.runs()[0]["status"] == "interrupted" and rec.claimed() == {}
        done = rec.scenes(status="processed")
        total = len(rec.scenes())
    assert 0 < len(done) < total
    first = {Path(s.outputs["rgb"]).parent.name for s in done}
    assert len(first) == 1
    assert layer_counts(out / "detections.gpkg")["scenes"] == len(done)
    assert leftovers(out) == []
    rc, s, err = run_scan(*common, "--sequential", "--out", str(out))
    assert rc == 0, err
    assert s["counts"]["processed"] == total - len(done)
