"""Run stage chains over many jobs: in-process, on a LocalCluster, or on an existing cluster.

This is the only module of the project that imports dask. The stages are plain functions
(:mod:`scanner.scan.stages`); here they become one task chain per job (``client.submit`` with
futures as arguments), so jobs flow independently through the cluster and a failing job only
fails its own chain. At most ``max_in_flight`` chains are submitted at once and more follow as
chains finish, so a backfill of thousands of mosaics keeps the client's memory flat.

Who writes what: workers write per-mosaic files (the mosaic, its COGs) under unique names; the
shared state — the SQLite scan record, ``detections.gpkg`` and the STAC catalog — is written only
by the client, in ``on_done`` / ``on_failed``, one group at a time. A single writer needs no
cross-process locking, works on any cluster whose workers share the output filesystem, and keeps
the workers stateless (a killed worker never leaves a half-written shared file behind).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from polarscan.common.errors import ProcessingError, UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One step of a group's chain: ``func(previous_result, ctx) -> result``."""

    name: str
    func: Callable[[Any, Any], Any]
    gpu: bool = False  # run on a worker that declares a GPU resource, when there is one
    #: at most this many tasks of the stage at once across the whole cluster (e.g. a provider's
    #: connection quota: the sources' per-process limits do not add up across worker processes)
    max_concurrent: int | None = None


@dataclass(frozen=True)
class ClusterSpec:
    """How to run: ``sequential`` (no dask), a LocalCluster of ``workers`` processes, or an
    existing scheduler address."""

    sequential: bool = False
    workers: int = 2
    threads_per_worker: int = 1
    scheduler: str | None = None
    connect_timeout_s: float = 10.0
    #: chains submitted at once (None: 4 per worker); more are submitted as chains finish
    max_in_flight: int | None = None
    #: a LocalCluster reruns a task whose worker process died this many times before the
    #: chain fails (one retry survives a stray kill; a product that crashes every worker
    #: costs two worker restarts, not dask's default four)
    worker_retries: int = 1


Admit = Callable[[Any], bool]  # (job) → may it be submitted now?
Done = Callable[[Any, Any], None]  # (job, result)
Failed = Callable[[Any, str, BaseException], None]  # (job, stage name, error)
StageDone = Callable[[Any, str, Any], None]  # (job, stage name, that stage's result)


def local_gpu_count() -> int:
    """GPUs on this machine (via nvidia-smi, without importing TensorFlow)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


class Runner:
    """Runs stage chains for many jobs. Use as a context manager: an existing scheduler is
    contacted on entry (so a dead one is a usage error before any work); a LocalCluster is only
    started when there is something to run."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.client = None
        self.cluster = None

    def __enter__(self) -> Runner:
        if not self.spec.sequential and self.spec.scheduler:
            self.client, self.cluster = _connect(self.spec)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (a LocalCluster) or disconnect (a scheduler); idempotent."""
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            # TensorFlow's thread pools can make a worker slow to exit; the nanny then kills
            # it, which is fine at this point and not worth a warning.
            logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
            self.cluster.close()
        self.client = self.cluster = None

    def run(
        self,
        jobs: Sequence[Any],
        first_arg: Callable[[Any], Any],
        stages: Sequence[Stage],
        ctx: Any,
        *,
        key: Callable[[Any], str],
        on_done: Done,
        on_failed: Failed,
        on_stage: StageDone | None = None,
        admit: Admit | None = None,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Run ``stages`` as one chain per job; call ``on_done``/``on_failed`` on the client as
        each chain finishes (completion order), and ``on_stage`` as each non-final stage of a
        chain finishes. ``first_arg(job)`` is the first stage's input. ``admit(job)``, asked
        just before a job would be submitted, may say no: the job is not run (the caller
        deals with it) and the next is asked. Returns facts for the summary (mode, workers,
        dashboard link, GPU workers)."""
        hooks = _Hooks(on_done, on_failed, on_stage, admit)
        if self.spec.sequential:
            return _run_sequential(jobs, first_arg, stages, ctx, hooks, progress)
        if not jobs:
            return {"mode": "scheduler" if self.spec.scheduler else "local-cluster", "workers": 0}
        if self.client is None:
            self.client, self.cluster = _connect(self.spec)
        return _run_dask(self.client, jobs, first_arg, stages, ctx, self.spec, key, hooks, progress)


