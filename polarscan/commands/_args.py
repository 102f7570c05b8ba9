"""Argument pieces the command groups share, so that ``--bbox``/``--aoi``, dates, ``--limit``,
``--source``, ``--json`` and default config files read and behave the same in every command.

Values are checked once, while parsing, by the ``type=`` validators below: a command receives
aware UTC datetimes, positive ints and probabilities, never strings to parse again. A bad value
raises :class:`~polarscan.common.errors.UsageError` naming the flag; ``polarscan.cli.main``
prints it as ``error: …`` and exits 2 (argparse's own errors, such as a missing value, exit 2
too).

Standard library only (no TF/rasterio/dask): command modules import this at module top and
``--help`` must stay instant.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from polarscan.common.dates import parse_date
from polarscan.common.errors import UsageError
from polarscan.resources import default_config  # noqa: F401 - re-exported for commands

DEFAULT_OUT = "polarscan-output"  # the scan folder (ScanConfig.out defaults to the same)
SOURCE_HELP = "cdse (default) | asf | dhus | local:PATH | demo"


# ---- type= validators: each takes the flag it checks, so its message can name it ----------------


def date_type(flag: str) -> Callable[[str], datetime]:
    """``YYYY-MM-DD[THH:MM[:SS]]`` (naive = UTC, offsets converted) → aware UTC datetime."""

    def parse(text: str) -> datetime:
        value = parse_date(text, flag)
        assert value is not None  # parse_date returns None only for None
        return value

    parse.__name__ = "date"
    return parse


def since_type(flag: str = "--since") -> Callable[[str], str | datetime]:
    """``last`` (any case) → ``"last"``; a date → aware UTC datetime."""

    def parse(text: str) -> str | datetime:
        if text.strip().lower() == "last":
            return "last"
        return parse_date(text, flag, extra_hint=" (or 'last')")  # type: ignore[return-value]

    parse.__name__ = "last|date"
    return parse


def int_type(flag: str, minimum: int = 1) -> Callable[[str], int]:
    """A whole number ``>= minimum`` (default: positive)."""
    need = f"{minimum} or more"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise UsageError(
                f"{flag} {text!r} is not a whole number", f"give {flag} {need}"
            ) from None
        if value < minimum:
            raise UsageError(f"{flag} must be >= {minimum}, got {value}", f"give {flag} {need}")
        return value

    parse.__name__ = "int"
    return parse


def float_type(
    flag: str, low: float, high: float, *, open_low: bool = True, open_high: bool = True,
    example: str = "",
) -> Callable[[str], float]:  # fmt: skip
    """A finite number in the interval ``low``..``high`` (open or closed at each end;
    ``math.inf`` for no bound)."""
    lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
    interval = f"{lo}{low:g}, {high:g}{hi}"
    hint = f"give {flag} in {interval}" + (f", e.g. {example}" if example else "")

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise UsageError(f"{flag} {text!r} is not a number", hint) from None
        below = value <= low if open_low else value < low
        above = value >= high if open_high else value > high
        if not math.isfinite(value) or below or above:
            raise UsageError(f"{flag} {text} is not in {interval}", hint)
        return value

    parse.__name__ = "number"
    return parse


def probability_type(flag: str = "--threshold") -> Callable[[str], float]:
    """A probability strictly between 0 and 1."""
    return float_type(flag, 0.0, 1.0, example="0.5")


def positive_float_type(flag: str) -> Callable[[str], float]:
    return float_type(flag, 0.0, math.inf)


class BboxAction(argparse.Action):
    """Stores ``--bbox W S E N`` (floats) after :func:`polarscan.common.bbox.check_bbox`:
    ranges, S < N, W ≠ E (W > E crosses 180°)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from polarscan.common.bbox import check_bbox

        check_bbox(*values)  # key="bbox": the CLI names the flag
        setattr(namespace, self.dest, list(values))


def check_window(args: argparse.Namespace) -> None:
    """``--since`` must lie before ``--until`` (when both are dates): a :class:`UsageError`
    naming both flags. ``polarscan.cli.main`` runs it for every command."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if isinstance(since, datetime) and isinstance(until, datetime) and since >= until:
        raise UsageError(
            f"--since {since:%Y-%m-%dT%H:%M:%S} is not before --until {until:%Y-%m-%dT%H:%M:%S}",
            "give a start before the end (or swap the dates)",
        )


# ---- shared arguments ---------------------------------------------------------------------------


def add_command(
    sub: argparse._SubParsersAction, name: str, help: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand whose description keeps its line breaks (help texts hold examples)."""
    return sub.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_area(p: argparse.ArgumentParser, *, required: bool) -> None:
    """``--bbox W S E N`` or ``--aoi FILE`` (one of them; both is a usage error)."""
    area = p.add_mutually_exclusive_group(required=required)
    area.add_argument(
        "--bbox",
        nargs=4,
        type=float,
        action=BboxAction,
        metavar=("W", "S", "E", "N"),
        help="lon/lat box in degrees (W > E crosses 180°)",
    )
    area.add_argument("--aoi", metavar="FILE", help="area as a GeoJSON or GeoPackage polygon")


def add_window(
    p: argparse.ArgumentParser,
    since_help: str,
    until_help: str,
    since_metavar: str = "DATE",
    *,
    since_last: bool = False,
) -> None:
    """``--since`` / ``--until``, parsed to aware UTC datetimes (``--since`` also takes ``last``
    when ``since_last``); :func:`check_window` checks their order."""
    since = since_type("--since") if since_last else date_type("--since")
    p.add_argument("--since", type=since, metavar=since_metavar, help=since_help)
    p.add_argument("--until", type=date_type("--until"), metavar="DATE", help=until_help)


def add_source(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--source`` as :func:`scanner.sources.get_source` reads it."""
    p.add_argument("--source", default=default, metavar="SOURCE", help=SOURCE_HELP)


def add_limit(p: argparse.ArgumentParser, help: str) -> None:
    """``--limit N`` (N >= 1)."""
    p.add_argument("--limit", type=int_type("--limit"), metavar="N", help=help)


def add_json(p: argparse.ArgumentParser, help: str) -> None:
    """``--json``: stdout holds JSON only (print it with :func:`print_json`; anything else a
    command has to say goes to stderr)."""
    p.add_argument("--json", action="store_true", help=help)


def check_limit(limit: int | None) -> None:
    """``--limit 0`` or ``-3`` are usage errors, not empty listings (:func:`add_limit` checks
    this while parsing)."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit} is not positive", "give --limit 1 or more")


def print_json(value: Any, indent: int | None = None, default: Any = None) -> None:
    """``value`` as JSON on stdout, one trailing newline."""
    print(json.dumps(value, indent=indent, default=default))


def existing_record(out: Path) -> Path:
    """``<out>/record.sqlite``, or a :class:`UsageError` saying there is none (the commands that
    read a scan folder: ``catalog``, ``status``)."""
    from scanner.record import record_path

    path = record_path(out)
    if not path.is_file():
        raise UsageError(
            f"no scan record at {path}",
            "check --out (a scan writes <out>/record.sqlite on its first run)",
        )
    return path
