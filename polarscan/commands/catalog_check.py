"""``catalog --check``: verify a scan folder against its record
(:func:`scanner.outputs.verify.check_folder`) and print each problem with its fix.

Exit 0: every processed scene's outputs are there and readable; 1: problems were found (listed,
with the command that repairs them); 2: OUT has no record."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polarscan.commands._args import existing_record, print_json


def check_outputs(args: argparse.Namespace) -> int:
    from scanner.outputs.verify import check_folder

    out = Path(args.out)
    existing_record(out)
    report = check_folder(out)
    if args.json:
        print_json(report.as_dict(), indent=1)
    else:
        checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
        print(f"checked {out}: {checked or 'the record'}")
        for note in report.notes:
            print(f"note: {note}")
        for f in report.findings:
            print(f"problem ({f.part}): {f.problem}")
            for d in f.details[:10]:
                print(f"  {d}")
            if len(f.details) > 10:
                print(f"  … and {len(f.details) - 10} more (--json lists all)")
            print(f"  fix: {f.fix.replace('OUT', str(out))}")
            if f.scenes:
                shown = " ".join(f.scenes[:5]) + (" …" if len(f.scenes) > 5 else "")
                print(f"  scenes ({len(f.scenes)}): {shown}")
        print("ok: every processed scene's outputs are in place" if report.ok
              else f"{len(report.findings)} problem(s) found", file=sys.stderr)  # fmt: skip
    return 0 if report.ok else 1
