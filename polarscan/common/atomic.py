"""Write-then-rename, so a crash never leaves a half-written file under the final name."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: what :func:`atomic_path` names its temporary (``.<name>.<8 hex>.tmp``, plus anything a writer
#: put beside it: ``.gpkg`` working copies, SQLite journals, GDAL side files) and the previous
#: version of a swapped directory (``.<name>.<8 hex>.old``)
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.(?P<kind>tmp|old)(?:[.-].*)?$")


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest`` (atomic on
    POSIX), on error remove it. Works for files and for directories."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover_swapped_dir(dest)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if tmp.is_dir() and dest.is_dir():
            old = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.old")
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def recover_swapped_dir(dest: Path) -> None:
    """A crash between the two renames of a directory swap leaves no ``dest`` but its previous
    version as ``.<name>.<id>.old``: put the newest such copy back before anything reads it."""
    if dest.exists():
        return
    olds = sorted(dest.parent.glob(f".{dest.name}.*.old"), key=lambda p: p.stat().st_mtime)
    if olds and olds[-1].is_dir():
        olds[-1].rename(dest)


def sweep_leftovers(root: str | Path) -> list[Path]:
    """Remove what interrupted :func:`atomic_path` writes left under ``root`` (a process killed
    mid-write cannot clean up after itself): temporaries, and ``.old`` copies whose final file
    exists. Call it only while no other process writes there (the scan holds its run lock).
    Returns what was removed."""
    root = Path(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in (*dirnames, *filenames):
            m = _LEFTOVER.match(entry)
            if m is None:
                continue
            path = Path(dirpath, entry)
            if m["kind"] == "old":
                recover_swapped_dir(path.with_name(m["name"]))
                if not path.exists():
                    continue
            try:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            except OSError as err:
                log.warning("could not remove the leftover %s: %s", path, err)
                continue
            removed.append(path)
        dirnames[:] = [d for d in dirnames if not _LEFTOVER.match(d)]
    if removed:
        log.warning("removed %d leftover temporary file(s) of an interrupted run: %s",
                    len(removed), ", ".join(p.name for p in removed[:5]))  # fmt: skip
    return removed