@dataclass(frozen=True)
class _Hooks:
    done: Done
    failed: Failed
    stage: StageDone | None = None
    admit: Admit | None = None


class _StageError(Exception):
    """Carries the name of the stage that failed across the task chain."""

    def __init__(self, stage: str, error: BaseException) -> None:
        self.stage = stage
        self.error = error
        super().__init__(f"{stage}: {type(error).__name__}: {error}")

    def __reduce__(self):  # picklable across processes
        return (_StageError, (self.stage, self.error))


def _call_stage(func: Callable[[Any, Any], Any], name: str, arg: Any, ctx: Any) -> Any:
    try:
        return func(arg, ctx)
    except _StageError:
        raise
    except Exception as err:  # noqa: BLE001 - tagged with the stage, re-raised to the client
        raise _StageError(name, err) from err


def _call_stage_limited(
    func: Callable[[Any, Any], Any], name: str, arg: Any, ctx: Any, lease: str, limit: int
) -> Any:
    """:func:`_call_stage` holding one of ``limit`` cluster-wide leases named ``lease``."""
    from distributed import Semaphore

    with Semaphore(max_leases=limit, name=lease):
        return _call_stage(func, name, arg, ctx)


def _run_sequential(jobs, first_arg, stages, ctx, hooks: _Hooks, progress) -> dict:
    from tqdm import tqdm

    for job in tqdm(jobs, desc="mosaics", unit="mosaic", disable=not progress):
        if hooks.admit is not None and not hooks.admit(job):
            continue
        value = first_arg(job)
        try:
            for i, stage in enumerate(stages):
                value = _call_stage(stage.func, stage.name, value, ctx)
                if hooks.stage is not None and i < len(stages) - 1:
                    hooks.stage(job, stage.name, value)
        except _StageError as err:
            hooks.failed(job, err.stage, err.error)
            continue
        hooks.done(job, value)
    return {"mode": "sequential", "workers": 1}


def _connect(spec: ClusterSpec):
    """A Client on the given scheduler or on a new LocalCluster (returned for closing)."""
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.worker.daemon": False})
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # importing distributed resets its loggers to INFO; keep them quiet unless -vv
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if spec.scheduler:
        try:
            client = Client(spec.scheduler, timeout=f"{spec.connect_timeout_s}s")
        except (OSError, TimeoutError) as err:
            raise UsageError(
                f"the dask scheduler at {spec.scheduler} does not answer ({err})",
                "start it (`dask scheduler`) and its workers, or unset the scheduler to run locally",
                key="scheduler",
            ) from None
        except ValueError as err:  # e.g. a port that is not a number, an unknown scheme
            raise UsageError(
                f"{spec.scheduler} is not a dask scheduler address ({err})",
                "give the address as tcp://HOST:PORT",
                key="scheduler",
            ) from None
        return client, None
    dask.config.set({"distributed.scheduler.allowed-failures": max(0, int(spec.worker_retries))})
    n = max(1, int(spec.workers))
    cores = os.cpu_count() or 1
    threads = max(1, cores // n)
    env = {
        # TensorFlow would otherwise give every worker process all cores.
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
    }
    gpus = local_gpu_count()
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=max(1, spec.threads_per_worker),
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
        env=env,
        resources={"GPU": 1} if gpus else None,
        silence_logs=logging.WARNING,
    )
    return Client(cluster), cluster


def _dashboard(client) -> str | None:
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        return None
    try:
        return client.dashboard_link
    except Exception:  # noqa: BLE001 - no dashboard is not an error
        return None


