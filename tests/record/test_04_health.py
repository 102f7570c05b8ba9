"""``polarscan status``: the folder's health from its record, each problem with its fix, exit 1
on a problem (monitoring), warnings shown but not failing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import cli
from scanner.record import Record
from scanner.record.fetches import FetchRow
from scanner.record.health import health
from tests.support.record_helpers import make_scenes

REPO = Path(__file__).resolve().parents[2]
CONFIG = {"config": {"max_attempts": 3, "quota_gb_per_month": 1.0}}


def status(capsys, out: Path, *extra: str) -> tuple[int, str, str]:
    code = cli.main(["status", "--out", str(out), *extra])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def night(rec: Record, run_id: str, status: str = "ok", counts: dict | None = None) -> None:
    rec.start_run(run_id, CONFIG)
    rec.finish_run(run_id, counts or {"processed": 4}, status=status)


@pytest.fixture
def out(tmp_path) -> Path:
    d = tmp_path / "scan"
    with Record.open(d) as rec:
        rec.upsert(make_scenes(4))
    return d


def test_a_healthy_night(out, capsys):
    with Record.open(out) as rec:
        night(rec, "20261130T021500-1-aaaa")
        for s in make_scenes(4):
            rec.mark(s.id, "processed")
    (out / "logs").mkdir()
    (out / "logs" / "20261130T021500-1-aaaa.log").write_text("…")
    code, stdout, stderr = status(capsys, out)
    assert code == 0, stdout
    assert "last run: 20261130T021500-1-aaaa ok" in stdout and "(processed 4)" in stdout
    assert "logs/20261130T021500-1-aaaa.log" in stdout
    assert "lock: free" in stdout and "scenes: processed 4" in stdout
    assert "data quota" in stdout and "of 1 GB" in stdout
    assert "problem" not in stdout and "healthy" in stderr
    code, stdout, _ = status(capsys, out, "--json")
    doc = json.loads(stdout)
    assert code == 0 and doc["ok"] is True and doc["items"] == []


def test_no_run_yet_and_no_record(out, tmp_path, capsys):
    code, stdout, _ = status(capsys, out)
    assert code == 1 and "problem: no scan has run into this folder yet" in stdout
    code, _, stderr = status(capsys, tmp_path / "nothing")
    assert code == 2 and "no scan record" in stderr
    code, _, stderr = status(capsys, out, "--max-age-h", "0")
    assert code == 2 and "--max-age-h must be positive" in stderr


def test_the_last_night_is_too_old(out):
    with Record.open(out) as rec:
        night(rec, "20261128T021500-1-aaaa")
        now = datetime.now(UTC)
        assert health(out, rec, 26, now=now).ok
        h = health(out, rec, 26, now=now + timedelta(hours=27))
    [item] = h.items
    assert item.level == "problem" and "more than 26 h" in item.what and "cron" in item.fix


@pytest.mark.parametrize(
    ("run_status", "level", "words"),
    [
        ("failed", "problem", "failed"),
        ("partial", "warning", "had failed scenes"),
        ("interrupted", "warning", "was interrupted"),
        ("abandoned", "warning", "died without a word"),
    ],
)
def test_how_the_last_run_ended(out, run_status, level, words):
    with Record.open(out) as rec:
        night(rec, "20261130T021500-1-aaaa", status=run_status)
        h = health(out, rec, 26)
    [item] = h.items
    assert item.level == level and words in item.what and "logs/20261130T021500-1-aaaa" in item.fix
    assert h.ok is (level == "warning")


def test_scenes_out_of_attempts(out, capsys):
    ids = [s.id for s in make_scenes(4)]
    with Record.open(out) as rec:
        night(rec, "20261130T021500-1-aaaa", status="partial")
        for _ in range(3):
            rec.mark(ids[0], "failed", error="checksum mismatch")
        rec.mark(ids[1], "failed", error="HTTP 503")  # one attempt: retried by the next run
    code, stdout, _ = status(capsys, out)
    assert code == 1
    assert "problem: 1 scene(s) failed 3 times: no run retries them" in stdout
    assert f"catalog --out {out} --status failed" in stdout and "--skip" in stdout
    assert "scenes: found 2, failed 2" in stdout


def test_a_dead_runs_lock_and_the_quota(out, capsys):
    """A process that took the lock and died: a warning (the next run takes it over); 95 % of
    the month's 1 GB fetched: a warning; neither fails the check."""
    body = (
        "import sys; from scanner.record import Record; "
        "Record.open(sys.argv[1]).lock('20261130T021500-9-dead').acquire()"
    )
    subprocess.run([sys.executable, "-c", body, str(out)], cwd=REPO, check=True)
    with Record.open(out) as rec:
        night(rec, "20261130T011500-1-aaaa")
        rec.add_fetches([FetchRow("x", "cdse", "download", "download", 950_000_000,
                                  datetime.now(UTC))])  # fmt: skip
    code, stdout, _ = status(capsys, out)
    assert code == 0, stdout
    assert "lock: stale: run 20261130T021500-9-dead" in stdout
    assert "warning: the scan lock of a dead run 20261130T021500-9-dead" in stdout
    assert "warning: 0.95 of 1 GB of" in stdout and "0.95 GB of 1 GB" in stdout


def test_a_running_scan_counts_as_recent_until_it_runs_too_long(out):
    """The nightly cron started late: the last finished run is 30 h old, but a scan runs now
    (a live holder of the lock). Healthy, until that scan has run longer than the limit."""
    import sqlite3

    from scanner.record.db import iso

    with Record.open(out) as rec:
        night(rec, "20261128T021500-1-aaaa")
        now = datetime.now(UTC)
        with sqlite3.connect(out / "record.sqlite") as con:  # it finished 30 h ago
            con.execute("UPDATE runs SET finished = ? WHERE run_id = ?",
                        (iso(now - timedelta(hours=30)), "20261128T021500-1-aaaa"))  # fmt: skip
        assert not health(out, rec, 26, now=now).ok  # no scan running: too old
        lock = rec.lock("20261130T021500-1-bbbb")
        lock.acquire()
        rec.start_run("20261130T021500-1-bbbb", CONFIG)
        try:
            h = health(out, rec, 26, now=now + timedelta(hours=1))
            assert h.ok and h.items == [] and h.lock.startswith("held by run 20261130T021500")
            assert h.last_run["status"] == "running"
            h = health(out, rec, 26, now=now + timedelta(hours=30))
        finally:
            lock.release()
    [item] = h.items
    assert item.level == "problem" and "running scan started more than 26 h ago" in item.what
    assert "SIGTERM" in item.fix
