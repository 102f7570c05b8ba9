"""Benchmark: one full-size dual-pol EW scene (2 x 10487 x 10708 UInt16) → 500 m RGB mosaic COG.

Wall time is reported as a ratio to merely reading and decoding both measurement TIFFs (strip by
strip) in the same run, for uncompressed and deflate TIFFs as ESA stores them. Three read-only
baselines, from the most naive to the fastest we know: rasterio defaults one TIFF after the other
(``default``); the radiometry's GDAL options (64 MB block cache, direct IO), sequential
(``fast``); the same with both TIFFs read at once in two threads (``fast2``). The mosaic runs
with ``threads=1`` and ``threads=2`` forced (the default picks one by the idle CPUs). Each
measurement runs in a fresh subprocess so peak RSS (``ru_maxrss``) is its own; runs alternate
and the best of ``--repeat`` is kept (a shared machine is noisy); CPU seconds (all threads) are
reported too, since a loaded machine inflates wall times but not CPU work.

    .venv/bin/python benchmarks/bench_mosaic.py [--scale 1.0] [--repeat 3] [--resolution 500]
    .venv/bin/python benchmarks/bench_mosaic.py --mode IW --repeat 1 --compress deflate

``--mode IW`` writes the IW GRDH 1SDV sample instead (2 x 26102 x 16705 UInt16 at 10 m,
block-averaged 50 x 50 to 500 m); ``--compress`` limits the run to one TIFF form.
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


MOSAIC_THREADS_DEFAULT = 0  # 0 = MosaicConfig.threads' default (auto)


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child_read(product: str, mode: str) -> dict:
    """Read and decode both measurement TIFFs strip by strip; nothing else."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import rasterio
    from rasterio.windows import Window

    from scanner.safe.radiometry import GDAL_READ_OPTIONS

    safe = Path(product)
    tiffs = sorted((safe / "measurement").glob("*.tiff"))
    options = {} if mode == "default" else GDAL_READ_OPTIONS

    def read(t: Path) -> int:
        total = 0
        with rasterio.Env(**options), rasterio.open(t) as ds:
            rows = 512
            for r0 in range(0, ds.height, rows):
                a = ds.read(1, window=Window(0, r0, ds.width, min(rows, ds.height - r0)))
                total += int(np.uint16(a[0, 0]))
        return total

    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "fast2":
        with ThreadPoolExecutor(len(tiffs)) as pool:
            list(pool.map(read, tiffs))
    else:
        for t in tiffs:
            read(t)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,  # all threads
        "rss_mb": _rss_mb(),
        "tiffs": len(tiffs),
    }


