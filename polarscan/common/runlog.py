"""A log file per scan run, ``<out>/logs/<run id>.log``: what the night did, kept beside its
outputs for the operator, whatever ``-q``/``-v`` showed on the console (cron mails only
warnings; the file has every INFO line too). The newest ``keep`` files stay."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT = "%(asctime)sZ %(levelname)s %(name)s: %(message)s"


def log_path(out: Path, run_id: str) -> Path:
    """Where the run ``run_id`` into the scan folder ``out`` writes its log."""
    return out / "logs" / f"{run_id}.log"


@contextlib.contextmanager
def run_log(out: Path, run_id: str, keep: int) -> Iterator[Path | None]:
    """While the block runs, write every log record of INFO and above to
    :func:`log_path` (UTC times); the console keeps its own level. Afterwards only the ``keep``
    newest logs stay (run ids sort by start time). ``keep`` 0: no file (yields None)."""
    if keep <= 0:
        yield None
        return
    path = log_path(out, run_id)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    formatter = logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    # handlers that relied on the root's level keep it: only the file gets what is below it
    pinned = [h for h in root.handlers if h.level == logging.NOTSET]
    for h in pinned:
        h.setLevel(level)
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level != logging.NOTSET else logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)
        for h in pinned:
            h.setLevel(logging.NOTSET)
        prune(folder, keep)


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``*.log`` of ``folder``; what was deleted."""
    logs = sorted(folder.glob("*.log"))
    old = logs[: max(0, len(logs) - keep)]
    for p in old:
        with contextlib.suppress(OSError):
            p.unlink()
    return old
