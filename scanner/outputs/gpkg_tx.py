"""Crash-safe updates of a shared file: an advisory writer lock and a copy-on-write transaction.

The file is copied to a temporary name beside it, changed there, checked, and renamed over the
original. A crash at any point leaves the previous file intact; readers (QGIS) are never
blocked and always see a complete file. The lock (``.<name>.lock``, hidden) serialises writers
across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path

from polarscan.common.atomic import atomic_path


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    lock = path.with_name(f".{path.name}.lock")  # hidden: not a layer users should see
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def copy_on_write(path: Path) -> Iterator[Path]:
    """Yield a working copy of ``path`` (named ``*.gpkg``: GDAL warns about other extensions;
    absent if ``path`` does not exist yet); on success it replaces ``path`` atomically."""
    with atomic_path(path) as final_tmp:
        work = final_tmp.with_name(final_tmp.name + ".gpkg")
        try:
            if path.exists():
                shutil.copyfile(path, work)
            yield work
            work.replace(final_tmp)
        finally:
            work.unlink(missing_ok=True)
