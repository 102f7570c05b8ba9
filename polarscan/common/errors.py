"""Errors that reach the user: one line naming the problem and the fix, and an exit code.

Every module raises these (never ``SystemExit``); only ``cli.py`` turns them into exit codes.

Library code speaks of values and configuration keys, never of command-line flags: an error
about one setting passes ``key=`` (a config key or parameter name such as ``"model"``,
``"out"``, ``"saliency.methods"``), and the CLI, which knows its options, adds the flag that
sets it (``polarscan.cli.flag_for``).
"""

from __future__ import annotations


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
