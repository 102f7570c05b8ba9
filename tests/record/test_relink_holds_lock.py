"""``catalog --relink-tracks`` holds the scan record's run lock while it writes: a scan (or any
other taker) started meanwhile is refused as a second scan is, the lock is free again after the
relink (also when it fails), and a relink is refused while a live scan in another process holds
the lock."""

from __future__ import annotations

import hashlib
import io
import multiprocessing as mp
import os
import signal
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path

import pytest

import cli
import scanner.outputs.gpkg as gpkg_module
from polarscan.common.errors import DiskFullError, UsageError
from scanner.forecast import TrackingConfig, find_polar_lows
from scanner.outputs.gpkg import write_results
from scanner.outputs.gpkg_forecast import forecast_update
from scanner.record import Record
from scanner.record.claims import HOST
from tests.forecast.helpers import T0, crop, mosaic, prov, transform_at
from tests.support import record_helpers as H

CTX = mp.get_context("spawn")


@pytest.fixture
def out(tmp_path) -> Path:
    """A scan folder: its record (no lock held) and a detections.gpkg with two nights of polar
    lows, published with the default tracking."""
    out = tmp_path / "scan"
    for k, hours in enumerate((0, 6)):
        m = mosaic(f"m{k}", [crop(0, 0), crop(0, 16)], [0.8, 0.9], start=T0 + timedelta(hours=hours),
                   transform=transform_at(-500_000.0 + 150_000.0 * k))  # fmt: skip
        p = prov(f"run-{k}")
        step = forecast_update(find_polar_lows(m, p), [m.mosaic_id], TrackingConfig())
        write_results(out / "detections.gpkg", [m], p, also=[step])
    Record.open(out).close()
    return out


def cli_run(*args: str) -> tuple[int, str, str]:
    """``cli.py ARGS`` in this process: exit code, stdout, stderr."""
    o, e = io.StringIO(), io.StringIO()
    with redirect_stdout(o), redirect_stderr(e):
        code = cli.main(list(args))
    return code, o.getvalue(), e.getvalue()


def relink(out: Path) -> tuple[int, str, str]:
    return cli_run("catalog", "--out", str(out), "--relink-tracks")


def holder(out: Path):
    with Record.open(out, create=False) as rec:
        return rec.lock_holder()


class DuringWrite:
    """Calls the real ``write_results`` of the relink, first noting who holds the run lock and
    what a scan and another lock taker meet at that moment; ``fail`` then raises instead."""

    def __init__(self, out: Path, fail: Exception | None = None) -> None:
        self.out, self.fail = out, fail
        self.real = gpkg_module.write_results
        self.seen: dict = {}

    def __call__(self, *args, **kwargs):
        if self.seen:  # a scan let through (the bug this catches) writes too: not watched
            return self.real(*args, **kwargs)
        self.seen["holder"] = holder(self.out)
        self.seen["scan"] = cli_run("-q", "scan", "--source", "demo", "--out", str(self.out))
        with Record.open(self.out) as rec, pytest.raises(UsageError) as refused:
            rec.lock("20261130T000000-1-other").acquire()
        self.seen["other"] = refused.value
        if self.fail is not None:
            raise self.fail
        return self.real(*args, **kwargs)


@pytest.fixture
def no_demo_data(tmp_path, monkeypatch):
    """A scan that got past the lock would make the demo data here (it must not)."""
    cache = tmp_path / "polarscan-cache"
    monkeypatch.setenv("POLARSCAN_CACHE", str(cache))
    return cache


def test_relink_holds_the_run_lock_and_releases_it(out, monkeypatch, no_demo_data):
    spy = DuringWrite(out)
    monkeypatch.setattr(gpkg_module, "write_results", spy)
    code, stdout, stderr = relink(out)
    assert code == 0, stderr
    assert "relinked 2 polar low(s)" in stdout  # one a night, on one track

    held = spy.seen["holder"]
    assert held is not None and held.run_id.startswith("relink-tracks-")
    assert held.pid == os.getpid() and held.host == HOST
    # a scan started meanwhile: refused as a second scan is (exit 2, holder named, the fix)
    scan_code, _, scan_err = spy.seen["scan"]
    assert scan_code == 2, scan_err
    assert "another scan holds the lock" in scan_err and held.run_id in scan_err
    assert f"polarscan catalog --out {out} --clear-lock" in scan_err
    assert not no_demo_data.exists()  # refused before any work
    other = spy.seen["other"]
    assert other.exit_code == 2 and held.run_id in str(other)

    assert holder(out) is None  # released after the relink
    with Record.open(out) as rec, rec.lock("20261130T010000-1-next"):  # a next scan gets it
        assert rec.lock_holder().run_id == "20261130T010000-1-next"


def test_lock_released_when_the_relink_fails(out, monkeypatch, no_demo_data):
    gpkg = out / "detections.gpkg"
    before = hashlib.sha256(gpkg.read_bytes()).hexdigest()
    spy = DuringWrite(out, fail=DiskFullError("no space left on device", "free space"))
    monkeypatch.setattr(gpkg_module, "write_results", spy)
    code, _, stderr = relink(out)
    assert code == 3 and "no space left" in stderr
    assert spy.seen["holder"].run_id.startswith("relink-tracks-")  # held while it failed
    assert spy.seen["scan"][0] == 2
    assert holder(out) is None  # and released after
    assert hashlib.sha256(gpkg.read_bytes()).hexdigest() == before


def test_relink_while_a_live_scan_holds_the_lock_is_refused(out):
    gpkg = out / "detections.gpkg"
    before = hashlib.sha256(gpkg.read_bytes()).hexdigest()
    ready = CTX.Event()
    child = CTX.Process(
        target=H.hold_lock_then_hang, args=(str(H.record_file(out)), "scan-live", ready)
    )
    child.start()
    try:
        assert ready.wait(60)
        code, stdout, stderr = relink(out)
        assert code == 2 and stdout == ""
        assert f"a scan is running in {out}" in stderr and "the tracks were not relinked" in stderr
        assert f"run scan-live (pid {child.pid} on {HOST}" in stderr
        assert "rerun --relink-tracks after it finishes" in stderr and "--clear-lock" in stderr
        assert hashlib.sha256(gpkg.read_bytes()).hexdigest() == before
        assert holder(out).run_id == "scan-live"  # the scan's lock is left as it was
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
