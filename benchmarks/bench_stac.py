"""One STAC publish vs the size of the catalog already written (``scanner.outputs.stac``).

The scan's single writer calls ``write_stac`` once per finished mosaic. This builds a catalog of
N items (in bulk: one ``write_stac`` call per 500 mosaics, not counted), then times one more
publish — a new mosaic in the latest month, as a nightly scan or a backfill adds them — for
each N side by side, best of ``--repeat`` (each repeat adds another new mosaic), and counts the
files under ``stac/`` that the publish created or replaced. ``--old`` does the same for the
earlier flat layout's writer (copy the whole tree, load it with pystac, ``catalog.save()``,
swap), reproduced here.

Mosaics start every ``24 h / --per-day`` from 2015-01-01 (default 10 a day, ~300 items per
month catalog); every mosaic's assets point at the same five small files.

    .venv/bin/python benchmarks/bench_stac.py [--sizes 200,2000] [--per-day 10] [--old]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polarscan.common.atomic import atomic_path  # noqa: E402
from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord  # noqa: E402
from scanner.outputs.stac import build_item, write_stac  # noqa: E402

T0 = datetime(2015, 1, 1, tzinfo=UTC)
PROV = Provenance("bench", "demo-192", 0.5)
KINDS = ("rgb", "probability", "gradcam", "ig")


def make_mosaic(out: Path, i: int, per_day: int) -> MosaicResult:
    from shapely.geometry import box

    start = T0 + timedelta(days=i / per_day)
    stop = start + timedelta(minutes=2)
    mid = f"S1A_{i:06d}_0A{i % 4096:03X}_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}"
    name = f"S1A_EW_GRDM_1SDH_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{i:06d}_0A0000_0000"
    rasters = {k: str(out / "mosaics" / "shared" / f"{k}.tif") for k in KINDS}
    rasters["detections"] = str(out / "detections.gpkg")
    fp = box(-20, 65, 40, 80)
    return MosaicResult(mid, "EPSG:3413", None, start=start, stop=stop, footprint=fp, mode="EW",
                        polarisations=("HH", "HV"), scenes=(SceneRecord(name, start, stop, fp),),
                        rasters=rasters)  # fmt: skip


def old_write_stac(out_dir: Path, mosaics: Sequence[MosaicResult], prov: Provenance) -> Path:
    """The earlier writer (flat layout, whole tree copied, loaded and saved per publish)."""
    import pystac

    root = Path(out_dir) / "stac"
    with atomic_path(root) as tmp:
        if (root / "catalog.json").is_file():
            shutil.copytree(root, tmp)
            catalog = pystac.Catalog.from_file(str(tmp / "catalog.json"))
        else:
            tmp.mkdir(parents=True)
            catalog = pystac.Catalog(id="polarscan", description="old", title="polarscan outputs")
        for m in mosaics:
            if next(catalog.get_items(m.mosaic_id), None) is not None:
                catalog.remove_item(m.mosaic_id)
                shutil.rmtree(tmp / m.mosaic_id, ignore_errors=True)
            catalog.add_item(build_item(m, prov, root / m.mosaic_id))
        catalog.normalize_hrefs(str(tmp) + os.sep)
        catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_ino, st.st_mtime_ns)
    return out


def measure(writer, out: Path, n: int, per_day: int, repeat: int) -> tuple[float, float, int]:
    """(seconds to build N items, best seconds of one more publish, files it wrote)."""
    (out / "mosaics" / "shared").mkdir(parents=True)
    for k in KINDS:
        (out / "mosaics" / "shared" / f"{k}.tif").write_bytes(b"x")
    (out / "detections.gpkg").write_bytes(b"x")
    t0 = time.perf_counter()
    for lo in range(0, n, 500):
        writer(out, [make_mosaic(out, i, per_day) for i in range(lo, min(n, lo + 500))], PROV)
    built = time.perf_counter() - t0
    best, written = float("inf"), 0
    for r in range(repeat):
        m = make_mosaic(out, n + r, per_day)
        before = snapshot(out / "stac")
        t0 = time.perf_counter()
        writer(out, [m], PROV)
        best = min(best, time.perf_counter() - t0)
        after = snapshot(out / "stac")
        written = sum(1 for p, v in after.items() if before.get(p) != v)
    return built, best, written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="200,2000", help="items already in the catalog")
    ap.add_argument("--per-day", type=int, default=10, help="mosaics a day (items per month)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--old", action="store_true", help="also time the earlier flat writer")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    writers = {"months": write_stac} | ({"old flat": old_write_stac} if args.old else {})
    print(f"{args.per_day} mosaics a day; one more publish (a new item), best of {args.repeat}")
    print(f"{'writer':>9} {'items':>6} {'build s':>8} {'publish ms':>10} {'files written':>13}")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, writer in writers.items():
            for n in sizes:
                out = Path(tmp) / f"{name.replace(' ', '-')}-{n}"
                built, best, written = measure(writer, out, n, args.per_day, args.repeat)
                results.setdefault(name, []).append(best)
                print(f"{name:>9} {n:>6} {built:>8.1f} {best * 1e3:>10.1f} {written:>13}",
                      flush=True)  # fmt: skip
                shutil.rmtree(out)
    for name, times in results.items():
        print(f"{name}: one publish at {sizes[-1]} items / at {sizes[0]}: "
              f"{times[-1] / times[0]:.2f}x ({sizes[-1] / sizes[0]:.0f}x the items)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
