"""``catalog --relink-tracks``: link every polar low of ``OUT/detections.gpkg`` again with the
tracking settings of the scan config (after an operator changed ``tracking:``).

A publish relinks only the time clusters its mosaics touch, so clusters published before a
change of ``tracking.max_gap_h`` / ``max_speed_ms`` keep the links of the old settings. This
repair gives the file what linking every polar low with the current settings gives
(:func:`scanner.forecast.tracks.build_tracks`): track ids in ``polar_lows`` and
``polar_low_footprints``, and the whole ``tracks`` layer. It runs as a GeoPackage write with no
mosaics (:func:`scanner.outputs.gpkg.write_results`: writer lock, one SQLite transaction),
so a failure leaves the previous file as it was; and never while a scan holds the folder's run
lock (that scan's publishes relink with its own settings).

While it runs, the relink holds that run lock itself (the :class:`~scanner.record.claims.RunLock`
a scan takes): a scan started meanwhile is refused as a second scan is (exit 2, naming the
holder), and the lock is released when the relink ends, also on an error. A folder with a
GeoPackage but no record gets an empty record, as its first scan would, to hold the lock in.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from polarscan.commands._args import default_config, print_json
from polarscan.common.errors import UsageError


def relink_tracks(args: argparse.Namespace) -> int:
    from polarscan.common.config import load_config
    from scanner.outputs import gpkg_sql
    from scanner.outputs.gpkg import write_results
    from scanner.outputs.gpkg_forecast import relink_all
    from scanner.scan.config import ScanConfig
    from scanner.scan.publish import gpkg_path

    config_path = args.config if args.config is not None else default_config("scan.yaml")
    config = load_config(ScanConfig, config_path)
    tracking = config.tracking
    out = Path(args.out)
    gpkg = gpkg_path(out)
    if not gpkg.is_file():
        raise UsageError(
            f"no detections.gpkg in {out}: no tracks to relink",
            "give --out the scan folder that holds detections.gpkg (a scan writes it there)",
            key="out",
        )
    if not gpkg_sql.is_geopackage(gpkg):
        raise UsageError(
            f"{gpkg} is not a GeoPackage", "check --out, or move the file aside", key="out"
        )
    say = sys.stderr if args.json else sys.stdout
    settings = {"max_gap_h": tracking.max_gap_h, "max_speed_ms": tracking.max_speed_ms}
    with holding_run_lock(out, config.claim_ttl_s):
        if "polar_lows" not in gpkg_sql.tables(gpkg):
            print(f"{gpkg} has no polar_lows layer (no scan has found polar lows in it yet): "
                  "nothing to relink; the file is unchanged", file=say)  # fmt: skip
            if args.json:
                print_json(_report(gpkg, settings, None), indent=1)
            return 0
        step, done = relink_all(tracking)
        write_results(gpkg, [], also=[step])
    report = _report(gpkg, settings, done)
    if args.json:
        print_json(report, indent=1)
    else:
        for c in report["changed"]:
            print(f"{c['polar_low_id']}  {c['before'] or '-'} → {c['after'] or '-'}")
    print(
        f"relinked {done.polar_lows} polar low(s) in {gpkg} with max_gap_h "
        f"{tracking.max_gap_h:g}, max_speed_ms {tracking.max_speed_ms:g}: tracks "
        f"{len(done.tracks_before)} → {len(done.tracks_after)} "
        f"({len(report['tracks_removed'])} gone, {len(report['tracks_added'])} new), "
        f"{len(done.changed)} polar low(s) changed track",
        file=say,
    )
    return 0


@contextlib.contextmanager
def holding_run_lock(out: Path, ttl: float) -> Iterator[None]:
    """Hold the run lock of ``out``'s record (the one :func:`scanner.scan.run.scan` takes) for
    the body; released after it, also when it fails. A live scan holding it already: a
    :class:`UsageError` saying the tracks were not relinked (a scan that takes it between that
    check and ours meets :class:`~scanner.record.claims.RunLock`'s own refusal, also exit 2)."""
    from scanner.record import Record, new_run_id
    from scanner.record.db import now_utc

    with Record.open(out) as rec:
        holder = rec.lock_holder()
        if holder is not None and not holder.is_stale(now_utc()):
            raise UsageError(
                f"a scan is running in {out}: {holder.describe()}; the tracks were not relinked",
                "rerun --relink-tracks after it finishes; if that process is dead, run "
                f"`polarscan catalog --out {out} --clear-lock` first",
            )
        with rec.lock(f"relink-tracks-{new_run_id()}", ttl):
            yield


def _report(gpkg: Path, settings: dict[str, float], done: Any) -> dict[str, Any]:
    """What ``--json`` prints (``done``: the :class:`~scanner.outputs.gpkg_forecast.Relinked`
    of the write, or None when nothing was written)."""
    before = list(done.tracks_before) if done else []
    after = list(done.tracks_after) if done else []
    changed = sorted((done.changed if done else {}).items())
    kept_before, kept_after = set(before), set(after)
    return {
        "gpkg": str(gpkg),
        "written": done is not None,
        "tracking": settings,
        "polar_lows": done.polar_lows if done else 0,
        "tracks_before": len(before),
        "tracks_after": len(after),
        "tracks_removed": [t for t in before if t not in kept_after],
        "tracks_added": [t for t in after if t not in kept_before],
        "changed": [{"polar_low_id": low, "before": b, "after": a} for low, (b, a) in changed],
    }
