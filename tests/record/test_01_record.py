"""The scan record on real SQLite files: upsert, transitions, pending, requeue, watermarks, runs."""

from __future__ import annotations

import pickle
import sqlite3
from datetime import timedelta

import pytest

from polarscan.common.errors import UsageError
from scanner.record import Record, new_run_id, record_path
from tests.support.record_helpers import T0, make_scene, make_scenes


@pytest.fixture
def rec(tmp_path):
    r = Record.open(tmp_path / "out")
    yield r
    r.close()


def test_creates_wal_record_in_out_dir(tmp_path):
    out = tmp_path / "scan"
    with Record.open(out) as r:
        assert r.path == record_path(out) == out / "record.sqlite"
    con = sqlite3.connect(out / "record.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"scenes", "watermarks", "claims", "locks", "fetches", "runs"} <= tables


def test_open_without_create_needs_a_record(tmp_path):
    with pytest.raises(UsageError, match="no scan record at") as exc:
        Record.open(tmp_path / "nothing", create=False)
    assert exc.value.exit_code == 2
    assert not (tmp_path / "nothing").exists()


def test_upsert_new_unchanged_updated_and_reopen(tmp_path):
    out = tmp_path / "out"
    scenes = make_scenes(10)
    with Record.open(out) as r:
        st = r.upsert(scenes)
        assert (st.new, st.updated, st.unchanged) == (10, 0, 0)
        assert st.newest_published == scenes[-1].published
        st = r.upsert(scenes)
        assert (st.new, st.updated, st.unchanged) == (0, 0, 10)
        # the provider republished scene 3 with a new checksum: metadata refreshed
        changed = make_scene(3, published_h=9)
        st = r.upsert([changed, make_scene(10)])
        assert (st.new, st.updated, st.unchanged) == (1, 1, 0)
    with Record.open(out, create=False) as r:  # all of it is on disk
        row = r.get(changed.id)
        assert row.published == changed.published
        assert row.status == "found" and row.attempts == 0
        assert row.datatake == "S1A_052001_05A001"
        assert row.checksum == ("MD5", f"{3:032x}")
        assert row.attrs == {"orbitDirection": "DESCENDING", "sliceNumber": 1}
        back = row.to_scene()
        assert back == changed  # same id, name, times, size, checksum, url
        assert back.footprint.equals(changed.footprint)
        assert r.counts()["found"] == 11


def test_upsert_never_downgrades_status(rec):
    rec.upsert(make_scenes(4))
    ids = [s.id for s in make_scenes(4)]
    rec.mark(ids[0], "processed", outputs={"mosaic": "m.tif", "detections": 2})
    rec.mark(ids[1], "failed", error="HTTP 500")
    rec.mark(ids[2], "skipped", reason="not EW dual-pol")
    rec.mark(ids[3], "downloaded", local_path="/data/x.zip")
    st = rec.upsert(make_scenes(4))  # the next night's search finds them again
    assert st.new == 0
    got = {r.id: r for r in rec.scenes()}
    assert got[ids[0]].status == "processed"
    assert got[ids[0]].outputs == {"mosaic": "m.tif", "detections": 2}
    assert got[ids[1]].status == "failed" and got[ids[1]].attempts == 1
    assert got[ids[1]].last_error == "HTTP 500"
    assert got[ids[2]].status == "skipped" and got[ids[2]].reason == "not EW dual-pol"
    assert got[ids[3]].status == "downloaded" and got[ids[3]].local_path == "/data/x.zip"


def test_pending_attempts_and_requeue(rec, tmp_path):
    rec.upsert(make_scenes(5))
    ids = [s.id for s in make_scenes(5)]
    rec.mark(ids[0], "processed", outputs={})
    rec.mark(ids[1], "skipped", reason="outside AOI in EPSG:3413")
    for k in range(3):
        row = rec.mark(ids[2], "failed", error=f"boom {k}")
    assert row.attempts == 3 and row.last_error == "boom 2"
    rec.mark(ids[3], "failed", error="once")
    pend = [r.id for r in rec.pending(max_attempts=3)]
    assert pend == [ids[3], ids[4]]  # oldest first; 3 attempts used up
    assert [r.id for r in rec.pending(max_attempts=4)] == [ids[2], ids[3], ids[4]]
    back = rec.requeue(status="failed")
    assert sorted(r.id for r in back) == sorted([ids[2], ids[3]])
    assert all(r.status == "found" and r.attempts == 0 for r in back)
    assert [r.id for r in rec.pending()] == ids[2:]
    # a processed scene may be re-queued by id (e.g. after a model update); with its product on
    # disk it goes back to "downloaded", so it is not fetched again
    product = tmp_path / "p.zip"
    product.write_bytes(b"x")
    rec.mark(ids[0], "downloaded", local_path=product)
    rec.mark(ids[0], "processed", outputs={"n": 1})
    (row,) = rec.requeue(ids=[ids[0]])
    assert row.status == "downloaded"
    # by product name works too
    (row,) = rec.requeue(ids=[make_scene(1).name])
    assert row.id == ids[1] and row.status == "found"


def test_requeue_and_forget_unknown_ids_change_nothing(rec):
    rec.upsert(make_scenes(3))
    ids = [s.id for s in make_scenes(3)]
    rec.mark(ids[0], "failed", error="x")
    with pytest.raises(UsageError, match="not in the record.*nope") as exc:
        rec.requeue(ids=[ids[0], "nope"])
    assert exc.value.exit_code == 2
    assert rec.get(ids[0]).status == "failed"
    with pytest.raises(UsageError, match="nope"):
        rec.forget([ids[1], "nope"])
    assert rec.get(ids[1]) is not None
    gone = rec.forget([ids[1]])
    assert [r.id for r in gone] == [ids[1]]
    assert rec.get(ids[1]) is None
    assert rec.upsert(make_scenes(3)).new == 1  # found again as new


def test_mark_refuses_bad_input(rec):
    rec.upsert(make_scenes(1))
    sid = make_scene(0).id
    with pytest.raises(UsageError, match="unknown scene status 'done'"):
        rec.mark(sid, "done")
    with pytest.raises(UsageError, match="not in the record"):
        rec.mark("missing", "processed")
    with pytest.raises(ValueError, match="error text"):
        rec.mark(sid, "failed")
    with pytest.raises(ValueError, match="reason"):
        rec.mark(sid, "skipped")
    assert rec.get(sid).status == "found"


def test_scenes_filters(rec):
    rec.upsert(make_scenes(6) + make_scenes(2, 6, source="asf"))
    ids = [s.id for s in make_scenes(8)]
    rec.mark(ids[1], "failed", error="e")
    rec.mark(ids[6], "failed", error="e")
    assert [r.id for r in rec.scenes(status="failed")] == [ids[1], ids[6]]
    assert [r.id for r in rec.scenes(status="failed", source="asf")] == [ids[6]]
    assert len(rec.scenes(status=["failed", "found"])) == 8
    since = T0 + timedelta(seconds=64 * 4)
    assert [r.id for r in rec.scenes(since=since)] == ids[4:]
    assert [r.id for r in rec.scenes(since=since, until=since + timedelta(seconds=64))] == [ids[4]]
    assert len(rec.scenes(limit=3)) == 3
    with pytest.raises(UsageError, match="unknown scene status"):
        rec.scenes(status="lost")


def test_watermark_moves_forward_only(rec):
    assert rec.watermark("cdse", "abc123") is None
    t = T0 + timedelta(days=1)
    assert rec.advance_watermark("cdse", "abc123", t, run_id="r1") == t
    assert rec.advance_watermark("cdse", "abc123", t - timedelta(hours=1)) == t
    assert rec.watermark("cdse", "abc123") == t
    assert rec.watermark("cdse", "other") is None
    assert rec.watermark("asf", "abc123") is None
    t2 = t + timedelta(minutes=5)
    rec.advance_watermark("cdse", "abc123", t2)
    assert rec.watermark("cdse", "abc123") == t2


def test_runs_table(rec):
    run_id = new_run_id()
    rec.start_run(run_id, {"bbox": [0, 70, 10, 80], "since": "last"})
    rec.finish_run(run_id, {"processed": 3, "failed": 1}, status="partial")
    (r,) = rec.runs()
    assert r["run_id"] == run_id and r["status"] == "partial"
    assert r["parameters"]["bbox"] == [0, 70, 10, 80]
    assert r["counts"] == {"failed": 1, "processed": 3}
    assert r["finished"] >= r["started"]


def test_record_pickles_as_its_path(rec):
    rec.upsert(make_scenes(2))
    clone = pickle.loads(pickle.dumps(rec))
    assert clone.path == rec.path
    assert len(clone.scenes()) == 2
    clone.close()


def test_corrupt_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "out" / "record.sqlite"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not sqlite at all, just junk " * 200)
    with pytest.raises(UsageError) as exc:
        Record.open(tmp_path / "out")
    msg = str(exc.value)
    assert str(bad) in msg and "not a readable SQLite database" in msg
    assert f"mv {bad} {bad}.broken" in msg
    assert exc.value.exit_code == 2


def test_damaged_pages_are_a_usage_error(tmp_path):
    out = tmp_path / "out"
    with Record.open(out) as r:
        r.upsert(make_scenes(300))
    con = sqlite3.connect(out / "record.sqlite")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    f = out / "record.sqlite"
    data = bytearray(f.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[2 * page : len(data) - page] = b"\xa5" * (len(data) - 3 * page)  # scribble over pages
    f.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="not a readable SQLite database") as exc:
        r = Record.open(out)
        r.scenes()
    assert str(f) in str(exc.value)
