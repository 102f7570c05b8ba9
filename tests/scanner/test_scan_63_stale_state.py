"""What a crashed process really leaves behind, and the next run recovering from it by itself.

``flock`` locks (the GeoPackage writer lock) die with their process, SQLite rolls back an
unfinished transaction, so what remains after a SIGKILL is: the run lock row and claims in the
record (a dead pid), the run's row still "running", temporaries of interrupted writes (a COG's)
and the hot journal of the GeoPackage's unfinished transaction. Each is produced here by a real
process killed with SIGKILL mid-write, not written by hand.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.scan_helpers import demo_cache, run_scan, scan_model
from tests.support.scan_process import REPO, leftovers

__all__ = ["demo_cache", "scan_model"]

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from polarscan.common.atomic import atomic_path
    from scanner.demo.source import DemoSource
    from scanner.outputs.gpkg import write_results
    from scanner.outputs.gpkg_tx import transaction, writer_lock
    from scanner.record import Record

    out = Path(sys.argv[1])
    gpkg = out / "detections.gpkg"
    write_results(gpkg, [], run={"run_id": "previous"})  # the file as a previous run left it
    print(gpkg.stat().st_size, flush=True)
    rec = Record.open(out)
    rec.lock("20260101T000000-1-dead").acquire()
    rec.start_run("20260101T000000-1-dead", {})
    scenes = DemoSource().scenes()
    rec.upsert(scenes)
    rec.claim([s.id for s in scenes], "20260101T000000-1-dead")
    mosaic = out / "mosaics" / "m" / "m_rgb.tif"
    with atomic_path(mosaic) as tmp:
        tmp.write_bytes(b"II*\\x00 half a COG")
        with writer_lock(gpkg), transaction(gpkg) as con:
            con.execute("PRAGMA cache_size = 1")  # changed pages reach the file before a commit
            con.execute('DELETE FROM "runs"')
            rows = [(f"half-{i}", "x" * 4000) for i in range(200)]
            con.executemany('INSERT INTO "runs" ("run_id", "extra") VALUES (?, ?)', rows)
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture(scope="module")
def common(scan_model, demo_cache) -> tuple[str, ...]:
    from scanner.demo.source import demo_products

    demo_products()
    return ("--source", "demo", "--model", str(scan_model), "--sequential")


def test_next_run_recovers_from_a_writer_killed_mid_write(common, tmp_path, caplog):
    from scanner.outputs.gpkg import read_layer
    from scanner.record import Record

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(out)], cwd=REPO, stdout=subprocess.PIPE
    )
    assert proc.returncode == -9
    left = sorted(p.name for p in leftovers(out))
    assert len(left) == 2 and "detections.gpkg-journal" in left, left  # and the COG temporary
    # the killed transaction had changed the file itself: only the journal can undo it
    assert (out / "detections.gpkg").stat().st_size > int(proc.stdout.split()[0])
    with Record.open(out) as rec:
        holder = rec.lock_holder()
        assert holder is not None and holder.run_id.endswith("-dead")
        assert len(rec.claimed()) == len(rec.scenes()) > 0
        assert rec.runs()[0]["status"] == "running"

    rc, s, err = run_scan(*common, "--out", str(out))
    assert rc == 0, err
    assert "taking over the stale scan lock" in caplog.text
    assert "removed 1 leftover temporary file(s)" in caplog.text  # the COG's
    assert "rolled back an update of" in caplog.text
    assert leftovers(out) == []
    runs = read_layer(out / "detections.gpkg", "runs")
    assert sorted(runs["run_id"]) == sorted(["previous", s["run_id"]])  # none of the half rows
    with Record.open(out) as rec:
        assert rec.counts()["processed"] == len(rec.scenes())
        runs = {r["run_id"]: r["status"] for r in rec.runs()}
        assert runs["20260101T000000-1-dead"] == "abandoned"
        assert runs[s["run_id"]] == "ok"
        # the dead run's claims were taken over at once, counted as an interrupted attempt
        assert all(r.attempts == 1 for r in rec.scenes())


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from scanner.outputs.gpkg_tx import writer_lock

    with writer_lock(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(600)
    """
)


def test_geopackage_lock_held_by_a_live_writer_names_it(tmp_path):
    """A live writer holding the GeoPackage lock: the next writer waits, then names its pid;
    once that process is killed the lock is free at once (the stale lock file is harmless)."""
    from polarscan.common.errors import ProcessingError
    from scanner.outputs.gpkg_tx import writer_lock

    gpkg = tmp_path / "detections.gpkg"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(gpkg)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(ProcessingError) as info, writer_lock(gpkg, timeout_s=1.0):
            pass
        assert time.monotonic() - t0 >= 1.0
        assert f"pid {holder.pid}" in str(info.value) and "stop it" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    assert Path(tmp_path / ".detections.gpkg.lock").exists()
    with writer_lock(gpkg, timeout_s=1.0):  # died with its process
        pass
