"""A dask worker process killed mid-chain (SIGKILL from the stage itself, so the kill lands while
the task runs; or from outside, on a real scan): the chain it ran is retried once on a fresh
worker, fails with a message naming the stage and the cause when the worker dies again, and the
other chains finish."""

from __future__ import annotations

import signal

import pytest

from polarscan.common.errors import ProcessingError
from tests.support.scan_helpers import demo_cache, run_scan, scan_model
from tests.support.scan_process import leftovers, start_scan, wait_for_mosaic

__all__ = ["demo_cache", "scan_model"]


def _run(jobs, folder):
    from scanner.scan.runner import ClusterSpec, Runner, Stage
    from tests.support.scan_stages import kill_own_worker

    done, failed = {}, {}
    # two chains in flight on two workers: a death touches only the chain it kills and, at
    # most once, a chain sharing the worker the retry lands on (retried once, by default)
    with Runner(ClusterSpec(workers=2, max_in_flight=2)) as runner:
        runner.run(
            jobs,
            lambda job: job,
            [Stage("work", kill_own_worker)],
            str(folder),
            key=lambda job: f"job{job}",
            on_done=lambda job, res: done.__setitem__(job, res),
            on_failed=lambda job, stage, err: failed.__setitem__(job, (stage, err)),
            progress=False,
        )
    return done, failed


def test_a_worker_killed_every_time_fails_only_its_chain(tmp_path):
    done, failed = _run([1, 2, 4], tmp_path)
    assert done == {1: 10, 4: 40}
    [(stage, err)] = failed.values()
    assert list(failed) == [2] and stage == "work"
    assert isinstance(err, ProcessingError)
    assert "dask worker process running the work stage died 2 times" in str(err)
    assert "retried by the next run" in str(err)  # what happens, and what to do
    assert len((tmp_path / "killed-2").read_text().split()) == 2  # two worker processes died


def test_a_worker_killed_once_is_retried(tmp_path):
    done, failed = _run([3, 5], tmp_path)
    assert failed == {} and done == {3: 30, 5: 50}
    assert len((tmp_path / "killed-3").read_text().split()) == 1


@pytest.mark.slow  # a LocalCluster of two TensorFlow workers in a subprocess
def test_worker_killed_under_a_real_scan(scan_model, demo_cache, tmp_path):
    """SIGKILL to one worker process of a real scan once its first mosaic exists: the scan
    finishes (the chain is retried on a fresh worker, or fails and is recorded), and a rerun
    leaves every scene processed."""
    import psutil

    from scanner.demo.source import demo_products
    from scanner.record import Record

    demo_products()
    out, log = tmp_path / "out", tmp_path / "stderr.txt"
    common = ("--source", "demo", "--model", str(scan_model))
    proc = start_scan(out, *common, "--workers", "2", log=log)
    wait_for_mosaic(proc, out)
    workers = [
        p for p in psutil.Process(proc.pid).children(recursive=True)
        if "distributed" in " ".join(p.cmdline()) or "multiprocessing" in " ".join(p.cmdline())
    ]  # fmt: skip
    assert workers, "no worker process found"
    workers[-1].send_signal(signal.SIGKILL)
    rc = proc.wait(timeout=600)
    assert rc in (0, 1), log.read_text()
    with Record.open(out) as rec:
        assert rec.claimed() == {} and rec.lock_holder() is None
        assert rec.runs()[0]["status"] in ("ok", "partial")
    rc, s, err = run_scan(*common, "--sequential", "--out", str(out))
    assert rc == 0, err
    with Record.open(out) as rec:
        assert rec.counts()["processed"] == len(rec.scenes())
    assert leftovers(out) == []
