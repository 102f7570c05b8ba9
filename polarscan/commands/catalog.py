"""CLI command ``catalog``: list and filter the scan record, re-queue or forget scenes, clear a
stale lock. The record lives in ``<out>/record.sqlite``. ``--relink-tracks`` repairs the tracks
of ``<out>/detections.gpkg`` (:mod:`polarscan.commands.catalog_relink`); ``--check`` verifies
the folder against the record (:mod:`polarscan.commands.catalog_check`)."""

from __future__ import annotations

import argparse
import json
import sys

from polarscan.commands._args import (
    DEFAULT_OUT,
    add_command,
    add_json,
    add_limit,
    add_window,
    existing_record,
    print_json,
)

HELP = """\
List what the scan record of OUT (OUT/record.sqlite) knows: every scene found, its status
(found / downloaded / processed / failed / skipped), attempts and last error. With an action,
change it: --requeue-failed (retry failed scenes on the next scan, with fresh attempts),
--requeue ID… (also a processed scene, e.g. after a model update), --requeue-matching (every
scene --status/--source/--since/--until select, e.g. a winter's processed scenes after a model
update), --forget ID… (drop scenes;
the next search finds them again), --clear-lock (remove the lock a crashed scan left behind).
--usage shows the bytes fetched from each source per UTC month against the data quota
(quota_gb_per_month in the scan config; the listing ends with this month's total).
--relink-tracks links every polar low in OUT/detections.gpkg again with the tracking settings
of --config (default configs/scan.yaml; tracking: max_gap_h, max_speed_ms), after they changed:
each scan relinks only the nights around what it publishes. Refused while a scan runs in OUT;
holds OUT's run lock while it runs, so a scan started meanwhile is refused.
--check verifies OUT against the record (SQLite integrity of record.sqlite and detections.gpkg;
every processed scene's GeoPackage rows, COGs and STAC item) and prints each problem with the
command that repairs it; exit 1 if it found any.
Exit 0: done; 1: --check found problems; 2: bad usage, unknown ids, no or unreadable record, no
detections.gpkg, a scan running (nothing is changed).
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = add_command(
        sub,
        "catalog",
        "list/filter the scan record; re-queue failed scenes; clear a stale lock",
        HELP,
    )
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"scan folder ({DEFAULT_OUT})")
    p.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="only this status (repeatable): found, downloaded, processed, failed, skipped",
    )
    p.add_argument("--source", help="only scenes from this source (cdse, asf, local, …)")
    add_window(
        p, "only from this UTC date/time (YYYY-MM-DD[THH:MM])", "only before this UTC date/time"
    )
    p.add_argument(
        "--time",
        choices=("start", "published", "updated"),
        default="start",
        help="which time --since/--until filter and sort on: sensing start (default), "
        "publication, or the record's last change",
    )
    add_limit(p, "at most N scenes")
    add_json(p, "print a JSON list of scene records")
    act = p.add_mutually_exclusive_group()
    act.add_argument(
        "--requeue-failed", action="store_true", help="make every failed scene pending again"
    )
    act.add_argument("--requeue", nargs="+", metavar="ID", help="make these scenes pending again")
    act.add_argument(
        "--requeue-matching", action="store_true",
        help="make every scene the filters select pending again (needs --status; with "
        "--source, --since/--until, --time), e.g. --status processed --since 2025-11-01 after "
        "a model update: the next scan redoes them and replaces their outputs",
    )  # fmt: skip
    act.add_argument(
        "--forget", nargs="+", metavar="ID", help="delete these scenes from the record"
    )
    act.add_argument(
        "--skip", nargs="+", metavar="ID", help="never process these scenes (needs --reason)"
    )
    act.add_argument(
        "--clear-lock", action="store_true", help="remove the scan lock left by a dead run"
    )
    act.add_argument("--runs", action="store_true", help="list recent scan runs instead of scenes")
    act.add_argument(
        "--usage", action="store_true",
        help="bytes fetched per UTC month and source (the provider's data quota), newest first "
        "(--limit N months, default 12)",
    )  # fmt: skip
    act.add_argument(
        "--check", action="store_true",
        help="verify OUT against its record: integrity of record.sqlite and detections.gpkg, "
        "and every processed scene's GeoPackage rows, COGs and STAC item; prints each problem "
        "with its fix (exit 1 if any)",
    )  # fmt: skip
    act.add_argument(
        "--relink-tracks", action="store_true",
        help="link every polar low in OUT/detections.gpkg again with the tracking settings of "
        "--config (after changing tracking:); prints the tracks and polar lows that changed",
    )  # fmt: skip
    p.add_argument("--reason", metavar="TEXT", help="why the scenes are skipped (with --skip)")
    p.add_argument(
        "--config", default=None, metavar="YAML",
        help="scan config whose tracking: settings --relink-tracks applies "
        "(default: configs/scan.yaml)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from polarscan.common.errors import UsageError
    from scanner.record import Record

    if args.config is not None and not args.relink_tracks:
        raise UsageError(
            "--config is read only by --relink-tracks", "drop --config, or add --relink-tracks"
        )
    if args.relink_tracks:
        from polarscan.commands.catalog_relink import relink_tracks

        return relink_tracks(args)
    if args.check:
        from polarscan.commands.catalog_check import check_outputs

        return check_outputs(args)
    out = Path(args.out)
    path = existing_record(out)
    # with --json, stdout holds the JSON only: what is said to a person goes to stderr
    say = sys.stderr if args.json else sys.stdout
    with Record(path, create=False) as rec:
        if args.clear_lock:
            holder = rec.clear_lock()
            print(
                f"cleared the scan lock of {holder.describe()}" if holder else "no scan lock held",
                file=say,
            )
            if args.json:
                print_json({"cleared": holder is not None,
                            "holder": holder.describe() if holder else None})  # fmt: skip
            return 0
        if args.requeue_matching:
            if not args.status:
                raise UsageError(
                    "--requeue-matching needs --status",
                    "add e.g. --status processed (after a model update) or --status failed",
                )
            chosen = rec.scenes(status=args.status, source=args.source, since=args.since,
                                until=args.until, time=_time_column(args.time))  # fmt: skip
            rows = rec.requeue(ids=[r.id for r in chosen]) if chosen else []
            print(f"re-queued {len(rows)} scene(s); the next scan redoes them", file=say)
            _print(rows, args.json)
            return 0
        if args.requeue_failed or args.requeue:
            rows = (
                rec.requeue(status="failed")
                if args.requeue_failed
                else rec.requeue(ids=args.requeue)
            )
            print(f"re-queued {len(rows)} scene(s); the next scan retries them", file=say)
            _print(rows, args.json)
            return 0
        if args.skip:
            rows = rec.skip(args.skip, args.reason or "")
            print(f"skipped {len(rows)} scene(s); no scan takes them until re-queued", file=say)
            _print(rows, args.json)
            return 0
        if args.forget:
            rows = rec.forget(args.forget)
            print(f"forgot {len(rows)} scene(s); the next search finds them again", file=say)
            if args.json:
                print_json([r.as_dict() for r in rows], indent=1)
            return 0
        if args.runs:
            runs = rec.runs(limit=args.limit or 20)
            if args.json:
                print_json(runs, indent=1)
            else:
                for r in runs:
                    print(
                        f"{r['run_id']}  {r['status']:<9} {r['started'][:19]}  "
                        f"{(r['finished'] or '')[:19]:<19}  {json.dumps(r['counts'])}"
                    )
            return 0
        if args.usage:
            _usage(rec, args.limit or 12, args.json)
            return 0
        rows = rec.scenes(
            status=args.status,
            source=args.source,
            since=args.since,
            until=args.until,
            time=_time_column(args.time),
            limit=args.limit,
        )
        if args.json:
            print_json([r.as_dict() for r in rows], indent=1)
        else:
            _print(rows, False, rec.claimed())
            counts = rec.counts()
            total = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            print(f"{len(rows)} scene(s) listed; record: {total or 'empty'}", file=sys.stderr)
            print(_this_month(rec), file=sys.stderr)
    return 0


def _time_column(choice: str) -> str:
    """The record's time column of ``--time``."""
    return "updated_at" if choice == "updated" else choice


