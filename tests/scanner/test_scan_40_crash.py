"""A scan killed with SIGKILL mid-way, then run again, gives exactly the results of an
uninterrupted scan: the next run takes over the dead run's lock and claims by itself, and no
half-written file or duplicated row is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.scan_helpers import demo_cache, layer_counts, run_scan, scan_model

__all__ = ["demo_cache", "scan_model"]
REPO = Path(__file__).resolve().parents[2]


def _windows(out: Path):
    import pyogrio

    df = pyogrio.read_dataframe(out / "detections.gpkg", layer="windows")
    df = df.sort_values(["mosaic_id", "window_id"]).reset_index(drop=True)
    return df[["mosaic_id", "window_id", "probability"]]


def test_sigkill_mid_run_then_rerun_completes(demo_cache, scan_model, tmp_path, caplog):
    """The reduced form, in the default suite: one scan killed with SIGKILL once its first
    mosaic exists, then a rerun in this process: the dead run's lock is taken over, its run
    marked abandoned, every scene processed once, no duplicated row, no temporary left."""
    from scanner.demo.source import demo_products
    from scanner.record import Record
    from tests.support.scan_process import leftovers, start_scan, stop, wait_for_mosaic

    demo_products()
    common = ["--source", "demo", "--model", str(scan_model), "--sequential"]
    out = tmp_path / "killed"
    proc = start_scan(out, *common, log=tmp_path / "stderr.txt")
    wait_for_mosaic(proc, out)
    assert stop(proc, signal.SIGKILL) == -signal.SIGKILL
    with Record.open(out) as rec:
        dead = rec.lock_holder()
        assert dead is not None and rec.claimed()  # what a SIGKILL leaves: nothing released
        assert rec.counts()["processed"] == 0

    rc, s, err = run_scan(*common, "--out", str(out))
    assert rc == 0, err
    assert "taking over the stale scan lock" in caplog.text
    with Record.open(out) as rec:
        assert rec.counts()["processed"] == len(rec.scenes()) == s["counts"]["processed"]
        runs = {r["run_id"]: r["status"] for r in rec.runs()}
        assert runs == {dead.run_id: "abandoned", s["run_id"]: "ok"}
        assert rec.claimed() == {} and rec.lock_holder() is None
    assert layer_counts(out / "detections.gpkg")["windows"] == s["counts"]["windows"]
    assert leftovers(out) == []


@pytest.mark.slow  # two TensorFlow start-ups in subprocesses: ~1-2 min on the shared machine
def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(demo_cache, scan_model, tmp_path):
    common = ["--source", "demo", "--model", str(scan_model), "--sequential"]
    ref = tmp_path / "reference"
    rc, s_ref, err = run_scan(*common, "--out", str(ref))
    assert rc == 0, err

    out = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "-q", "scan", *common, "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        t0 = time.monotonic()
        # kill it once the mosaic exists: after search/claims, before the outputs are published
        while not list(out.glob("mosaics/*/*_rgb.tif")):
            assert proc.poll() is None, "the scan ended before it could be killed"
            assert time.monotonic() - t0 < 300, "the scan never reached the mosaic stage"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    from scanner.record import Record

    with Record.open(out) as rec:
        assert rec.counts()["processed"] == 0  # killed before anything was published
        assert rec.lock_holder() is not None  # the dead run's lock is still there

    rc, s, err = run_scan(*common, "--out", str(out))
    assert rc == 0, err
    assert s["counts"]["processed"] == s_ref["counts"]["processed"]
    assert layer_counts(out / "detections.gpkg")["windows"] == s_ref["counts"]["windows"]
    a, b = _windows(ref), _windows(out)
    assert list(a["window_id"]) == list(b["window_id"])
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=1e-6)
    assert not list(out.rglob(".*.tmp"))  # no temporary leftovers
