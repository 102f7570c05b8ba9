"""Write seeded synthetic Sentinel-1 EW GRDM dual-pol products from the bundled real metadata.

    python tools/make_synthetic_product.py --out /tmp/s1 --scale 0.0625 \\
        --vortex 76.0 80.0 130 --slices 2 --seed 0 [--land] [--zip] [--compress deflate]

Writes ``OUT/<product name>.SAFE`` (or ``.zip``) per slice: real annotation, calibration and
noise XML (rescaled for ``--scale`` < 1), measurement TIFFs with DN² = sigma0·A² + noise and
speckle. ``--scale 1`` is the real 10487 × 10708 grid. Same seed, same pixels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polarscan.common.errors import PolarScanError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="folder to write the products into")
    ap.add_argument("--scale", type=float, default=1.0, help="grid scale in (0, 1]; 1 = real size")
    ap.add_argument(
        "--vortex",
        nargs=3,
        type=float,
        metavar=("LAT", "LON", "RADIUS_KM"),
        help="add a polar low centred at LAT, LON",
    )
    ap.add_argument("--slices", type=int, default=1, help="consecutive slices of the datatake")
    ap.add_argument("--land", action="store_true", help="add a bright coast")
    ap.add_argument("--zip", action="store_true", help="write .zip files as downloaded")
    ap.add_argument("--compress", choices=["deflate"], help="TIFF compression (default none)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from scanner.demo.synthetic_product import write_datatake

    try:
        paths = write_datatake(
            args.out,
            slices=args.slices,
            scale=args.scale,
            vortex=tuple(args.vortex) if args.vortex else None,
            land=args.land,
            seed=args.seed,
            zip=args.zip,
            compress=args.compress,
        )
    except PolarScanError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
