"""``open_scan`` over a winter of nights: peak memory and time vs the number of mosaics.

Writes a scan-output folder of N synthetic EW mosaics (``mosaics/<id>/<id>_probability.tif`` and
``_gradcam.tif`` as the scan writes them: float32 COGs at 500 m, 800 x 800 px = 400 km, spread
over a 4000 x 4000 km box in EPSG:3413, three passes a day; a 1-pixel RGB COG carries the
sensing-time tags). Then, for each N, in a fresh subprocess (peak RSS from ``getrusage``):

  open      ``open_scan(OUT)`` (headers only)
  max       ``ds.probability.max("time").compute()``: the map of the maximum probability
  daily     ``(ds.probability > 0.5).any(("y", "x")).groupby("time.date").sum().compute()``

The cube's grid is the same for every N (``bounds`` given), so the outputs have one size and
any growth of peak memory with N is the cube's own.

    .venv/bin/python benchmarks/bench_cube.py [--counts 20,200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BOX = (-2_000_000.0, -2_000_000.0, 2_000_000.0, 2_000_000.0)  # EPSG:3413, the cube's bounds
PIXEL = 500.0
SIDE = 800  # px: a 400 km EW swath at 500 m
T0 = datetime(2024, 11, 1, tzinfo=UTC)


def write_archive(out: Path, n: int) -> None:
    import rasterio
    from rasterio.transform import from_origin

    from scanner.outputs.rasters import write_float_cog

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    for i in range(n):
        start = T0 + timedelta(hours=8 * i)
        mid = f"S1A_EW_{start:%Y%m%dT%H%M%S}_{i:05d}"
        folder = out / "mosaics" / mid
        folder.mkdir(parents=True)
        x0 = BOX[0] + PIXEL * rng.integers(0, (BOX[2] - BOX[0]) / PIXEL - SIDE)
        y0 = BOX[3] - PIXEL * rng.integers(0, (BOX[3] - BOX[1]) / PIXEL - SIDE)
        transform = from_origin(x0, y0, PIXEL, PIXEL)
        cy, cx = rng.uniform(100, SIDE - 100, 2)
        prob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 60.0**2)).astype(np.float32)
        prob[:, : rng.integers(0, 200)] = np.nan  # outside the swath
        tags = {"start": start.isoformat(), "stop": (start + timedelta(minutes=2)).isoformat()}
        write_float_cog(folder / f"{mid}_probability.tif", prob, transform=transform,
                        crs="EPSG:3413", name="probability", tags=tags)  # fmt: skip
        write_float_cog(folder / f"{mid}_gradcam.tif", prob**2, transform=transform,
                        crs="EPSG:3413", name="gradcam", tags=tags)  # fmt: skip
        with rasterio.open(folder / f"{mid}_rgb.tif", "w", driver="GTiff", width=1, height=1,
                           count=3, dtype="uint8", crs="EPSG:3413",
                           transform=transform) as dst:  # fmt: skip
            dst.write(np.zeros((3, 1, 1), np.uint8))
            dst.update_tags(**tags)


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
import dask
from scanner import open_scan
dask.config.set(scheduler="threads", num_workers=2)
out, step = sys.argv[1], sys.argv[3]
t0 = time.perf_counter()
ds = open_scan(out, bounds=(-2e6, -2e6, 2e6, 2e6))
if step == "max":
    ds.probability.max("time").compute()
elif step == "daily":
    hit = (ds.probability > 0.5).any(("y", "x"))
    hit.groupby("time.date").sum().compute()
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "peak_mb": peak, "steps": ds.sizes["time"],
                  "shape": [ds.sizes["y"], ds.sizes["x"]]}))
"""


def measure(out: Path, step: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), str(REPO), step],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="20,200", help="mosaics in the archive")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    rows: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            out = Path(tmp) / f"out-{n}"
            t0 = time.perf_counter()
            write_archive(out, n)
            print(f"{n} mosaics written in {time.perf_counter() - t0:.0f} s (not counted)",
                  flush=True)  # fmt: skip
        for step in ("open", "max", "daily"):  # interleaved: the counts side by side
            for n in counts:
                rows[n, step] = r = measure(Path(tmp) / f"out-{n}", step)
                print(f"{step:>6} {n:>5} mosaics: {r['wall']:7.2f} s, peak RSS {r['peak_mb']:7.0f} "
                      f"MB (cube {r['steps']} x {r['shape'][0]} x {r['shape'][1]})", flush=True)  # fmt: skip
    lo, hi = counts[0], counts[-1]
    print()
    for step in ("open", "max", "daily"):
        a, b = rows[lo, step], rows[hi, step]
        print(f"{step:>6}: {hi} vs {lo} mosaics: time {b['wall'] / a['wall']:.2f}x, "
              f"peak RSS {b['peak_mb'] / a['peak_mb']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
