"""polarscan command line: ``python cli.py COMMAND …`` (also installed as ``polarscan``).

Each command group lives in ``polarscan/commands/<group>.py`` and exposes ``register(subparsers)``; the
parser for a command calls ``set_defaults(func=run)`` where ``run(args) -> int``. Command modules
import nothing heavy at module level so that ``--help`` stays instant.

Exit codes: 0 success, 1 runtime failure (or some scenes failed), 2 bad usage/config/input,
3 the disk is full or a file-size limit was hit, 130 interrupted by Ctrl-C (SIGINT), 143
terminated by SIGTERM (``timeout``, systemd) — 128 + the signal number, as a shell reports it.
SIGTERM unwinds like Ctrl-C, so every command's interrupt cleanup runs (``scan`` releases its
scenes and records the run as interrupted). docs/faults.md lists every fault and its code.

Errors: library modules raise :class:`~polarscan.common.errors.PolarScanError` speaking of values
and config keys (``key="model"``); :func:`describe_error` adds the flag of the command that sets
that key, e.g. ``error: model file not found: m.keras — … (option --model)``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading

COMMAND_MODULES = (
    "polarscan.commands.training",
    "polarscan.commands.explain",
    "polarscan.commands.mosaic",
    "polarscan.commands.sources",
    "polarscan.commands.catalog",
    "polarscan.commands.status",
    "polarscan.commands.scan",
)

#: commands that load a model: TensorFlow is imported up front, without its C++ start-up noise
TF_COMMANDS = frozenset({"predict", "train", "evaluate", "explain", "scan"})


class _Version(argparse.Action):
    """``--version``: the versions, read only when asked (argparse's own takes a fixed text)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from polarscan.common.versions import version_text

        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polarscan",
        description="Find polar lows in Sentinel-1 EW and IW SAR images (Grahn & Bianchi 2022 classifier).",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging; tracebacks on errors"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="polarscan's version and its packages'"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


#: config keys / parameter names whose option is not ``--`` + the key with ``_`` as ``-``
KEY_FLAGS: dict[str, str | tuple[str, ...]] = {
    "area": ("--bbox", "--aoi"),
    "saliency.methods": "--saliency",
    "resolution_m": "--resolution",
    "start": "--since",
    "end": "--until",
    "published_after": "--published-after",
}


def command_parser(
    parser: argparse.ArgumentParser, argv: list[str]
) -> argparse.ArgumentParser | None:
    """The subcommand's parser for ``argv`` (the first word that names a command)."""
    for action in parser._actions:  # argparse has no public way to reach its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return next((action.choices[a] for a in argv if a in action.choices), None)
    return None


def flag_for(command: argparse.ArgumentParser | None, key: str | None) -> str | None:
    """How ``command`` sets the value ``key`` names: ``option --flag``, ``argument NAME``, or
    ``None`` when it has no such option (a config-file-only key, or another command's)."""
    if command is None or not key:
        return None
    flags = KEY_FLAGS.get(key, "--" + key.replace("_", "-"))
    known = [f for f in ((flags,) if isinstance(flags, str) else flags)
             if f in command._option_string_actions]  # fmt: skip
    if known:
        return f"option {' or '.join(known)}"
    for action in command._actions:
        if not action.option_strings and action.dest == key:
            return f"argument {action.metavar or action.dest.upper()}"
    return None


def describe_error(err: Exception, command: argparse.ArgumentParser | None = None) -> str:
    """The one line shown after ``error: ``: the message, plus the flag that sets its key."""
    message = str(err)
    flag = flag_for(command, getattr(err, "key", None))
    if flag and not any(f in message for f in flag.split()[1::2]):
        message += f" ({flag})"
    return message


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


@contextlib.contextmanager
def _termination_unwinds():
    """While a command runs, SIGTERM raises :class:`~polarscan.common.errors.Interrupted` (a
    KeyboardInterrupt) in the main thread instead of killing the process outright, so cleanup
    runs; a second SIGTERM during that cleanup is ignored. The previous handler is restored."""
    from polarscan.common.errors import Interrupted

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        signal.signal(signum, signal.SIG_IGN)  # let the cleanup finish
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    from polarscan.commands._args import check_window
    from polarscan.common.errors import PolarScanError

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_parser(parser, argv)
    try:  # the type= validators raise UsageError naming the flag; argparse's own errors exit 2
        args = parser.parse_args(argv)
        check_window(args)
    except PolarScanError as err:
        print(f"error: {describe_error(err, command)}", file=sys.stderr)
        return err.exit_code
    _setup_logging(args.verbose, args.quiet)
    if args.verbose > 1:
        os.environ["POLARSCAN_TF_VERBOSE"] = "1"  # inherited by dask worker processes
    if args.command in TF_COMMANDS:
        from polarscan.common.tfquiet import import_tensorflow_quietly

        import_tensorflow_quietly()
    try:
        with _termination_unwinds():
            return int(args.func(args) or 0)
    except PolarScanError as err:
        if args.verbose:
            logging.getLogger("polarscan").exception("error")
        print(f"error: {describe_error(err, command)}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:
        signum = getattr(err, "signum", signal.SIGINT)
        print(f"interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + int(signum)
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
