"""CLI commands ``mosaic`` (products → RGB mosaic COG) and ``mosaic-stats`` (channel means)."""

from __future__ import annotations

import argparse
from pathlib import Path

from polarscan.commands._args import (
    add_command,
    add_json,
    default_config,
    float_type,
    print_json,
)

MOSAIC_HELP = """\
Turn Sentinel-1 EW GRDM dual-pol products (SAFE folders or their .zip) into a georeferenced RGB
mosaic (Cloud-Optimized GeoTIFF; EPSG:3413 at 500 m by default; R = G = HV dB, B = HH dB).
Consecutive slices of one datatake join into one seamless strip. Products of several datatakes:
--out must then be a directory and one mosaic per strip is written into it. Nothing is written
unless every mosaic succeeds.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = add_command(
        sub, "mosaic", "make an RGB mosaic COG from Sentinel-1 EW or IW GRD products", MOSAIC_HELP
    )
    p.add_argument("products", nargs="+", metavar="PRODUCT", help=".SAFE folder or .zip")
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output .tif, or a directory (one <mission>_<orbit>_<datatake>_<start>_<stop>_rgb.tif "
        "per strip; required when the products form several strips)",
    )
    p.add_argument("--config", metavar="YAML", help="mosaic config (default: configs/mosaic.yaml)")
    p.add_argument("--crs", help="target CRS, e.g. EPSG:3413 (overrides the config)")
    p.add_argument(
        "--resolution",
        type=float_type("--resolution", 0.0, float("inf"), example="500"),
        metavar="M",
        help="pixel size in metres",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)

    s = sub.add_parser(
        "mosaic-stats",
        help="mean R, G, B of a mosaic next to the training dataset's (0.287, 0.287, 0.460)",
        description="Mean R, G, B of a mosaic's valid pixels (optionally only where a sea-mask "
        "raster on the same grid is non-zero), as fractions of 255, beside the dataset's means. "
        "The RGB recipe is inferred: use this to check a recipe against the training images.",
    )
    s.add_argument("mosaic", metavar="MOSAIC", help="RGB mosaic GeoTIFF")
    s.add_argument(
        "--sea-mask", metavar="RASTER", help="raster on the mosaic's grid, non-zero = sea"
    )
    add_json(s, "print JSON")
    s.set_defaults(func=run_stats)


def run(args: argparse.Namespace) -> int:
    from polarscan.common.config import load_config
    from scanner.mosaic.config import MosaicConfig
    from scanner.mosaic.run import mosaic_products

    path = args.config or default_config("mosaic.yaml")
    config = load_config(MosaicConfig, path, {"crs": args.crs, "resolution_m": args.resolution})
    results = mosaic_products(args.products, Path(args.out), config, overwrite=args.overwrite)
    if not args.quiet:
        for r in results:
            h, w = r.shape
            print(
                f"{r.path}  {w} x {h} px  {len(r.products)} product(s)  {r.start:%Y-%m-%dT%H:%M:%S}"
            )
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from scanner.mosaic.stats import channel_means

    res = channel_means(args.mosaic, args.sea_mask)
    if args.json:
        print_json(
            {"means": list(res.means), "pixels": res.pixels, "reference": list(res.reference)}
        )
    else:
        print(res.report())
    return 0
