"""Argument pieces the command groups share, so that ``--bbox``/``--aoi``, dates, ``--limit``,
``--source``, ``--json`` and default config files read and behave the same in every command.

Standard library only (no TF/rasterio/dask): command modules import this at module top and
``--help`` must stay instant.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from polarscan.resources import default_config  # noqa: F401 - re-exported for commands

DEFAULT_OUT = "polarscan-output"  # the scan folder (ScanConfig.out defaults to the same)
SOURCE_HELP = "cdse (default) | asf | dhus | local:PATH | demo"


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
        metavar=("W", "S", "E", "N"),
        help="lon/lat box in degrees (W > E crosses 180°)",
    )
    area.add_argument("--aoi", metavar="FILE", help="area as a GeoJSON or GeoPackage polygon")


def add_window(
    p: argparse.ArgumentParser, since_help: str, until_help: str, since_metavar: str = "DATE"
) -> None:
    """``--since`` / ``--until`` (parse them with :func:`parse_date`)."""
    p.add_argument("--since", metavar=since_metavar, help=since_help)
    p.add_argument("--until", metavar="DATE", help=until_help)


def add_source(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--source`` as :func:`scanner.sources.get_source` reads it."""
    p.add_argument("--source", default=default, metavar="SOURCE", help=SOURCE_HELP)


def add_limit(p: argparse.ArgumentParser, help: str) -> None:
    """``--limit N`` (check it with :func:`check_limit`)."""
    p.add_argument("--limit", type=int, metavar="N", help=help)


def add_json(p: argparse.ArgumentParser, help: str) -> None:
    """``--json``: machine-readable output on stdout (print it with :func:`print_json`)."""
    p.add_argument("--json", action="store_true", help=help)


def check_limit(limit: int | None) -> None:
    """argparse takes ``--limit 0`` or ``-3``; they are usage errors, not empty listings."""
    from polarscan.common.errors import UsageError

    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit} is not positive", "give --limit 1 or more")




def print_json(value: Any, indent: int | None = None, default: Any = None) -> None:
    """``value`` as JSON on stdout, one trailing newline."""
    print(json.dumps(value, indent=indent, default=default))
