"""CLI commands ``search`` (what would be processed, no download) and ``download`` (one product)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from polarscan.commands._args import (
    add_area,
    add_command,
    add_json,
    add_limit,
    add_source,
    add_window,
    date_type,
    int_type,
    print_json,
)
from polarscan.common.errors import UsageError

SEARCH_HELP = """\
List the Sentinel-1 dual-pol GRD scenes (EW GRDM and IW GRDH; HH+HV or VV+VH) over an area and
a time window that a scan would process, without downloading anything. Searching CDSE needs no
login.
Examples:
  polarscan search --bbox 10 68 60 82 --since 2022-11-30 --until 2022-12-01
  polarscan search --bbox 10 68 60 82 --since 2022-11-30 --modes EW
  polarscan search --aoi barents.geojson --published-after 2024-01-10T06:00 --json
  polarscan search --bbox 60 75 110 85 --since 2022-11-01 --source local:/data/s1
Exit 0: listed (also when nothing matched); 1: the provider failed; 2: bad arguments.
"""

DOWNLOAD_HELP = """\
Download products by id or name into a folder, verified (size and checksum), resumable and
atomic: a rerun finishes an interrupted download. CDSE needs a free account: set CDSE_USERNAME
and CDSE_PASSWORD, or add 'machine identity.dataspace.copernicus.eu login USER password PASS'
to ~/.netrc (chmod 600). ASF needs NASA Earthdata credentials (EARTHDATA_USERNAME/_PASSWORD or
machine urs.earthdata.nasa.gov in ~/.netrc).
Example:
  polarscan download S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15 --out data
Exit 0: all downloaded; 1: a download failed; 2: bad arguments, unknown product or credentials.
"""


MODES_HELP = "comma list of acquisition modes to search: EW, IW (default: EW,IW)"


def modes_type(flag: str = "--modes") -> Callable[[str], tuple[str, ...]]:
    """``EW,IW`` (any case) → ``("EW", "IW")``; an unknown mode is a usage error naming
    ``flag``."""

    def parse(text: str) -> tuple[str, ...]:
        from scanner.sources.base import check_modes

        try:
            return check_modes(text)
        except UsageError as err:
            raise UsageError(f"{flag} {text!r}: {err.problem}", err.fix) from None

    parse.__name__ = "modes"
    return parse


def add_modes(p: argparse.ArgumentParser) -> None:
    """``--modes EW,IW``, checked while parsing (shared by ``search`` and ``scan``); unset
    (None): the source's default (both), or for ``scan`` the config's ``modes``."""
    p.add_argument("--modes", type=modes_type("--modes"), metavar="LIST", help=MODES_HELP)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = add_command(
        sub, "search", "list the scenes a scan would process (no download)", SEARCH_HELP
    )
    add_area(p, required=True)
    add_window(p, "sensing from this UTC date (YYYY-MM-DD[THH:MM])", "sensing before this UTC date")
    p.add_argument(
        "--published-after",
        type=date_type("--published-after"),
        metavar="DATE",
        help="only scenes published after this UTC date/time (what is new since a run)",
    )
    add_source(p, default="cdse")
    add_modes(p)
    add_limit(p, "list at most N scenes")
    add_json(p, "print JSON: {scenes: [scene records], stats: what the search skipped and why}")
    p.set_defaults(func=run_search)

    d = add_command(
        sub, "download", "download products by id or name (verified, resumable)", DOWNLOAD_HELP
    )
    d.add_argument("products", nargs="+", metavar="ID|NAME", help="product id (UUID) or name")
    d.add_argument("--out", required=True, metavar="DIR", help="folder to download into")
    d.add_argument(
        "--retries",
        type=int_type("--retries", 0),
        default=5,
        metavar="N",
        help="retries per product (default 5)",
    )
    add_source(d, default="cdse")
    d.add_argument(
        "--access", choices=("download", "s3", "mount"), default="download",
        help="download (default); s3 or mount: copy nothing, check that the product (its COG "
        "twin preferred) is readable in place and print where (/vsis3/eodata/… or the mount)",
    )  # fmt: skip
    d.set_defaults(func=run_download)


def scene_record(scene) -> dict:
    """A JSON-ready dict of a scene (footprint as WKT)."""
    return {
        "id": scene.id,
        "name": scene.name,
        "source": scene.source,
        "start": scene.start.isoformat(),
        "stop": scene.stop.isoformat(),
        "published": scene.published.isoformat() if scene.published else None,
        "size": scene.size,
        "checksum": list(scene.checksum) if scene.checksum else None,
        "url": scene.url,
        "mode": scene.mode,
        "polarisations": list(scene.polarisations),
        "footprint": scene.footprint.wkt if scene.footprint is not None else None,
        "attrs": {k: v for k, v in scene.attrs.items() if _jsonable(v)},
    }


def _jsonable(v: object) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def run_search(args: argparse.Namespace) -> int:
    from polarscan.common.errors import UsageError
    from scanner.aoi import AOI
    from scanner.sources import get_source

    # dates arrive parsed (aware UTC) and ordered: see _args.add_window and check_window
    if args.since is None and args.published_after is None:
        raise UsageError(
            "a search needs a time", "give --since DATE (and --until DATE) or --published-after"
        )
    aoi = AOI.from_bbox(*args.bbox) if args.bbox else AOI.from_file(args.aoi)
    source = get_source(args.source, modes=args.modes)
    scenes = []
    for scene in source.search(aoi, args.since, args.until, published_after=args.published_after):
        scenes.append(scene)
        if args.limit is not None and len(scenes) >= args.limit:
            break
    stats = getattr(source, "last_search_stats", None)
    if args.json:
        doc = {"scenes": [scene_record(s) for s in scenes],
               "stats": stats.as_dict() if stats is not None else None}  # fmt: skip
        print_json(doc, indent=2)
        return 0
    for s in scenes:
        size = f"{s.size / 1e6:7.0f} MB" if s.size else "      ? MB"
        print(
            f"{s.start:%Y-%m-%d %H:%M:%S}  {s.name}  {s.mode or '?'} "
            f"{'+'.join(s.polarisations) or '?'}  {size}  {s.id}"
        )
    total = sum(s.size or 0 for s in scenes)
    print(f"{len(scenes)} scene(s) from {source.name}, {total / 1e9:.1f} GB", file=sys.stderr)
    if stats is not None:
        print(f"searched: {stats.summary()}", file=sys.stderr)
    return 0


def run_download(args: argparse.Namespace) -> int:
    from pathlib import Path

    from polarscan.common.errors import PolarScanError, UsageError
    from scanner.access.eodata import configure_access
    from scanner.sources import get_source

    source = get_source(args.source)  # a Source (scanner.sources.base): retries, progress, …
    configure_access(source, args.access)  # s3/mount: locate in place, copy nothing
    source.retries = args.retries
    source.progress = sys.stderr.isatty()
    source.check_credentials()  # before any work: a missing login says what to set
    # unknown ids (or a source that cannot look products up) fail before downloading
    scenes = [source.product(ident) for ident in args.products]
    out = Path(args.out)
    failed = 0
    for scene in scenes:
        try:
            path = source.download(scene, out)
        except UsageError:
            raise
        except PolarScanError as err:
            print(f"error: {scene.name}: {err}", file=sys.stderr)
            failed += 1
            continue
        print(path)
    return 1 if failed else 0
