"""Write-then-rename, so a crash never leaves a half-written file under the final name."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest`` (atomic on
    POSIX), on error remove it. Works for files and for directories."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _recover_swapped_dir(dest)
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


def _recover_swapped_dir(dest: Path) -> None:
    """A crash between the two renames of a directory swap leaves no ``dest`` but its previous
    version as ``.<name>.<id>.old``: put the newest such copy back before anything reads it."""
    if dest.exists():
        return
    olds = sorted(dest.parent.glob(f".{dest.name}.*.old"), key=lambda p: p.stat().st_mtime)
    if olds and olds[-1].is_dir():
        olds[-1].rename(dest)
