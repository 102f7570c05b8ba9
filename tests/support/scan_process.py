"""A real ``cli.py scan`` in a subprocess, stopped by a real signal once its mosaic exists."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: what atomic_path and the GeoPackage copy-on-write (creating layers) name their temporaries
LEFTOVER = re.compile(r"\.[0-9a-f]{8}\.(tmp|old)")


def start_scan(out: Path, *args: str, log: Path) -> subprocess.Popen:
    """``cli.py -q scan … --out OUT`` in its own session, stderr to ``log``."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with open(log, "w") as err:
        return subprocess.Popen(
            [sys.executable, "cli.py", "-q", "scan", *args, "--out", str(out)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def wait_for_mosaic(proc: subprocess.Popen, out: Path, timeout: float = 300) -> None:
    """Until the run's RGB mosaic exists: after search and claims, before publishing."""
    t0 = time.monotonic()
    while not list(out.glob("mosaics/*/*_rgb.tif")):
        assert proc.poll() is None, "the scan ended before it could be stopped"
        assert time.monotonic() - t0 < timeout, "the scan never reached the mosaic stage"
        time.sleep(0.05)


def stop(proc: subprocess.Popen, sig: int, timeout: float = 120) -> int:
    """Send ``sig`` to the scan process only (as ``timeout`` does); its exit code."""
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if LEFTOVER.search(p.name) or p.name.endswith("-journal")]
