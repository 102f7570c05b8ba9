"""``catalog --check`` on a real demo scan folder, each test damaging one thing as a crash, a
full disk or a hand would: it is found, named, and the fix it prints repairs it."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cli
from tests.support.scan_helpers import demo_cache, run_scan, scan_model
from tests.support.scan_process import REPO

__all__ = ["demo_cache", "scan_model"]


@pytest.fixture(scope="module")
def common(scan_model, demo_cache) -> tuple[str, ...]:
    return ("--source", "demo", "--model", str(scan_model), "--sequential")


@pytest.fixture(scope="module")
def scanned(common, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scanned") / "out"
    rc, summary, err = run_scan(*common, "--out", str(out))
    assert rc == 0 and summary["counts"]["processed"] == 4, err  # two passes of two slices
    return out


@pytest.fixture
def out(scanned, tmp_path) -> Path:
    d = tmp_path / "out"
    shutil.copytree(scanned, d)
    return d


def check(capsys, out: Path, *extra: str) -> tuple[int, str, str]:
    code = cli.main(["catalog", "--out", str(out), "--check", *extra])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def report(capsys, out: Path) -> tuple[int, dict]:
    code, stdout, _ = check(capsys, out, "--json")
    return code, json.loads(stdout)


def mosaics(out: Path) -> list[Path]:
    return sorted(p for p in (out / "mosaics").iterdir() if p.is_dir())


def scenes_of(out: Path, mosaic_id: str) -> list[str]:
    with sqlite3.connect(out / "detections.gpkg") as con:
        sql = 'SELECT scene_name FROM "scenes" WHERE mosaic_id = ? ORDER BY scene_name'
        return [n for (n,) in con.execute(sql, (mosaic_id,))]


def test_an_intact_folder_passes(out, capsys):
    code, stdout, stderr = check(capsys, out)
    assert code == 0, stdout
    assert "4 processed scenes" in stdout and "2 mosaics" in stdout and "2 STAC items" in stdout
    assert "6 mosaic files" in stdout  # RGB, probability, Grad-CAM of each
    assert "ok:" in stderr
    code, doc = report(capsys, out)
    assert code == 0 and doc["ok"] is True and doc["findings"] == []


def test_a_missing_cog_is_found_and_the_printed_fix_repairs_it(out, common, capsys):
    first = mosaics(out)[0]
    (first / f"{first.name}_probability.tif").unlink()
    code, stdout, _ = check(capsys, out)
    assert code == 1
    assert "problem (mosaics): mosaic files missing: 1" in stdout
    assert f"{first.name}: probability" in stdout and "--requeue" in stdout
    code, doc = report(capsys, out)
    [finding] = doc["findings"]
    assert sorted(finding["scenes"]) == scenes_of(out, first.name)  # the demo's ids are names

    assert cli.main(["catalog", "--out", str(out), "--requeue", *finding["scenes"]]) == 0
    rc, summary, err = run_scan(*common, "--out", str(out))
    assert rc == 0 and summary["counts"]["processed"] == 2, err
    capsys.readouterr()
    assert check(capsys, out)[0] == 0
    assert (first / f"{first.name}_probability.tif").is_file()


def test_a_cog_gdal_cannot_open(out, capsys):
    second = mosaics(out)[1]
    (second / f"{second.name}_rgb.tif").write_bytes(b"II*\x00 half a COG")
    code, doc = report(capsys, out)
    assert code == 1
    [finding] = doc["findings"]
    assert finding["part"] == "mosaics" and "cannot open" in finding["problem"]
    assert finding["details"][0].startswith(f"{second.name}: rgb")
    assert sorted(finding["scenes"]) == scenes_of(out, second.name)


def test_a_missing_stac_item_and_a_missing_scene_row(out, capsys):
    first, second = mosaics(out)
    [item] = [p for p in (out / "stac").rglob(f"{first.name}.json")]
    shutil.rmtree(item.parent)
    lost = scenes_of(out, second.name)[0]
    from scanner.outputs.gpkg_sql import connect

    with connect(out / "detections.gpkg") as con:
        con.execute('DELETE FROM "scenes" WHERE scene_name = ?', (lost,))
    code, doc = report(capsys, out)
    assert code == 1
    by_part = {f["part"]: f for f in doc["findings"]}
    assert set(by_part) == {"stac", "detections.gpkg"}
    assert by_part["stac"]["details"] == [first.name]
    assert by_part["detections.gpkg"]["scenes"] == [lost]
    assert "`scenes` layer" in by_part["detections.gpkg"]["problem"]


def test_a_damaged_geopackage(out, capsys):
    gpkg = out / "detections.gpkg"
    data = bytearray(gpkg.read_bytes())
    page = 4096
    for i in range(page * 3, len(data) - page, page * 2):  # every other page overwritten
        data[i : i + page] = b"\xa5" * page
    gpkg.write_bytes(bytes(data))
    code, stdout, _ = check(capsys, out)
    assert code == 1
    assert "problem (detections.gpkg): SQLite integrity check" in stdout
    assert "move detections.gpkg aside" in stdout


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from scanner.outputs.gpkg_tx import transaction, writer_lock

    gpkg = Path(sys.argv[1])
    with writer_lock(gpkg), transaction(gpkg) as con:
        con.execute("PRAGMA cache_size = 1")  # changed pages reach the file before a commit
        con.execute('DELETE FROM "windows"')
        con.execute('DELETE FROM "scenes"')
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_writers_transaction_is_rolled_back_and_said(out, capsys):
    gpkg = out / "detections.gpkg"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(gpkg)], cwd=REPO)
    assert proc.returncode == -signal.SIGKILL
    assert gpkg.with_name("detections.gpkg-journal").exists()
    code, doc = report(capsys, out)
    assert code == 0, doc["findings"]
    assert doc["notes"] == ["rolled back an unfinished update of detections.gpkg (a killed scan's)"]
    assert doc["checked"]["GeoPackage scene rows"] == 4
    assert not gpkg.with_name("detections.gpkg-journal").exists()


def test_a_damaged_record_and_no_record(out, tmp_path, capsys):
    record = out / "record.sqlite"
    data = bytearray(record.read_bytes())
    data[4096 * 2 : 4096 * 3] = b"\x00\xff" * 2048
    record.write_bytes(bytes(data))
    for side in ("-wal", "-shm"):
        record.with_name(record.name + side).unlink(missing_ok=True)
    code, stdout, _ = check(capsys, out)
    assert code == 1 and "problem (record.sqlite)" in stdout, stdout

    code, _, stderr = check(capsys, tmp_path / "nothing")
    assert code == 2 and "no scan record" in stderr
