"""Crash-safe updates of a shared file: an advisory writer lock and a copy-on-write transaction.

The file is copied to a temporary name beside it, changed there, checked, and renamed over the
original. A crash at any point leaves the previous file intact; readers (QGIS) are never
blocked and always see a complete file. The lock (``.<name>.lock``, hidden) serialises writers
across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import ProcessingError, as_disk_full

log = logging.getLogger(__name__)

#: files SQLite may keep beside a database while it is open
SQLITE_SIDECARS = ("-journal", "-wal", "-shm")


#: how long a writer waits for another process's lock before giving up
LOCK_TIMEOUT_S = 600.0


@contextlib.contextmanager
def writer_lock(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the writer lock of ``path`` (an ``flock`` on ``.<name>.lock``, which dies with its
    process, so a crashed writer never leaves it held). The holder's pid is written into the
    lock file, so a writer that waits longer than ``timeout_s`` can name it."""
    lock = path.with_name(f".{path.name}.lock")  # hidden: not a layer users should see
    with open(lock, "a+") as fh:
        deadline = time.monotonic() + timeout_s
        warned = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(lock)
                if time.monotonic() >= deadline:
                    raise ProcessingError(
                        f"{path} stayed locked by another writer{holder} for {timeout_s:g} s",
                        "wait for that process to finish (or stop it) and rerun; a crashed "
                        "writer releases the lock by itself",
                    ) from None
                if not warned:
                    log.warning("waiting for the writer lock of %s%s", path, holder)
                    warned = True
                time.sleep(0.2)
        try:
            with contextlib.suppress(OSError):  # the pid is informative only (a full disk)
                fh.seek(0)
                fh.truncate()
                fh.write(str(os.getpid()))
                fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


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
        except Exception as err:
            # a full disk or file-size limit: say so (the writers' own messages rarely do)
            written = (work, final_tmp, *(work.with_name(work.name + s) for s in SQLITE_SIDECARS))
            full = as_disk_full(err, path, files=written)
            if full is not None:
                raise full from err
            raise
        finally:
            for leftover in (work, *(work.with_name(work.name + s) for s in SQLITE_SIDECARS)):
                leftover.unlink(missing_ok=True)
