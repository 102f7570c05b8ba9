"""The runner: stage chains per job, failures isolated per job, same results with and without dask."""

from __future__ import annotations

import logging
import os

import pytest

from polarscan.common.errors import UsageError
from scanner.scan.runner import ClusterSpec, Runner, Stage
from tests.support.scan_stages import add, times_ten_or_fail

STAGES = [Stage("add", add), Stage("scale", times_ten_or_fail, gpu=True)]


def _run(spec: ClusterSpec, admit=None):
    done, failed = {}, {}
    with Runner(spec) as runner:
        facts = runner.run(
            [1, 2, 3, 4],
            lambda job: job,
            STAGES,
            0,
            key=lambda job: f"job{job}",
            on_done=lambda job, res: done.__setitem__(job, res),
            on_failed=lambda job, stage, err: failed.__setitem__(job, (stage, str(err))),
            admit=admit,
            progress=False,
        )
    return facts, done, failed


def test_sequential_isolates_a_failing_job():
    facts, done, failed = _run(ClusterSpec(sequential=True))
    assert facts["mode"] == "sequential"
    assert {k: v[0] for k, v in done.items()} == {1: 10, 2: 20, 4: 40}
    assert {v[1] for v in done.values()} == {os.getpid()}  # ran in this process
    assert failed == {3: ("scale", "boom on 3")}


def test_local_cluster_gives_the_same_results_in_worker_processes(caplog):
    caplog.set_level(logging.INFO, logger="scanner.scan.runner")
    facts, done, failed = _run(ClusterSpec(workers=2))
    assert "dashboard: http://" in caplog.text  # operators find the dask dashboard in the log
    assert facts["mode"] == "local-cluster" and facts["workers"] == 2
    assert {k: v[0] for k, v in done.items()} == {1: 10, 2: 20, 4: 40}
    assert os.getpid() not in {v[1] for v in done.values()}  # computed on the workers
    assert failed == {3: ("scale", "boom on 3")}


@pytest.mark.parametrize("spec", [ClusterSpec(sequential=True),
                                  ClusterSpec(workers=1, max_in_flight=1)], ids=["seq", "dask"])
def test_admit_says_which_jobs_are_submitted(spec):
    """``admit`` is asked just before each job would be submitted, in order; a job it refuses
    is never run and the next is asked (a monthly quota that runs out part-way)."""
    asked: list[int] = []

    def admit(job):
        asked.append(job)
        return job in (1, 3)

    _, done, failed = _run(spec, admit)
    assert asked == [1, 2, 3, 4]
    assert sorted(done) == [1] and failed == {3: ("scale", "boom on 3")}


def test_a_scheduler_that_does_not_answer_is_a_usage_error():
    spec = ClusterSpec(scheduler="tcp://127.0.0.1:9", connect_timeout_s=2)
    with pytest.raises(UsageError, match="does not answer"), Runner(spec):
        pass


def test_cluster_wide_limit_serialises_a_stage_across_worker_processes(tmp_path):
    """A provider quota (e.g. CDSE's 4 connections) must hold across processes: with a limit of
    1 and 2 worker processes, no two tasks of the stage may overlap in time."""
    from tests.support.scan_stages import record_interval

    with Runner(ClusterSpec(workers=2, threads_per_worker=2)) as runner:
        runner.run(
            [1, 2, 3, 4],
            lambda job: job,
            [Stage("fetch", record_interval, max_concurrent=1)],
            str(tmp_path),
            key=lambda job: f"job{job}",
            on_done=lambda job, res: None,
            on_failed=lambda job, stage, err: pytest.fail(f"{stage}: {err}"),
            progress=False,
        )
    spans = sorted(tuple(map(float, p.read_text().split())) for p in tmp_path.glob("*.txt"))
    assert len(spans) == 4
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 1e-3, f"stage ran concurrently: {spans}"
