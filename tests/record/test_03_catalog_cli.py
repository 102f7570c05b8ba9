"""``polarscan catalog`` through the real entry point: listing, filters, actions, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cli
from scanner.record import Record
from tests.support.record_helpers import make_scene, make_scenes


@pytest.fixture
def out(tmp_path):
    d = tmp_path / "scan"
    with Record.open(d) as rec:
        rec.upsert(make_scenes(5))
        ids = [s.id for s in make_scenes(5)]
        rec.mark(ids[0], "processed", outputs={"detections": 1})
        rec.mark(ids[1], "failed", error="HTTP 503 from download.example")
        rec.mark(ids[2], "failed", error="checksum mismatch")
        rec.mark(ids[3], "skipped", reason="single-pol product")
    return d


def _run(capsys, *argv):
    code = cli.main(["catalog", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_list_all_and_by_status(out, capsys):
    code, stdout, stderr = _run(capsys, "--out", str(out))
    assert code == 0
    lines = stdout.strip().splitlines()
    assert len(lines) == 5
    assert "processed" in lines[0] and make_scene(0).name in lines[0]
    assert "HTTP 503 from download.example" in lines[1]
    assert "single-pol product" in lines[3]
    assert "5 scene(s) listed" in stderr and "failed 2" in stderr
    code, stdout, _ = _run(capsys, "--out", str(out), "--status", "failed", "--json")
    rows = json.loads(stdout)
    assert code == 0 and [r["id"] for r in rows] == [make_scene(1).id, make_scene(2).id]
    assert rows[0]["last_error"] == "HTTP 503 from download.example"
    assert rows[0]["attempts"] == 1 and rows[0]["start"].startswith("2024-01-15T05:01:04")


def test_since_filter(out, capsys):
    code, stdout, _ = _run(capsys, "--out", str(out), "--since", "2024-01-15T05:03", "--json")
    assert code == 0
    assert [r["id"] for r in json.loads(stdout)] == [make_scene(3).id, make_scene(4).id]
    code, stdout, _ = _run(capsys, "--out", str(out), "--since", "2030-01-01", "--json")
    assert json.loads(stdout) == []


def test_requeue_failed_then_ids_then_forget(out, capsys):
    code, stdout, _ = _run(capsys, "--out", str(out), "--requeue-failed")
    assert code == 0 and "re-queued 2 scene(s)" in stdout
    with Record.open(out) as rec:
        assert rec.counts()["failed"] == 0
        assert [r.id for r in rec.pending()] == [make_scene(i).id for i in (1, 2, 4)]
    code, stdout, _ = _run(capsys, "--out", str(out), "--requeue", make_scene(0).id)
    assert code == 0 and "re-queued 1 scene(s)" in stdout
    code, stdout, _ = _run(capsys, "--out", str(out), "--forget", make_scene(4).name)
    assert code == 0 and "forgot 1 scene(s)" in stdout
    with Record.open(out) as rec:
        assert rec.get(make_scene(0).id).status == "found"
        assert rec.get(make_scene(4).id) is None


def test_unknown_ids_exit_2_and_change_nothing(out, capsys):
    code, _, stderr = _run(capsys, "--out", str(out), "--requeue", make_scene(1).id, "bogus-id")
    assert code == 2
    assert stderr.startswith("error: not in the record") and "bogus-id" in stderr
    code, _, stderr = _run(capsys, "--out", str(out), "--forget", "bogus-id")
    assert code == 2 and "nothing was changed" in stderr
    with Record.open(out) as rec:
        assert rec.get(make_scene(1).id).status == "failed"
        assert len(rec.scenes()) == 5


def test_bad_usage(out, tmp_path, capsys):
    code, _, stderr = _run(capsys, "--out", str(tmp_path / "elsewhere"))
    assert code == 2 and "no scan record at" in stderr and "check --out" in stderr
    assert not (tmp_path / "elsewhere").exists()  # listing never creates a record
    code, _, stderr = _run(capsys, "--out", str(out), "--since", "yesterday")
    assert code == 2 and "--since 'yesterday' is not a date" in stderr
    code, _, stderr = _run(capsys, "--out", str(out), "--status", "lost")
    assert code == 2 and "unknown scene status 'lost'" in stderr
    with pytest.raises(SystemExit) as exc:  # argparse: two actions at once
        cli.main(["catalog", "--out", str(out), "--requeue-failed", "--clear-lock"])
    assert exc.value.code == 2


def test_clear_lock_and_runs(out, capsys):
    with Record.open(out) as rec:
        rec.start_run("20240115T060000-1-abcd", {"bbox": [0, 70, 10, 80]})
        with rec.write() as conn:  # a lock left by a dead process
            conn.execute(
                "INSERT INTO locks (name, run_id, pid, host, acquired_at, expires_at) VALUES ('scan', '20240115T060000-1-abcd', 999999999, ?, "
                "'2024-01-15T06:00:00.000000+00:00', '2999-01-01T00:00:00.000000+00:00')",
                (__import__("socket").gethostname(),),
            )
    code, stdout, _ = _run(capsys, "--out", str(out), "--clear-lock")
    assert code == 0 and "cleared the scan lock of run 20240115T060000-1-abcd" in stdout
    assert "pid 999999999" in stdout
    code, stdout, _ = _run(capsys, "--out", str(out), "--clear-lock")
    assert code == 0 and "no scan lock held" in stdout
    code, stdout, _ = _run(capsys, "--out", str(out), "--runs", "--json")
    (run,) = json.loads(stdout)
    assert run["status"] == "abandoned" and run["parameters"] == {"bbox": [0, 70, 10, 80]}


def test_corrupt_record_via_real_entry_point(tmp_path, repo_root):
    out = tmp_path / "scan"
    out.mkdir()
    bad = out / "record.sqlite"
    bad.write_bytes(b"\x00garbage" * 1000)
    before = bad.read_bytes()
    proc = subprocess.run(
        [sys.executable, str(repo_root / "cli.py"), "catalog", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=repo_root,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the scan record")
    assert str(bad) in proc.stderr and f"mv {bad} {bad}.broken" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert bad.read_bytes() == before  # untouched


def test_skip_needs_a_reason_and_keeps_scans_away(out, capsys):
    sid = make_scene(4).id
    code, _, stderr = _run(capsys, "--out", str(out), "--skip", sid)
    assert code == 2 and "reason" in stderr
    with Record.open(out) as rec:
        assert rec.get(sid).status == "found"  # nothing changed
    code, stdout, _ = _run(capsys, "--out", str(out), "--skip", sid, "--reason", "crashes GDAL",
                           "--json")  # fmt: skip
    assert code == 0 and json.loads(stdout)[0]["status"] == "skipped"
    with Record.open(out) as rec:
        assert rec.get(sid).reason == "crashes GDAL"
        assert sid not in {r.id for r in rec.pending()}
        assert rec.claim([sid], "run-x") == []  # final: never claimed again


def test_listing_shows_which_run_holds_a_scene(out, capsys):
    sid = make_scene(4).id
    with Record.open(out) as rec:
        assert rec.claim([sid], "run-night") == [sid]
    code, stdout, _ = _run(capsys, "--out", str(out))
    [line] = [ln for ln in stdout.splitlines() if sid in ln]
    assert code == 0 and "held by run run-night" in line


def test_usage_of_the_data_quota(out, capsys):
    """Operators see what the month has fetched against the budget: a line under the listing,
    and per month and source with --usage (the budget is the last run's config)."""
    from datetime import UTC, datetime, timedelta

    from scanner.record.fetches import FetchRow
    from scanner.scan.quota import this_month

    code, _, stderr = _run(capsys, "--out", str(out))
    assert f"fetched in {this_month()} (UTC): 0.00 GB" in stderr  # nothing yet, budget unknown
    code, stdout, _ = _run(capsys, "--out", str(out), "--usage")
    assert code == 0 and stdout.strip() == "nothing fetched yet"
    now = datetime.now(UTC)
    with Record.open(out) as rec:
        rec.start_run("r1", {"config": {"quota_gb_per_month": 5000.0}})
        rec.add_fetches([
            FetchRow("a", "cdse", "download", "download", 4_000_000_000, now),
            FetchRow("b", "cdse", "mosaic", "s3", 980_000_000, now, estimated=900_000_000),
            FetchRow("c", "cdse", "download", "download", 1_500_000_000, now - timedelta(days=40)),
        ])  # fmt: skip
    code, _, stderr = _run(capsys, "--out", str(out))
    assert f"fetched in {this_month()} (UTC): 4.98 of 5000 GB (cdse 4.98)" in stderr
    code, stdout, _ = _run(capsys, "--out", str(out), "--usage")
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("data quota: 5000 GB per month per source")
    assert lines[1].startswith(this_month()) and "4.98 GB  2 scene(s), 0.90 GB of it" in lines[1]
    assert len(lines) == 3 and "1.50 GB  1 scene(s)" in lines[2]
    code, stdout, _ = _run(capsys, "--out", str(out), "--usage", "--json", "--limit", "1")
    doc = json.loads(stdout)
    assert doc["budget_gb"] == 5000.0 and [m["bytes"] for m in doc["months"]] == [4_980_000_000]


def test_requeue_matching_takes_the_filters(out, capsys):
    with Record.open(out) as rec:
        for i in (2, 4):
            rec.mark(make_scene(i).id, "processed", outputs={"detections": 0})
    # after a model update: redo what was processed from 05:02 on (scenes 2 and 4, not 0)
    code, stdout, _ = _run(capsys, "--out", str(out), "--status", "processed",
                           "--since", "2024-01-15T05:02", "--requeue-matching", "--json")  # fmt: skip
    assert code == 0
    assert [r["id"] for r in json.loads(stdout)] == [make_scene(2).id, make_scene(4).id]
    with Record.open(out) as rec:
        assert rec.get(make_scene(0).id).status == "processed"
        assert {rec.get(make_scene(i).id).status for i in (2, 4)} == {"found"}
        assert rec.get(make_scene(1).id).status == "failed"  # not selected
    code, stdout, _ = _run(capsys, "--out", str(out), "--status", "processed",
                           "--since", "2030-01-01", "--requeue-matching")  # fmt: skip
    assert code == 0 and "re-queued 0 scene(s)" in stdout
    code, _, stderr = _run(capsys, "--out", str(out), "--requeue-matching")
    assert code == 2 and "needs --status" in stderr
    with Record.open(out) as rec:
        assert rec.get(make_scene(0).id).status == "processed"  # nothing changed
