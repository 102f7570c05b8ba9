"""Errors that reach the user: one line naming the problem and the fix, and an exit code.

Every module raises these (never ``SystemExit``); only ``cli.py`` turns them into exit codes.

Library code speaks of values and configuration keys, never of command-line flags: an error
about one setting passes ``key=`` (a config key or parameter name such as ``"model"``,
``"out"``, ``"saliency.methods"``), and the CLI, which knows its options, adds the flag that
sets it (``polarscan.cli.flag_for``).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path


class PolarScanError(Exception):
    """Base class. ``str(err)`` is the one-line message shown to the user; ``key``, when set,
    names the setting (config key / parameter) the problem is about."""

    exit_code = 1

    def __init__(self, problem: str, fix: str | None = None, *, key: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        self.key = key
        super().__init__(f"{problem} — {fix}" if fix else problem)


class UsageError(PolarScanError):
    """Bad arguments, configuration or input files: the user must change something (exit 2)."""

    exit_code = 2


class ProcessingError(PolarScanError):
    """A runtime failure (network, a corrupt product mid-run, a worker crash): exit 1."""

    exit_code = 1


class DiskFullError(ProcessingError):
    """A write failed because the disk is full or a file-size limit (``ulimit -f``) was hit:
    the operator must free space or raise the limit, then rerun (exit 3)."""

    exit_code = 3


class FileLockedError(ProcessingError):
    """A shared file (the GeoPackage) stayed locked by another process past the timeout: not
    the data's fault, so a scan spends no attempt on its scenes and does not retry the write
    mosaic by mosaic (each would wait as long again); exit 1."""


class Interrupted(KeyboardInterrupt):
    """A termination signal (SIGTERM from ``timeout``/systemd, SIGHUP) received: it unwinds like
    Ctrl-C, so every cleanup written for KeyboardInterrupt runs; the CLI exits 128 + signum."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


#: errno values that mean "no room to write": disk full, file-size limit, disk quota
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
#: how SQLite, GDAL and the C library word the same conditions
_NO_ROOM_TEXT = (
    "database or disk is full",
    "no space left on device",
    "file too large",
    "disk quota exceeded",
    "free disk space available is",
)


def as_disk_full(
    err: BaseException,
    path: str | Path,
    files: Iterable[str | Path] = (),
    need: int | None = None,
) -> DiskFullError | None:
    """A :class:`DiskFullError` describing ``err`` when it means the disk of ``path`` is full
    or a file-size limit was hit; None for any other error. Told by the errno or the message;
    where those say nothing precise (SQLite's "disk I/O error", a GDAL driver's "failed to
    commit"), by a finite ``ulimit -f`` that one of ``files`` (what was being written) has
    reached or that the write needed (``need`` bytes, uncompressed), or a nearly full disk."""
    if isinstance(err, DiskFullError):
        return err
    seen: set[int] = set()
    chain: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and id(e) not in seen:  # the error, and what it wraps
        seen.add(id(e))
        chain.append(e)
        wrapped = getattr(e, "error", None)  # e.g. the runner's error tagged with its stage
        e = wrapped if isinstance(wrapped, BaseException) else (e.__cause__ or e.__context__)
    texts = " ".join(str(x).lower() for x in chain)
    no_room = any(isinstance(x, OSError) and x.errno in _NO_ROOM for x in chain)
    no_room = no_room or any(t in texts for t in _NO_ROOM_TEXT)
    limit, free = _file_size_limit(), _free_bytes(path)
    if not no_room and "disk i/o error" in texts:
        no_room = limit is not None or (free is not None and free < LOW_SPACE_BYTES)
    files = list(files)
    if not no_room and limit is not None:
        no_room = any(_size_of(f) >= limit - LIMIT_MARGIN_BYTES for f in files)
        no_room = no_room or (need is not None and need >= limit)
    if not no_room and (files or need is not None):
        no_room = free is not None and free < LOW_SPACE_BYTES
    if not no_room:
        return None
    where = Path(path)
    if limit is not None:
        why = f"the file-size limit of {_size(limit)} (ulimit -f) was hit"
        fix = "raise or remove the limit (ulimit -f unlimited; LimitFSIZE= in a systemd unit)"
    else:
        room = f", {_size(free)} free" if free is not None else ""
        why = f"the disk holding {where.parent} is full{room}"
        fix = (
            "free space on that disk (old mosaics/ and downloads/ folders can go; "
            "df -h shows what is left)"
        )
    first = chain[-1] if len(chain) > 1 else err
    return DiskFullError(
        f"writing {where} failed: {why} ({type(first).__name__}: {first})",
        f"{fix}, then rerun: nothing written so far is lost and the unfinished scenes are "
        "taken up again",
    )


#: below this, an unspecific write error is taken to mean a full disk
LOW_SPACE_BYTES = 64 * 2**20
#: a file this close to the file-size limit has hit it (writers fail a chunk or a page early)
LIMIT_MARGIN_BYTES = 64 * 2**10


def _size_of(path: str | Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _free_bytes(path: str | Path) -> int | None:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.0f} TiB"
