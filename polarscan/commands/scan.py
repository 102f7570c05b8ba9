"""CLI command ``scan``: find new scenes over an area, mosaic, score, explain, publish."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polarscan.commands._args import (
    DEFAULT_OUT,
    add_area,
    add_command,
    add_json,
    add_source,
    add_window,
    default_config,
    int_type,
    print_json,
    probability_type,
)
from polarscan.commands.sources import add_modes

HELP = """\
Scan Sentinel-1 EW and IW scenes over an area for polar lows. Finds the scenes (new since the last run
with --since last), downloads them, builds one mosaic per datatake, scores the model's windows,
writes Grad-CAM/IG rasters, and adds everything to OUT: detections.gpkg (QGIS layers), mosaics/,
stac/catalog.json, record.sqlite. Exit 0: every scene succeeded; 1: some failed (the others are
done and recorded, and failed ones are retried next run); 2: bad usage; 3: disk full or file-size
limit hit (free space, rerun); 130/143: interrupted by Ctrl-C/SIGTERM (scenes released). Mosaics
past the month's data quota (quota_gb_per_month in the config) wait, pending, for next month's
runs (exit 0, a notice in the summary). See docs/faults.md.
Try it offline: python cli.py scan --source demo --out demo-output
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = add_command(
        sub, "scan", "scan new scenes over an area for polar lows (dask-parallel)", HELP
    )
    add_area(p, required=False)
    add_window(
        p,
        "sensing date (YYYY-MM-DD[THH:MM]) or 'last' = published since the previous run "
        "(default: last; a first run looks back one day; demo/local: everything)",
        "sensing date upper bound (default: now)",
        since_metavar="last|DATE",
        since_last=True,
    )
    add_source(p)  # no default here: the config's source applies
    add_modes(p)  # likewise: the config's modes (EW,IW) apply
    p.add_argument(
        "--access", choices=("download", "s3", "mount"), default=None,
        help="cdse products: download them (default), or read them in place over s3 "
        "(CDSE_S3_ACCESS_KEY/CDSE_S3_SECRET_KEY) or from the eodata mount (CDSE_EODATA_MOUNT)",
    )  # fmt: skip
    p.add_argument("--model", metavar="PATH", help="model file (.keras or the authors' .h5)")
    p.add_argument("--out", metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument(
        "--threshold", type=probability_type("--threshold"), metavar="P",
        help="detection probability, in (0, 1)",
    )  # fmt: skip
    p.add_argument(
        "--saliency", metavar="LIST", help="comma list of gradcam,ig or 'none' (default: gradcam)"
    )
    p.add_argument(
        "--workers", type=int_type("--workers"), metavar="N", help="LocalCluster worker processes"
    )
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use an existing dask cluster")
    p.add_argument(
        "--sequential",
        action="store_true",
        default=None,
        help="run in this process without dask (debugging)",
    )
    p.add_argument(
        "--notify", metavar="URL", help="POST the night's polar lows as GeoJSON to this webhook"
    )
    p.add_argument(
        "--on-detection", metavar="CMD",
        help="run CMD with the path of the night's polar lows GeoJSON appended",
    )  # fmt: skip
    p.add_argument("--config", default=None, metavar="YAML", help="default: configs/scan.yaml")
    add_json(p, "print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict:
    return {
        "source": args.source,
        "modes": list(args.modes) if args.modes is not None else None,
        "access": args.access,
        "model": args.model,
        "out": args.out,
        "threshold": args.threshold,
        "saliency": {"methods": args.saliency} if args.saliency is not None else None,
        "workers": args.workers,
        "scheduler": args.scheduler,
        "sequential": args.sequential,
        "notify": {k: v for k, v in (("url", args.notify), ("command", args.on_detection)) if v}
        or None,
    }


def run(args: argparse.Namespace) -> int:
    from polarscan.common.config import load_config
    from scanner.scan import ScanConfig, ScanRequest, scan

    config_path = args.config if args.config is not None else default_config("scan.yaml")
    config = load_config(ScanConfig, config_path, _overrides(args))
    request = ScanRequest(
        bbox=tuple(args.bbox) if args.bbox is not None else None,
        aoi_file=args.aoi,
        since=args.since,
        until=args.until,
    )
    progress = not (args.json or args.no_progress or args.quiet) and sys.stderr.isatty()
    summary = scan(request, config, progress=progress)
    if args.json:
        print_json(summary.to_dict(), indent=2, default=str)
    else:
        print(format_summary(summary.to_dict()))
    return 1 if summary.counts.failed else 0


def format_summary(s: dict) -> str:
    """The one-screen summary printed by ``scan``, from :meth:`ScanSummary.to_dict` (the same
    structure ``--json`` prints)."""
    c = s["counts"]
    lines = [
        f"scan {s['run_id']}  source {s['source']}  model {Path(s['model']).name} "
        f"(threshold {s['threshold']:.2f})",
        f"scenes: {c['found']} found, {c['new']} new, {c['processed']} processed, "
        f"{c['failed']} failed, {c['skipped']} skipped"
        + (f", {c['deferred']} deferred (quota)" if c.get("deferred") else "")
        + (
            f" ({c['unaccepted']} of a mode the model does not accept)"
            if c.get("unaccepted")
            else ""
        ),
        f"mosaics: {c['mosaics']}  windows scored: {c['windows']}  detections: {c['detections']}",
    ]
    if s.get("skipped_by_source"):
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(s["skipped_by_source"].items()))
        lines.append(f"left out by the source: {why}")
    for d in s["top_detections"]:
        lines.append(
            f"  p={d['probability']:.3f}  {d['lat']:.2f}°N {d['lon']:.2f}°E  {d['mosaic']}"
        )
    for f in s["failures"]:
        lines.append(f"  FAILED {f['mosaic']}: {f['error']}")
    q = s.get("quota") or {}
    if q:
        budget = "no budget" if q["budget_gb"] is None else f"{q['budget_gb']:g} GB"
        lines.append(f"data quota {q['month']} ({q['source']}): {q['used_gb']:.2f} of {budget} "
                     f"used, {q['this_run_gb']:.2f} GB by this run")  # fmt: skip
    for notice in s.get("notices") or ():
        lines.append(f"NOTICE {notice}")
    o = s["outputs"]
    files = "  ".join(p for p in (o["gpkg"], o["stac"]) if Path(p).exists()) or "none yet"
    lines.append(f"outputs: {files}  ({len(o['mosaics'])} mosaic folder(s) this run)")
    forecast = []
    if "polar_lows" in o:
        forecast.append(f"{o['polar_lows']} polar low(s) (detections.gpkg: polar_lows, tracks)")
    if "tracks" in o:
        forecast.append(f"tracks: {o['tracks']}")
    for key, label in (("report", "report"), ("qgis_project", "QGIS project")):
        if o.get(key):
            path = Path(o[key])
            if o.get("folder") and path.is_relative_to(o["folder"]):
                path = path.relative_to(o["folder"])  # the folder is on the line above
            forecast.append(f"{label}: {path}")
    if forecast:
        lines.append("forecast: " + "  ".join(forecast))
    if o.get("log"):
        lines.append(f"log: {o['log']}")
    cl = s.get("cluster") or {}
    if cl.get("mode"):
        extra = f", dashboard {cl['dashboard']}" if cl.get("dashboard") else ""
        lines.append(f"ran: {cl['mode']} with {cl.get('workers', 0)} worker(s){extra}")
    if s.get("timings"):
        lines.append("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s["timings"].items()))
    lines.append(f"time: {s['seconds']:.1f} s")
    return "\n".join(lines)
