"""Benchmark: one full-size dual-pol EW scene (2 x 10487 x 10708 UInt16) → 500 m RGB mosaic COG.

Wall time is reported as a ratio to merely reading and decoding both measurement TIFFs (strip by
strip, as fast as rasterio/GDAL go) in the same run, for uncompressed and deflate TIFFs as ESA
stores them. Each measurement runs in a fresh subprocess so peak RSS (``ru_maxrss``) is its own;
runs alternate read/mosaic and the best of ``--repeat`` is kept (a shared machine is noisy).

    .venv/bin/python benchmarks/bench_mosaic.py [--scale 1.0] [--repeat 2] [--resolution 500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child_read(product: str) -> dict:
    """Read and decode both measurement TIFFs strip by strip; nothing else."""
    import rasterio
    from rasterio.windows import Window

    safe = Path(product)
    tiffs = sorted((safe / "measurement").glob("*.tiff"))
    t0 = time.perf_counter()
    total = 0
    for t in tiffs:
        with rasterio.open(t) as ds:
            rows = 512
            for r0 in range(0, ds.height, rows):
                a = ds.read(1, window=Window(0, r0, ds.width, min(rows, ds.height - r0)))
                total += int(a[0, 0])
    return {"wall_s": time.perf_counter() - t0, "rss_mb": _rss_mb(), "tiffs": len(tiffs)}


def child_mosaic(product: str, out: str, resolution: float) -> dict:
    # Import everything first: module import time is not mosaicking work.
    import pyproj  # noqa: F401
    import rasterio  # noqa: F401
    import scipy.interpolate  # noqa: F401
    import shapely.ops  # noqa: F401

    import scanner.cog  # noqa: F401
    import scanner.mosaic.geocode  # noqa: F401
    import scanner.safe.radiometry  # noqa: F401
    from scanner.mosaic import MosaicConfig, build_mosaic

    t0 = time.perf_counter()
    res = build_mosaic([product], out, MosaicConfig(resolution_m=resolution))
    return {
        "wall_s": time.perf_counter() - t0,
        "rss_mb": _rss_mb(),
        "shape": list(res.shape),
        "timings": res.timings,
    }


def run_child(*args: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="grid scale (1.0 = full size)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--resolution", type=float, default=500.0)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "read":
            out = child_read(rest[0])
        else:
            out = child_mosaic(rest[0], rest[1], float(rest[2]))
        print(json.dumps(out))
        return 0

    from scanner.demo.synthetic_product import write_product

    with tempfile.TemporaryDirectory(prefix="bench-mosaic-") as tmp:
        rows = []
        for compress in (None, "deflate"):
            label = compress or "uncompressed"
            t0 = time.perf_counter()
            product = write_product(Path(tmp) / label, scale=args.scale, compress=compress)
            gen = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in (product / "measurement").glob("*.tiff"))
            reads, mosaics = [], []
            for i in range(args.repeat):
                reads.append(run_child("read", str(product)))
                mosaics.append(
                    run_child(
                        "mosaic", str(product), f"{tmp}/{label}-{i}.tif", str(args.resolution)
                    )
                )
            r = min(reads, key=lambda d: d["wall_s"])
            m = min(mosaics, key=lambda d: d["wall_s"])
            rows.append((label, size, gen, r, m))
        print(f"scene: 2 x {_shape(args.scale)} UInt16, mosaic at {args.resolution:g} m")
        print(
            f"{'tiffs':<13} {'MB':>6} {'read s':>7} {'mosaic s':>9} {'ratio':>6} "
            f"{'read RSS MB':>12} {'mosaic RSS MB':>14}  mosaic stages (s)"
        )
        for label, size, _gen, r, m in rows:
            stages = " ".join(f"{k}={v:.2f}" for k, v in m["timings"].items())
            print(
                f"{label:<13} {size / 1e6:>6.0f} {r['wall_s']:>7.2f} {m['wall_s']:>9.2f} "
                f"{m['wall_s'] / r['wall_s']:>6.2f} {r['rss_mb']:>12.0f} {m['rss_mb']:>14.0f}  "
                f"{stages}"
            )
        print(f"output grid: {rows[0][4]['shape']} px")
    return 0


def _shape(scale: float) -> str:
    return f"{round(10708 * scale)} x {round(10487 * scale)}"


if __name__ == "__main__":
    sys.exit(main())