GB = 1e9


def _budget_gb(rec) -> tuple[bool, float | None]:
    """(known, GB per month) from the last run's config: the budget the next run would apply
    if its config is unchanged."""
    config = rec.last_config()
    return "quota_gb_per_month" in config, config.get("quota_gb_per_month")


def _this_month(rec) -> str:
    """``fetched in 2026-11 (UTC): 4.98 of 5000 GB (cdse 4.98)``: the listing's last line."""
    from scanner.scan.quota import this_month

    month = this_month()
    rows = [u for u in rec.usage(months=1) if u.month == month]
    by_source = ", ".join(f"{u.source} {u.bytes / GB:.2f}" for u in rows)
    used = sum(u.bytes for u in rows) / GB
    known, budget = _budget_gb(rec)
    of = f" of {budget:g} GB" if known and budget is not None else " GB"
    tail = " (no budget)" if known and budget is None else ""
    return (f"fetched in {month} (UTC): {used:.2f}{of}{tail}"
            + (f" ({by_source})" if by_source else ""))  # fmt: skip


def _usage(rec, months: int, as_json: bool) -> None:
    """Bytes fetched per month and source against the data quota (``catalog --usage``)."""
    usage = rec.usage(months=months)
    known, budget = _budget_gb(rec)
    if as_json:
        print_json({"budget_gb": budget if known else None, "budget_known": known,
                    "months": [u.as_dict() for u in usage]}, indent=1)  # fmt: skip
        return
    if known:
        print("data quota: " + ("none (quota_gb_per_month: null)" if budget is None else
                                f"{budget:g} GB per month per source (quota_gb_per_month of the "
                                "last run)"))  # fmt: skip
    for u in usage:
        est = f", {u.estimated / GB:.2f} GB of it estimated" if u.estimated else ""
        print(f"{u.month}  {u.source:<5} {u.bytes / GB:10.2f} GB  {u.scenes} scene(s){est}")
    if not usage:
        print("nothing fetched yet")


def _print(rows: list, as_json: bool, claimed: dict[str, str] | None = None) -> None:
    """Rows as JSON or one line each; ``claimed`` (scene id → run id) marks scenes a run holds."""
    if as_json:
        print_json([r.as_dict() for r in rows], indent=1)
        return
    for r in rows:
        why = r.last_error if r.status == "failed" else (r.reason or "")
        why = (why or "").replace("\n", " ")
        if claimed and r.id in claimed:
            why = f"[held by run {claimed[r.id]}] {why}".strip()
        acq = f"{r.mode or '?':<2} {r.polarisations or '?':<5}"  # e.g. "IW VV+VH"
        print(
            f"{r.start:%Y-%m-%dT%H:%M:%S}  {r.status:<10} {r.attempts}  {r.source:<5} {acq}  "
            f"{r.id}  {r.name}" + (f"  {why[:120]}" if why else "")
        )
