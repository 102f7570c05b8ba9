"""The statuses of the record, as enums used everywhere (they are ``str``, so they compare equal
to, and are stored as, their plain values)."""

from __future__ import annotations

from enum import StrEnum


class SceneStatus(StrEnum):
    """Where a scene stands. A scan sets FOUND (search), DOWNLOADED (its product is on disk),
    PROCESSED or FAILED (with the error; retried while attempts are left). SKIPPED (with a
    reason) is an operator's decision (the ``catalog`` command): the scene is never claimed again."""

    FOUND = "found"
    DOWNLOADED = "downloaded"
    PROCESSED = "processed"
    FAILED = "failed"
    SKIPPED = "skipped"


class RunStatus(StrEnum):
    """How a run ended: RUNNING until then; OK, PARTIAL (some scenes failed), FAILED (the run
    itself stopped on an error), INTERRUPTED (SIGTERM or Ctrl-C: its scenes were released),
    ABANDONED (its process died without a word; the next run took its lock over)."""

    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"


#: a scene in one of these is never claimed again
FINAL = (SceneStatus.PROCESSED, SceneStatus.SKIPPED)
#: what a run works on (FAILED ones too while attempts are left)
PENDING = (SceneStatus.FOUND, SceneStatus.DOWNLOADED)
