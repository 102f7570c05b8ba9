"""Mode and polarisations in the scan record (issue 14): stored per scene, shown by ``catalog``,
and added in place to a record written by the previous schema (version 1)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import pytest

from polarscan import cli
from scanner.record import Record, record_path
from scanner.record.db import SCHEMA_VERSION
from tests.support.record_helpers import insert_old_scene, make_scene, v2_schema

IW_NAME = "S1A_IW_GRDH_1SDV_20240115T050000_20240115T050025_052000_05A000_0A0A"


def _v1_schema() -> str:
    """The schema of version 1: today's without the columns version 2 added (nor the table
    version 3 added)."""
    lines = [
        ln for ln in v2_schema().splitlines()
        if not ln.strip().startswith(("mode ", "polarisations "))
    ]  # fmt: skip
    return "\n".join(lines)


def _old_record(path, scenes) -> None:
    """A record as the previous polarscan wrote it: schema version 1, rows without mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(_v1_schema())
    for s in scenes:
        insert_old_scene(con, s, "processed", 1)
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()


def test_v1_schema_really_lacks_the_columns():
    assert SCHEMA_VERSION == 3
    assert "mode" not in _v1_schema() and "polarisations" not in _v1_schema()
    assert "fetches" not in _v1_schema()


def test_new_scenes_carry_mode_and_polarisations(tmp_path):
    ew = make_scene(1)
    iw = replace(make_scene(2), name=IW_NAME)
    with Record.open(tmp_path) as rec:
        rec.upsert([ew, iw])
        assert (rec.get(ew.id).mode, rec.get(ew.id).polarisations) == ("EW", "HH+HV")
        row = rec.get(iw.id)
        assert (row.mode, row.polarisations) == ("IW", "VV+VH")
        assert row.as_dict()["mode"] == "IW" and row.as_dict()["polarisations"] == "VV+VH"


def test_old_record_is_migrated_in_place(tmp_path):
    ew, iw = make_scene(1), replace(make_scene(2), name=IW_NAME)
    path = record_path(tmp_path)
    _old_record(path, [ew, iw])
    with Record.open(tmp_path, create=False) as rec:
        # the columns are added and filled from the names; status and attempts untouched
        row = rec.get(iw.id)
        assert (row.mode, row.polarisations, row.status, row.attempts) == (
            "IW",
            "VV+VH",
            "processed",
            1,
        )
        assert rec.get(ew.id).mode == "EW"
        rec.upsert([make_scene(3)])  # writes go on with the new columns
        assert rec.get(make_scene(3).id).polarisations == "HH+HV"
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    cols = [r[1] for r in con.execute("PRAGMA table_info(scenes)")]
    assert cols.count("mode") == 1 and cols.count("polarisations") == 1
    con.close()
    with Record.open(tmp_path) as rec:  # a second open changes nothing
        assert len(rec.scenes()) == 3


def test_newer_schema_is_refused(tmp_path):
    from polarscan.common.errors import UsageError

    path = record_path(tmp_path)
    _old_record(path, [])
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(UsageError, match="newer than this"):
        Record.open(tmp_path)


def test_catalog_lists_mode_and_polarisations(tmp_path, capsys):
    ew, iw = make_scene(1), replace(make_scene(2), name=IW_NAME)
    _old_record(record_path(tmp_path), [ew, iw])  # an old record, read by the new catalog
    assert cli.main(["catalog", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert " EW HH+HV " in lines[0] and " IW VV+VH " in lines[1]
    assert cli.main(["catalog", "--out", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(d["mode"], d["polarisations"]) for d in doc] == [("EW", "HH+HV"), ("IW", "VV+VH")]
