"""Publishing one mosaic into ``detections.gpkg`` vs the size of the archive already in it.

The scan's single writer adds each finished mosaic's rows (scenes, windows, detections, polar
lows, tracks) in one SQLite transaction (``scanner.outputs.gpkg.write_results`` with the
``forecast_update`` step). This measures, side by side in one run, what one such publish costs
when the file already holds N mosaics, for several N, and what one publish of a *batch* of B
mosaics costs (per mosaic), which is what the publisher's batching buys.

Each mosaic is a synthetic EW pass: ``--windows`` windows (default 40, a full EW scene's windows
at 200 m with the 192→128 demo card is of that order), one polar low in every fourth mosaic, a
pass every 50 min (so tracks form). The archive is built in bulk (one transaction per 500
mosaics, not counted); every publish then goes into a fresh copy of that archive, best of
``--repeat``.

    .venv/bin/python benchmarks/bench_publish.py [--sizes 100,1000,5000] [--batch 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanner.forecast import find_polar_lows  # noqa: E402
from scanner.forecast.config import TrackingConfig  # noqa: E402
from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord  # noqa: E402
from scanner.outputs.gpkg import write_results  # noqa: E402
from scanner.outputs.gpkg_forecast import forecast_update  # noqa: E402
from scanner.tiling import Window  # noqa: E402

T0 = datetime(2015, 1, 1, tzinfo=UTC)
PROV = Provenance("bench", "demo-192", 0.5)
TRACKING = TrackingConfig()


def make_mosaic(i: int, n_windows: int) -> MosaicResult:
    from rasterio.transform import from_origin
    from shapely.geometry import box

    start = T0 + timedelta(minutes=50 * i)
    stop = start + timedelta(minutes=2)
    side = int(np.ceil(np.sqrt(n_windows)))
    windows = tuple(
        Window(row=64 * (k // side) - 32, col=64 * (k % side) - 32, size=128, crop_offset=32,
               crop_size=64)  # fmt: skip
        for k in range(n_windows)
    )
    probs = np.full(n_windows, 0.05, np.float32)
    if i % 4 == 0:  # a polar low drifting east, one window over the threshold
        probs[(i // 4) % n_windows] = 0.93
    x0 = -1_500_000.0 + 20_000.0 * (i % 50)
    mid = f"S1A_EW_{start:%Y%m%dT%H%M%S}_{i:07d}"
    scene = SceneRecord(f"S1A_EW_GRDM_1SDH_{mid}", start, stop, box(-20, 65, 40, 80))
    return MosaicResult(mid, "EPSG:3413", from_origin(x0, 1_000_000.0, 200.0, 200.0),
                        shape=(64 * side, 64 * side), start=start, stop=stop, mode="EW",
                        polarisations=("HH", "HV"), scenes=(scene,), windows=windows,
                        probabilities=probs)  # fmt: skip


def publish(gpkg: Path, mosaics: list[MosaicResult]) -> None:
    lows = [low for m in mosaics for low in find_polar_lows(m, PROV)]
    step = forecast_update(lows, [m.mosaic_id for m in mosaics], TRACKING)
    write_results(gpkg, mosaics, PROV, also=[step])


def build_archive(gpkg: Path, n: int, n_windows: int) -> None:
    for lo in range(0, n, 500):
        publish(gpkg, [make_mosaic(i, n_windows) for i in range(lo, min(n, lo + 500))])


def timed(archive: Path, work: Path, mosaics: list[MosaicResult], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        shutil.copyfile(archive, work)
        t0 = time.perf_counter()
        publish(work, mosaics)
        best = min(best, time.perf_counter() - t0)
        work.unlink()
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,5000", help="mosaics already in the file")
    ap.add_argument("--windows", type=int, default=40, help="windows per mosaic")
    ap.add_argument("--batch", type=int, default=10, help="mosaics in one batched publish")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"{args.windows} windows per mosaic; best of {args.repeat}; batch of {args.batch}")
    print(f"{'mosaics in file':>15} {'file MB':>8} {'1 mosaic s':>10} "
          f"{'batch s/mosaic':>14} {'batch gain':>10}")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in sizes:
            archive = root / f"archive-{n}.gpkg"
            t0 = time.perf_counter()
            build_archive(archive, n, args.windows)
            built = time.perf_counter() - t0
            one = [make_mosaic(n, args.windows)]
            batch = [make_mosaic(n + k, args.windows) for k in range(args.batch)]
            t_one = timed(archive, root / "work.gpkg", one, args.repeat)
            t_batch = timed(archive, root / "work.gpkg", batch, args.repeat) / args.batch
            mb = archive.stat().st_size / 1e6
            rows.append((n, t_one))
            print(f"{n:>15} {mb:>8.1f} {t_one:>10.3f} {t_batch:>14.3f} "
                  f"{t_one / t_batch:>9.1f}x   (built in {built:.0f} s)", flush=True)  # fmt: skip
            archive.unlink()
    (n0, t0_), (n1, t1_) = rows[0], rows[-1]
    print(f"\none publish at {n1} mosaics / at {n0}: {t1_ / t0_:.2f}x "
          f"(file {n1 / n0:.0f}x as many mosaics)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