def child_mosaic(product: str, out: str, resolution: float, threads: int) -> dict:
    # Import everything first: module import time is not mosaicking work.
    import pyproj  # noqa: F401
    import rasterio  # noqa: F401
    import scipy.interpolate  # noqa: F401
    import shapely.ops  # noqa: F401

    import scanner.cog  # noqa: F401
    import scanner.mosaic.geocode  # noqa: F401
    import scanner.safe.radiometry  # noqa: F401
    from scanner.mosaic import MosaicConfig, build_mosaic

    t0, c0 = time.perf_counter(), time.process_time()
    config = MosaicConfig(resolution_m=resolution, threads=threads or None)
    res = build_mosaic([product], out, config)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,  # all threads
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
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--resolution", type=float, default=500.0)
    ap.add_argument("--mode", choices=("EW", "IW"), default="EW", help="which real sample")
    ap.add_argument(
        "--compress", choices=("none", "deflate", "both"), default="both", help="TIFF forms"
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        # optional trailing arguments keep the original 'read PRODUCT' / 'mosaic PRODUCT OUT RES'
        # interface (tests/mosaic/test_06_mosaic_fullsize.py calls it)
        if kind == "read":
            out = child_read(rest[0], rest[1] if len(rest) > 1 else "default")
        else:
            threads = int(rest[3]) if len(rest) > 3 else MOSAIC_THREADS_DEFAULT
            out = child_mosaic(rest[0], rest[1], float(rest[2]), threads)
        print(json.dumps(out))
        return 0

    from scanner.demo.synthetic_product import SAMPLE, SAMPLE_IW, write_product

    sample = SAMPLE_IW if args.mode == "IW" else SAMPLE
    forms = {"none": (None,), "deflate": ("deflate",), "both": (None, "deflate")}[args.compress]

    reads_modes = ("default", "fast", "fast2")
    with tempfile.TemporaryDirectory(prefix="bench-mosaic-") as tmp:
        rows = []
        for compress in forms:
            label = compress or "uncompressed"
            t_write = time.perf_counter()
            product = write_product(
                Path(tmp) / label, scale=args.scale, compress=compress, sample=sample
            )
            print(f"wrote {label} {args.mode} product in {time.perf_counter() - t_write:.0f} s")
            size = sum(f.stat().st_size for f in (product / "measurement").glob("*.tiff"))
            reads: dict[str, list[dict]] = {m: [] for m in reads_modes}
            mosaics: dict[int, list[dict]] = {1: [], 2: []}
            for i in range(args.repeat):
                for mode in reads_modes:
                    reads[mode].append(run_child("read", str(product), mode))
                for threads in mosaics:
                    out = f"{tmp}/{label}-{i}-{threads}.tif"
                    mosaics[threads].append(
                        run_child("mosaic", str(product), out, str(args.resolution), str(threads))
                    )
            best_r = {m: min(v, key=lambda d: d["wall_s"]) for m, v in reads.items()}
            best_m = {t: min(v, key=lambda d: d["wall_s"]) for t, v in mosaics.items()}
            rows.append((label, size, best_r, best_m))
        print(f"{args.mode} scene: 2 x {_shape(args.scale, args.mode)} UInt16, ", end="")
        print(f"mosaic at {args.resolution:g} m, ", end="")
        print(f"best of {args.repeat}")
        print(
            f"{'tiffs':<13} {'MB':>5} | {'read s: default':>15} {'fast':>5} {'fast2':>5} | "
            f"{'mosaic s: thr=1':>15} {'thr=2':>5} | {'thr=2 / read: default':>21} "
            f"{'fast':>5} {'fast2':>5} | {'RSS MB: read':>12} {'mosaic':>6}"
        )
        for label, size, r, m in rows:
            wall = m[2]["wall_s"]
            print(
                f"{label:<13} {size / 1e6:>5.0f} | {r['default']['wall_s']:>15.2f} "
                f"{r['fast']['wall_s']:>5.2f} {r['fast2']['wall_s']:>5.2f} | "
                f"{m[1]['wall_s']:>15.2f} {wall:>5.2f} | "
                f"{wall / r['default']['wall_s']:>21.2f} {wall / r['fast']['wall_s']:>5.2f} "
                f"{wall / r['fast2']['wall_s']:>5.2f} | "
                f"{max(v['rss_mb'] for v in r.values()):>12.0f} "
                f"{max(v['rss_mb'] for v in m.values()):>6.0f}"
            )
        print("CPU seconds (all threads; what a loaded machine cannot hide) of the same best runs:")
        for label, _size, r, m in rows:
            cpu = {k: v["cpu_s"] for k, v in r.items()}
            print(
                f"{label:<13} read: default {cpu['default']:.2f} fast {cpu['fast']:.2f} "
                f"fast2 {cpu['fast2']:.2f} | mosaic: thr=1 {m[1]['cpu_s']:.2f} "
                f"thr=2 {m[2]['cpu_s']:.2f} | mosaic thr=1 / read fast {m[1]['cpu_s'] / cpu['fast']:.2f}"
            )
        for label, _size, _r, m in rows:
            for t, v in m.items():
                stages = " ".join(f"{k}={x:.2f}" for k, x in v["timings"].items())
                print(
                    f"{label} mosaic threads={t} stages (s, overlapping when threads=2): {stages}"
                )
        print(f"output grid: {rows[0][3][2]['shape']} px")
    return 0


def _shape(scale: float, mode: str = "EW") -> str:
    lines, samples = (16705, 26102) if mode == "IW" else (10708, 10487)
    return f"{round(lines * scale)} x {round(samples * scale)}"


if __name__ == "__main__":
    sys.exit(main())
