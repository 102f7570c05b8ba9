"""polarscan command line: ``python cli.py COMMAND …`` (also installed as ``polarscan``).

Each command group lives in ``polarscan/commands/<group>.py`` and exposes ``register(subparsers)``; the
parser for a command calls ``set_defaults(func=run)`` where ``run(args) -> int``. Command modules
import nothing heavy at module level so that ``--help`` stays instant.

Exit codes: 0 success, 1 runtime failure (or some scenes failed), 2 bad usage/config/input,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMAND_MODULES = (
    "polarscan.commands.training",
    "polarscan.commands.explain",
    "polarscan.commands.mosaic",
    "polarscan.commands.sources",
    "polarscan.commands.catalog",
    "polarscan.commands.scan",
)

#: commands that load a model: TensorFlow is imported up front, without its C++ start-up noise
TF_COMMANDS = frozenset({"predict", "train", "evaluate", "explain", "scan"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polarscan",
        description="Find polar lows in Sentinel-1 EW SAR images (Grahn & Bianchi 2022 classifier).",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging; tracebacks on errors"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    if verbose < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        for noisy in (
            "tensorflow",
            "absl",
            "distributed",
            "urllib3",
            "rasterio",
            "fiona",
            "pyogrio",
            "matplotlib",
            "h5py",
        ):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    from polarscan.common.errors import PolarScanError

    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if args.verbose > 1:
        os.environ["POLARSCAN_TF_VERBOSE"] = "1"  # inherited by dask worker processes
    if args.command in TF_COMMANDS:
        from polarscan.common.tfquiet import import_tensorflow_quietly

        import_tensorflow_quietly()
    try:
        return int(args.func(args) or 0)
    except PolarScanError as err:
        if args.verbose:
            logging.getLogger("polarscan").exception("error")
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence, shown as one line
        if args.verbose:
            raise
        print(
            f"internal error: {type(err).__name__}: {err} (rerun with -v for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
