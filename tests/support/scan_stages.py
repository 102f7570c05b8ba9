"""Tiny stage functions for the orchestrator's tests (importable by dask worker processes)."""

from __future__ import annotations

import os


def add(x: int, ctx: int) -> int:
    return x + ctx


def times_ten_or_fail(x: int, ctx: int) -> tuple[int, int]:
    """Fails for 3; otherwise returns (10·x, the worker's pid)."""
    if x == 3:
        raise ValueError("boom on 3")
    return x * 10, os.getpid()


def record_interval(x: int, ctx: str) -> int:
    """Sleeps a little and appends this task's (start, end) to a file in folder ``ctx``."""
    import time
    from pathlib import Path

    t0 = time.time()
    time.sleep(0.4)
    Path(ctx, f"{x}.txt").write_text(f"{t0} {time.time()}")
    return x


def kill_own_worker(x: int, ctx: str) -> int:
    """Returns 10·x, except: job 2 kills the worker process running it, every time; job 3 kills
    it the first time only (a marker file in folder ``ctx`` remembers), then succeeds."""
    import signal
    from pathlib import Path

    marker = Path(ctx, f"killed-{x}")
    if x == 2 or (x == 3 and not marker.exists()):
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10
