"""A scan on a real cluster: ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

One worker declares a ``GPU`` resource (a CPU stands in for it): inference and saliency tasks
must go there, download and mosaic tasks may run anywhere. The processes are bounded (killed at
teardown, whatever happens) and share this checkout through ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.scan_helpers import demo_cache, layer_counts, run_scan, scan_model

__all__ = ["demo_cache", "scan_model"]

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")


def _wait_for(path: Path, procs: list, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not path.is_file() or not path.read_text().strip():
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args} exited with {p.returncode}")
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{path} not written in {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, demo_cache):
    if not DASK.is_file():
        pytest.skip(f"no dask CLI at {DASK}")
    tmp = tmp_path_factory.mktemp("cluster")
    sched_file = tmp / "scheduler.json"
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_NUM_INTRAOP_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    logs = open(tmp / "cluster.log", "w")  # noqa: SIM115 - closed at teardown
    common = dict(cwd=REPO, env=env, stdout=logs, stderr=subprocess.STDOUT)
    procs = [
        subprocess.Popen(
            [
                str(DASK),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--scheduler-file",
                str(sched_file),
                "--no-dashboard",
            ],
            **common,
        )  # fmt: skip
    ]
    try:
        _wait_for(sched_file, procs)
        worker = [str(DASK), "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                  "--no-dashboard", "--no-nanny", "--host", "127.0.0.1", "--memory-limit", "0",
                  "--death-timeout", "60"]  # fmt: skip
        procs.append(subprocess.Popen([*worker, "--resources", "GPU=1", "--name", "gpu"], **common))
        procs.append(subprocess.Popen([*worker, "--name", "cpu"], **common))
        address = json.loads(sched_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, tmp / "cluster.log"
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        logs.close()


def test_runner_on_real_scheduler_and_workers(cluster):
    """The runner's --scheduler path: chains run on the worker processes, the GPU stage only
    on the worker that declares the resource, a failing job is isolated."""
    from distributed import Client

    from scanner.scan.runner import ClusterSpec, Runner, Stage
    from tests.support.scan_stages import add, times_ten_or_fail

    address, _ = cluster
    done, failed = {}, {}
    with Runner(ClusterSpec(scheduler=address)) as runner:
        facts = runner.run(
            [1, 2, 3, 4, 5],
            lambda job: job,
            [Stage("add", add), Stage("scale", times_ten_or_fail, gpu=True)],
            0,
            key=lambda job: f"job{job}-{time.monotonic_ns()}",
            on_done=lambda job, res: done.__setitem__(job, res),
            on_failed=lambda job, stage, err: failed.__setitem__(job, stage),
            progress=False,
        )
    assert facts["mode"] == "scheduler" and facts["gpu_workers"] == 1
    assert {k: v[0] for k, v in done.items()} == {1: 10, 2: 20, 4: 40, 5: 50}
    assert failed == {3: "scale"}
    with Client(address, timeout="30s") as client:
        pids = client.run(os.getpid)
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
    gpu_pid = next(pids[a] for a, n in names.items() if n == "gpu")
    assert {v[1] for v in done.values()} == {gpu_pid}


@pytest.mark.slow  # ~2-3 min on the shared 2-core machine: TensorFlow starts in 3 processes
def test_scan_on_an_existing_cluster(cluster, scan_model, tmp_path):
    address, log = cluster
    out = tmp_path / "out"
    rc, s, err = run_scan(
        "--source", "demo", "--out", str(out), "--model", str(scan_model),
        "--scheduler", address,
    )  # fmt: skip
    assert rc == 0, err + log.read_text()[-3000:]
    assert s["cluster"]["mode"] == "scheduler"
    assert s["cluster"]["workers"] == 2 and s["cluster"]["gpu_workers"] == 1
    assert s["counts"]["processed"] == 2 and s["counts"]["failed"] == 0
    counts = layer_counts(out / "detections.gpkg")
    assert counts["windows"] == s["counts"]["windows"] > 0
    assert set(s["timings"]) == {"download", "mosaic", "inference", "saliency"}

    from distributed import Client

    with Client(address, timeout="30s") as client:
        pids = client.run(os.getpid)  # worker address → pid
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
    gpu_pid = next(str(pids[a]) for a, n in names.items() if n == "gpu")
    [placement] = s["cluster"]["placement"].values()
    ran = {stage: where.rsplit(":", 1)[1] for stage, where in placement.items()}
    assert ran["inference"] == gpu_pid and ran["saliency"] == gpu_pid  # GPU stages on it
    assert str(os.getpid()) not in ran.values()  # nothing ran in the client