def _run_dask(client, jobs, first_arg, stages, ctx, spec, key, hooks: _Hooks, progress):
    from distributed import as_completed
    from tqdm import tqdm

    t0 = time.monotonic()
    info = client.scheduler_info()
    workers = info.get("workers", {})
    if not workers:
        client.wait_for_workers(1, timeout=spec.connect_timeout_s * 3)
        workers = client.scheduler_info().get("workers", {})
    gpu_workers = sum(1 for w in workers.values() if (w.get("resources") or {}).get("GPU"))
    link = _dashboard(client)
    log.info(
        "dask: %d worker(s) at %s%s; dashboard: %s",
        len(workers),
        client.scheduler.address,
        f", {gpu_workers} with a GPU" if gpu_workers else "",
        link or "unavailable (pip install 'bokeh>=3.1' to enable it)",
    )
    limit = spec.max_in_flight or max(4, 4 * len(workers))
    pending = list(jobs)[::-1]  # popped from the end: submission in the jobs' order
    owner: dict[Any, tuple[Any, str, bool]] = {}  # future → (job, stage name, is final)
    chains = as_completed()
    bar = tqdm(total=len(jobs), desc="mosaics", unit="mosaic", disable=not progress)

    def submit_next() -> bool:
        """Submit the next job ``admit`` allows (False: none is left)."""
        while pending:
            job = pending.pop()
            if hooks.admit is None or hooks.admit(job):
                submit(job)
                return True
            bar.update(1)  # not run: off the bar
        return False

    def submit(job: Any) -> None:
        value = first_arg(job)
        k = key(job)
        for i, stage in enumerate(stages):
            limited = (
                ()
                if stage.max_concurrent is None
                else (f"polarscan-{stage.name}", stage.max_concurrent)
            )
            value = client.submit(
                _call_stage_limited if limited else _call_stage,
                stage.func,
                stage.name,
                value,
                ctx,
                *limited,
                key=f"{stage.name}-{k}",
                resources={"GPU": 1} if (stage.gpu and gpu_workers) else None,
                retries=0,
                pure=False,
            )
            final = i == len(stages) - 1
            if final or hooks.stage is not None:
                owner[value] = (job, stage.name, final)
                chains.add(value)

    in_flight = 0
    while in_flight < limit and submit_next():
        in_flight += 1
    for fut in chains:
        job, name, final = owner.pop(fut)
        try:
            result = fut.result()
        except _StageError as err:
            if final:
                hooks.failed(job, err.stage, err.error)
        except Exception as err:  # noqa: BLE001 - e.g. a worker that died mid-task
            if final:
                hooks.failed(job, *_worker_failure(err))
        else:
            if final:
                hooks.done(job, result)
            elif hooks.stage is not None:
                hooks.stage(job, name, result)
        finally:
            fut.release()
        if final:
            bar.update(1)
            in_flight -= 1
            if submit_next():
                in_flight += 1
    bar.close()
    return {
        "mode": "scheduler" if spec.scheduler else "local-cluster",
        "workers": len(workers),
        "gpu_workers": gpu_workers,
        "dashboard": link,
        "scheduler": client.scheduler.address,
        "seconds": round(time.monotonic() - t0, 2),
    }


def _worker_failure(err: BaseException) -> tuple[str, BaseException]:
    """(stage, error) for a chain that failed outside its stage functions: a worker process
    that died (killed, out of memory, a crash in C code) becomes a ProcessingError naming the
    stage it was running and what to do."""
    from distributed import KilledWorker

    if not isinstance(err, KilledWorker):
        return "worker", err
    task = str(getattr(err, "task", "") or (err.args[0] if err.args else ""))
    stage = task.split("-", 1)[0] or "worker"
    tries = getattr(err, "allowed_failures", None)
    times = f" {tries + 1} times" if isinstance(tries, int) else ""
    return stage, ProcessingError(
        f"the dask worker process running the {stage} stage died{times} (killed by a signal, "
        "the out-of-memory killer, or a crash in a C library)",
        "the scene is retried by the next run; if it keeps failing, give the workers more "
        "memory (fewer workers) or skip it (polarscan catalog --skip ID --reason …)",
    )
