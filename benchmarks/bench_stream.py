"""Client memory of a backfill: peak RSS of the scan process with few vs many queued scenes.

The runner keeps at most ``max_in_flight`` mosaic chains in the cluster and the publisher keeps
only counts and the top detections, so the scan process (the dask client and single writer)
should not grow with the backlog. Side by side in one run: the same scan over N1 and N2
scale-reduced single-slice products (each its own mosaic), a LocalCluster of 2 workers, the
scan run as a subprocess whose own peak RSS (``VmHWM``, the client only — not its workers) is
read from ``/proc`` while it runs.

    .venv/bin/python benchmarks/bench_stream.py [--counts 20 200] [--scale 0.03125]
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
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def peak_rss_mb(pid: int) -> float | None:
    """``VmHWM`` of a live process, in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_scan(folder: Path, out: Path, workers: int) -> tuple[dict, float, float]:
    """(summary, seconds, client peak RSS MB) of one scan over ``folder``."""
    from polarscan.resources import demo_model

    cmd = [sys.executable, str(REPO / "cli.py"), "-q", "scan", "--source", f"local:{folder}",
           "--bbox", "60", "70", "110", "83", "--since", "2022-11-01", "--model",
           str(demo_model()), "--out", str(out), "--saliency", "none", "--workers",
           str(workers), "--json", "--no-progress"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        got = peak_rss_mb(proc.pid)
        peak = max(peak, got or 0.0)
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}): {stderr[-2000:]}")
    return json.loads(stdout), time.perf_counter() - t0, peak


def main(argv: list[str] | None = None) -> int:
    from bench_scan import write_products

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs=2, default=[20, 200], metavar=("N1", "N2"))
    ap.add_argument("--scale", type=float, default=1 / 32, help="product size vs a full scene")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        for n in args.counts:
            t0 = time.perf_counter()
            folder = Path(tmp) / f"p{n}"
            write_products(folder, n, args.scale)
            made = time.perf_counter() - t0
            summary, secs, peak = run_scan(folder, Path(tmp) / f"out{n}", args.workers)
            c = summary["counts"]
            rows.append((n, c["mosaics"], c["processed"], secs, peak))
            print(f"{n:>5} scenes ({made:.0f} s to write): {c['mosaics']} mosaics, "
                  f"{c['processed']} processed, {c['failed']} failed in {secs:.0f} s; "
                  f"client peak RSS {peak:.0f} MB", flush=True)  # fmt: skip
    (n1, *_, p1), (n2, *_, p2) = rows
    print(f"client peak RSS {n2} vs {n1} queued scenes: {p2 / p1:.3f}× "
          f"(growth {100 * (p2 / p1 - 1):+.1f} %, target ≤ +10 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
