"""Crash-safe updates of ``detections.gpkg``: an advisory writer lock, one SQLite transaction
on the file in place, and copy-on-write for what GDAL must do (creating the file or a layer).

:func:`transaction` changes the file in place in one SQLite transaction (rollback journal, the
GeoPackage default): a crash or an error at any point leaves the previous content, which SQLite
restores from its journal when the file is next opened, and a publish costs what it writes, not
the size of the archive. Readers (QGIS) see the file before or after, never between; they wait
out a commit (milliseconds) and see new rows on their next read.

:func:`copy_on_write` copies the file to a temporary name beside it, lets GDAL change it there,
and renames it over the original: only for creating the file or adding a layer to it, which
GDAL does in several transactions of its own.

The lock (``.<name>.lock``, hidden) serialises writers across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import FileLockedError, ProcessingError, as_disk_full

log = logging.getLogger(__name__)

#: files SQLite may keep beside a database while it is open
SQLITE_SIDECARS = ("-journal", "-wal", "-shm")


def with_sidecars(path: Path) -> tuple[Path, ...]:
    """``path`` and the files SQLite may keep beside it."""
    return (path, *(path.with_name(path.name + s) for s in SQLITE_SIDECARS))


@dataclass(frozen=True)
class Step:
    """A change that :func:`scanner.outputs.gpkg.write_results` runs inside its transaction:
    ``apply(con, crs)`` with the connection and the file's CRS, after the ``layers`` it writes
    (frames.SCHEMAS names) have been created if the file lacked them."""

    apply: Callable[[sqlite3.Connection, Any], None]
    layers: tuple[str, ...] = ()


#: how long a writer waits for another process's lock before giving up
LOCK_TIMEOUT_S = 600.0


@contextlib.contextmanager
def writer_lock(path: Path, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the writer lock of ``path`` (an ``flock`` on ``.<name>.lock``, which dies with its
    process, so a crashed writer never leaves it held). The holder's pid is written into the
    lock file, so a writer that waits longer than ``timeout_s`` can name it."""
    timeout_s = LOCK_TIMEOUT_S if timeout_s is None else timeout_s
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
                    raise FileLockedError(
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
            full = as_disk_full(err, path, files=(final_tmp, *with_sidecars(work)))
            if full is not None:
                raise full from err
            raise
        finally:
            for leftover in with_sidecars(work):
                leftover.unlink(missing_ok=True)


def recover(path: Path) -> bool:
    """Roll back the update a killed writer left unfinished in ``path``, if any; True if one
    was. SQLite does so when a read-write connection first reads a file beside a hot journal,
    but a read-only one (GDAL reading a layer, QGIS) fails on it with "attempt to write a
    readonly database", so whoever opens the file first calls this. Safe while a live writer
    holds the file: its journal is not hot, and SQLite leaves it alone."""
    journal = path.with_name(path.name + "-journal")
    if not (path.is_file() and journal.exists()):
        return False
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=LOCK_TIMEOUT_S)
        ) as con:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as err:  # e.g. a read-only folder: readers will say what is wrong
        log.warning("could not roll back the unfinished update of %s: %s", path, err)
        return False
    if journal.exists():
        return False
    log.warning("rolled back an update of %s that an interrupted writer left unfinished", path)
    return True


@contextlib.contextmanager
def transaction(path: Path, timeout_s: float | None = None) -> Iterator[sqlite3.Connection]:
    """A connection to the GeoPackage ``path`` (with the SQL functions its R-tree triggers call)
    inside one write transaction, committed on success and rolled back on any error; a full disk
    or a file-size limit is reported as :class:`~polarscan.common.errors.DiskFullError`. Hold the
    :func:`writer_lock` around it.

    The commit waits up to ``timeout_s`` (default :data:`LOCK_TIMEOUT_S`) for readers to finish
    the statement they are in (GDAL readers, QGIS among them, wait up to 5 s for a commit in
    turn); a reader that keeps a read open longer makes the transaction fail, rolled back, with
    a message saying so."""
    from scanner.outputs.gpkg_sql import register_gpkg_functions

    if timeout_s is None:
        timeout_s = LOCK_TIMEOUT_S
    # isolation_level=None: the module does not open transactions; BEGIN IMMEDIATE takes the
    # write lock now (readers go on) and waits up to the lock timeout for one in progress
    con = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        register_gpkg_functions(con)
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise
    except Exception as err:
        if "database is locked" in str(err):
            raise FileLockedError(
                f"{path} stayed locked by another process reading or writing it for "
                f"{timeout_s:g} s; nothing was changed",
                "close what keeps it open (a QGIS layer in the middle of a long read, another "
                "tool) and rerun",
            ) from err
        if "no such module: rtree" in str(err):
            raise ProcessingError(
                f"could not update {path}: the SQLite library in this process lacks the R*Tree "
                "module of GeoPackage spatial indexes (TensorFlow's own SQLite was loaded first)",
                "import scanner (or sqlite3) before tensorflow, or run the scan from the command "
                "line",
            ) from err
        full = as_disk_full(err, path, files=with_sidecars(path))
        if full is not None:
            raise full from err
        raise
    finally:
        con.close()
