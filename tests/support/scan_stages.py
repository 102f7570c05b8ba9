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
