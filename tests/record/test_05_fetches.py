"""Bytes fetched per scene in the scan record (the provider's monthly quota): UTC months, per
source, the in-place fraction, and a record of schema version 2 given the table in place."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

from scanner.record import Record, record_path
from scanner.record.db import SCHEMA_VERSION
from scanner.record.fetches import FetchRow, month_of, next_month
from tests.support.record_helpers import insert_old_scene, make_scene, v2_schema


def _row(sid: str, n: int, at: datetime, **kw) -> FetchRow:
    base = dict(source="cdse", stage="download", access="download")
    return FetchRow(scene_id=sid, bytes=n, at=at, **{**base, **kw})


def test_month_boundary_is_utc(tmp_path):
    last_minute = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    first_minute = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    oslo = timezone(timedelta(hours=1))
    with Record.open(tmp_path) as rec:
        rec.add_fetches([
            _row("a", 300, last_minute),
            _row("b", 50, first_minute),
            # 00:30 on the 1st in Oslo is still 30 November in UTC
            _row("c", 7, datetime(2026, 12, 1, 0, 30, tzinfo=oslo)),
        ])  # fmt: skip
        assert rec.fetched_in_month("2026-11") == 307
        assert rec.fetched_in_month("2026-12") == 50
        assert rec.fetched_in_month("2026-10") == 0
    assert month_of(last_minute) == "2026-11" and month_of(first_minute) == "2026-12"
    assert next_month("2026-11") == "2026-12" and next_month("2026-12") == "2027-01"


def test_usage_per_month_and_source_and_estimated_share(tmp_path):
    t = datetime(2026, 11, 10, tzinfo=UTC)
    with Record.open(tmp_path) as rec:
        rec.add_fetches([
            _row("a", 1000, t),
            _row("a", 10, t, stage="mosaic", access="s3", estimated=8),
            _row("b", 500, t, source="asf"),
            _row("c", 40, t - timedelta(days=20)),  # October
        ])  # fmt: skip
        assert rec.fetched_in_month("2026-11", "cdse") == 1010
        assert rec.fetched_in_month("2026-11", "asf") == 500
        assert rec.fetched_in_month("2026-11") == 1510
        got = [(u.month, u.source, u.bytes, u.estimated, u.scenes) for u in rec.usage()]
        assert got == [("2026-11", "asf", 500, 0, 1), ("2026-11", "cdse", 1010, 8, 1),
                       ("2026-10", "cdse", 40, 0, 1)]  # fmt: skip
        assert [u.month for u in rec.usage(months=1)] == ["2026-11", "2026-11"]


def test_in_place_fraction_of_recent_scenes(tmp_path):
    t = datetime(2026, 11, 10, tzinfo=UTC)
    with Record.open(tmp_path) as rec:
        assert rec.in_place_fraction() is None  # nothing read in place yet: the caller's default
        rec.add_fetches([
            # one scene: its listing (download stage) and its reads (mosaic stage) together
            _row("a", 1_000, t, access="s3", product_size=1_000_000, run_id="r1"),
            _row("a", 39_000, t, stage="mosaic", access="s3", product_size=1_000_000,
                 run_id="r1"),
            _row("b", 60_000, t, stage="mosaic", access="mount", product_size=1_000_000,
                 run_id="r1"),
            _row("c", 900_000, t, product_size=1_000_000),  # a download: not in place
        ])  # fmt: skip
        assert rec.in_place_fraction() == (40_000 + 60_000) / 2_000_000


def test_a_version_2_record_gets_the_table_in_place(tmp_path):
    path = record_path(tmp_path)
    con = sqlite3.connect(path)
    con.executescript(v2_schema())
    s = make_scene(1)
    insert_old_scene(con, s, "found", 0, mode="EW", polarisations="HH+HV")
    con.execute("PRAGMA user_version = 2")
    con.commit()
    assert "fetches" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    with Record.open(tmp_path, create=False) as rec:
        assert rec.get(s.id).status == "found"  # the scenes are untouched
        rec.add_fetches([_row(s.id, 123, datetime(2026, 11, 1, tzinfo=UTC))])
        assert rec.fetched_in_month("2026-11") == 123
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    con.close()


def test_release_of_some_scenes_keeps_the_rest_claimed(tmp_path):
    with Record.open(tmp_path) as rec:
        scenes = [make_scene(i) for i in range(3)]
        rec.upsert(scenes)
        ids = [s.id for s in scenes]
        assert sorted(rec.claim(ids, "run-1")) == sorted(ids)
        assert rec.release("run-1", ids[1:]) == 2
        assert rec.claimed() == {ids[0]: "run-1"}
        assert [r.id for r in rec.pending()] == ids  # released scenes stay pending
