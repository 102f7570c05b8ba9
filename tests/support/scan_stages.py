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
