"""Benchmark: block radiometry (``sigma0_blocks``) of a full-size dual-pol EW scene vs raw reading.

Reports, measured side by side in one run (best of ``--repeat``, alternating, each on a freshly
opened product so GDAL's block cache never serves a second pass): the time to merely
read and decode both measurement TIFFs strip by strip, the time of ``sigma0_blocks`` for HH and
HV (read + DN² block means + LUTs at block centres + calibration), their ratio, the time the
synthetic generator took to write the scene, and peak RSS.

    .venv/bin/python benchmarks/bench_safe_radiometry.py [--block 12] [--repeat 3] [--compress deflate]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def read_only(product) -> float:
    """Both TIFFs strip by strip, with the GDAL options the radiometry uses (small cache,
    direct IO)."""
    import rasterio
    from rasterio.windows import Window

    from scanner.safe.radiometry import GDAL_READ_OPTIONS

    t0 = time.perf_counter()
    lines, samples = product.shape
    with rasterio.Env(**GDAL_READ_OPTIONS):
        for pol in ("HH", "HV"):
            for r0 in range(0, lines, 516):
                product.read_dn(pol, Window(0, r0, samples, min(516, lines - r0)))
    return time.perf_counter() - t0


def blocks(product, block: int) -> float:
    from scanner.safe.radiometry import sigma0_blocks

    t0 = time.perf_counter()
    for pol in ("HH", "HV"):
        sigma0_blocks(product, pol, block)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--block", type=int, default=12, help="block size in pixels (12 ≈ 500 m)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compress", choices=["deflate"], default=None)
    ap.add_argument("--product", type=Path, help="use this product instead of generating one")
    args = ap.parse_args()
    from scanner.demo.synthetic_product import write_product
    from scanner.safe import open_product

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = args.product or write_product(tmp, scale=1.0, seed=0, compress=args.compress)
        gen = time.perf_counter() - t0
        reads, blks = [], []
        for _ in range(args.repeat):  # a fresh product each time: GDAL's block cache starts empty
            with open_product(path) as p:
                reads.append(read_only(p))
            with open_product(path) as p:
                blks.append(blocks(p, args.block))  # includes parsing the LUT XML
                shape = p.shape
    r, b = min(reads), min(blks)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scene {shape[1]} x {shape[0]} x 2 pols, TIFF compression {args.compress or 'none'}")
    if not args.product:
        print(f"generate (synthetic writer)   {gen:6.2f} s")
    print(f"read + decode both TIFFs      {r:6.2f} s")
    print(f"sigma0_blocks HH + HV (b={args.block})  {b:6.2f} s   ratio {b / r:4.2f}x read")
    print(f"peak RSS                      {rss:6.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
