"""CLI command ``status``: is the nightly scan into OUT healthy? (:mod:`scanner.record.health`)"""

from __future__ import annotations

import argparse
import sys

from polarscan.commands._args import (
    DEFAULT_OUT,
    add_command,
    add_json,
    existing_record,
    print_json,
)

HELP = """\
One screen on the scans into OUT, from its record: the last run (status, times, counts, log), the
scan lock, the scenes by status, this month's data quota; then each problem with its fix: no
run yet, none finished within --max-age-h while no scan runs, a running scan started longer
ago than that, the last run failed, scenes that failed max_attempts times (no run retries
them). Warnings (a partial, interrupted or abandoned last run; a dead run's lock; 90 % of the
data quota fetched) do not change the exit code.
Exit 0: healthy; 1: a problem (for a monitoring check); 2: no record at OUT.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "status", "is the nightly scan into OUT healthy (exit 1 if not)", HELP)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"scan folder ({DEFAULT_OUT})")
    p.add_argument(
        "--max-age-h", type=float, default=26.0, metavar="H",
        help="a problem if no run has finished within H hours (default 26: a nightly cron)",
    )  # fmt: skip
    add_json(p, "print the state as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from polarscan.common.errors import UsageError
    from scanner.record import Record
    from scanner.record.health import health

    out = Path(args.out)
    path = existing_record(out)
    if args.max_age_h <= 0:
        raise UsageError(f"--max-age-h must be positive, not {args.max_age_h:g}", "give hours")
    with Record(path, create=False) as rec:
        h = health(out, rec, args.max_age_h)
    if args.json:
        print_json(h.as_dict(), indent=1, default=str)
        return 0 if h.ok else 1
    last = h.last_run
    if last:
        counts = last.get("counts") or {}
        done = ", ".join(f"{k} {counts[k]}" for k in ("processed", "failed", "deferred")
                         if counts.get(k))  # fmt: skip
        print(f"last run: {last['run_id']} {last['status']}, started {last['started'][:16]}"
              + (f", finished {last['finished'][:16]}" if last.get("finished") else "")
              + (f" ({done})" if done else ""))  # fmt: skip
        if last.get("log"):
            print(f"  log: {last['log']}")
    print(f"lock: {h.lock}")
    print("scenes: " + (", ".join(f"{k} {v}" for k, v in h.scenes.items()) or "none"))
    q = h.quota
    budget = "no budget" if not q.get("budget_gb") else f"{q['budget_gb']:g} GB"
    print(f"data quota {q['month']}: {q['used_gb']:.2f} GB of {budget}")
    for item in h.items:
        print(f"{item.level}: {item.what}" + (f"\n  fix: {item.fix}" if item.fix else ""))
    print("healthy" if h.ok else "NOT healthy", file=sys.stderr)
    return 0 if h.ok else 1
