"""Claims, the run lock and crash safety, with real separate processes on one SQLite file."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import time

import pytest

from polarscan.common.errors import UsageError
from scanner.record import Record
from scanner.record.claims import HOST
from tests.support import record_helpers as H

CTX = mp.get_context("spawn")  # a fresh interpreter: no shared connection state with the test


def _collect(queue, n: int) -> dict[str, list[str]]:
    return dict(queue.get(timeout=60) for _ in range(n))


def _join(procs) -> None:
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0, f"child exited with {p.exitcode}"


def _kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL


@pytest.fixture
def out(tmp_path):
    return tmp_path / "out"


def test_simultaneous_claims_are_exclusive(out):
    n_proc, n_scene = 4, 120
    with Record.open(out) as rec:
        rec.upsert(H.make_scenes(n_scene))
    ids = [s.id for s in H.make_scenes(n_scene)]
    barrier, queue = CTX.Barrier(n_proc), CTX.Queue()
    procs = [
        CTX.Process(
            target=H.claim_worker,
            args=(
                str(H.record_file(out)),
                ids[k::2] + ids[1 - k % 2 :: 2],
                f"run{k}",
                barrier,
                queue,
            ),
        )
        for k in range(n_proc)
    ]
    for p in procs:
        p.start()
    won = _collect(queue, n_proc)
    _join(procs)
    claimed = [sid for got in won.values() for sid in got]
    assert sorted(claimed) == sorted(ids)  # every scene claimed exactly once
    with Record.open(out) as rec:
        held = rec.claimed()
    assert held == {sid: run for run, got in won.items() for sid in got}


def test_concurrent_runs_process_each_scene_once(out):
    n_proc, n_scene = 3, 90
    with Record.open(out) as rec:
        rec.upsert(H.make_scenes(n_scene))
    barrier, queue = CTX.Barrier(n_proc), CTX.Queue()
    procs = [
        CTX.Process(
            target=H.drain_worker, args=(str(H.record_file(out)), f"run{k}", barrier, queue)
        )
        for k in range(n_proc)
    ]
    for p in procs:
        p.start()
    done = _collect(queue, n_proc)
    _join(procs)
    flat = [sid for got in done.values() for sid in got]
    assert len(flat) == len(set(flat)) == n_scene
    with Record.open(out) as rec:
        rows = rec.scenes()
        assert all(r.status == "processed" for r in rows)
        assert all(r.outputs["run"] == r.run_id and r.id in done[r.run_id] for r in rows)
        assert rec.claimed() == {}  # processed scenes release their claims
        # a processed scene is never claimed again
        assert rec.claim([rows[0].id], "late-run") == []


def test_crashed_runs_claims_are_reclaimed(out):
    with Record.open(out) as rec:
        rec.upsert(H.make_scenes(6))
    ids = [s.id for s in H.make_scenes(6)]
    ready = CTX.Event()
    child = CTX.Process(
        target=H.hold_claims_then_hang, args=(str(H.record_file(out)), ids[:4], "crashed", ready)
    )
    child.start()
    assert ready.wait(60)
    with Record.open(out) as rec:
        # while it lives, its claims hold
        assert rec.claim(ids, "second", ttl=600) == ids[4:]
        _kill(child)
        # its pid is gone on this host: its claims are taken over at once, the crash counted
        assert rec.claim(ids, "second", ttl=600) == ids
        row = rec.get(ids[0])
        assert row.attempts == 1
        assert "interrupted: run crashed" in row.last_error and f"pid {child.pid}" in row.last_error
        assert rec.get(ids[5]).attempts == 0  # never held by the dead run


def test_local_claims_follow_the_process_not_the_clock(out):
    with Record.open(out) as rec:
        rec.upsert(H.make_scenes(3))
        ids = [s.id for s in H.make_scenes(3)]
        # held by a live process on this host (this one) under another run id: a TTL of
        # 0.1 s passing does not free it, a long run keeps its scenes
        assert rec.claim(ids[:2], "long-run", ttl=0.1) == ids[:2]
        time.sleep(0.2)
        assert rec.claim(ids, "other", ttl=600) == ids[2:]
        assert rec.get(ids[0]).attempts == 0
        # the same pid with another start time is a reused pid: the holder is gone
        with rec.write() as conn:
            conn.execute("UPDATE claims SET proc_start = '1' WHERE run_id = 'long-run'")
        assert rec.claim(ids, "other", ttl=600) == ids
        assert rec.claimed() == {ids[0]: "other", ids[1]: "other", ids[2]: "other"}
        assert rec.release("other") == 3
        assert rec.claimed() == {}


def test_claims_on_another_host_wait_for_the_ttl(out):
    with Record.open(out) as rec:
        rec.upsert(H.make_scenes(1))
        sid = H.make_scene(0).id
        with rec.write() as conn:  # a run on another machine, pid meaningless here
            conn.execute(
                "INSERT INTO claims (scene_id, run_id, pid, host, claimed_at, expires_at) "
                "VALUES (?, 'remote', 1, 'other-host', "
                "'2000-01-01T00:00:00.000000+00:00', '2999-01-01T00:00:00.000000+00:00')",
                (sid,),
            )
        assert rec.claim([sid], "here") == []
        with rec.write() as conn:
            conn.execute(
                "UPDATE claims SET expires_at = '2001-01-01T00:00:00.000000+00:00' WHERE scene_id = ?",
                (sid,),
            )
        assert rec.claim([sid], "here") == [sid]


def test_run_lock_live_holder_dead_holder_and_clear(out):
    path = str(H.record_file(out))
    Record.open(out).close()
    ready = CTX.Event()
    child = CTX.Process(target=H.hold_lock_then_hang, args=(path, "first-run", ready))
    child.start()
    assert ready.wait(60)
    with Record.open(out) as rec:
        with pytest.raises(UsageError) as exc, rec.lock("second-run"):
            pass
        msg = str(exc.value)
        assert exc.value.exit_code == 2
        assert f"pid {child.pid} on {HOST}" in msg and "first-run" in msg
        assert f"polarscan catalog --out {out} --clear-lock" in msg
        with pytest.raises(UsageError, match=f"held by a live process.*kill {child.pid}"):
            rec.clear_lock()
        _kill(child)
        # the holder is dead: the next run takes the lock over by itself
        with rec.lock("second-run"):
            assert rec.lock_holder().run_id == "second-run"
            assert rec.lock_holder().pid == os.getpid()
        assert rec.lock_holder() is None  # released on exit
        assert rec.clear_lock() is None


def test_readers_are_not_blocked_by_a_writer(out, capsys):
    import cli

    with Record.open(out) as rec:
        rec.upsert(H.make_scenes(10))
    ready = CTX.Event()
    child = CTX.Process(target=H.hold_write_open, args=(str(H.record_file(out)), ready))
    child.start()
    try:
        assert ready.wait(60)
        t = time.monotonic()
        assert cli.main(["catalog", "--out", str(out), "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert time.monotonic() - t < 5  # no wait for the writer's lock (WAL)
        assert len(rows) == 10 and {r["status"] for r in rows} == {"found"}  # last committed state
    finally:
        _kill(child)
    with Record.open(out) as rec:
        assert rec.counts()["found"] == 10  # the uncommitted update died with its process


def test_kill_inside_transaction_leaves_nothing(out):
    with Record.open(out) as rec:
        rec.upsert(H.make_scenes(20))
    ready = CTX.Event()
    child = CTX.Process(
        target=H.die_inside_transaction, args=(str(H.record_file(out)), 2000, ready)
    )
    child.start()
    child.join(timeout=60)
    assert ready.is_set() and child.exitcode == -signal.SIGKILL
    con = sqlite3.connect(H.record_file(out))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with Record.open(out) as rec:
        assert rec.counts() == {
            "found": 20,
            "downloaded": 0,
            "processed": 0,
            "failed": 0,
            "skipped": 0,
        }
        # and the write lock died with it: writing works at once
        assert rec.upsert(H.make_scenes(1, 500)).new == 1


def test_kill_during_upsert_loop_keeps_whole_batches(out):
    batch = 250
    Record.open(out).close()
    ready = CTX.Event()
    child = CTX.Process(target=H.upsert_forever, args=(str(H.record_file(out)), batch, ready))
    child.start()
    assert ready.wait(60)
    deadline = time.time() + 30
    while time.time() < deadline:  # let it commit a few batches, then kill it mid-way
        con = sqlite3.connect(H.record_file(out), timeout=30)
        n = con.execute("SELECT COUNT(*) FROM scenes").fetchone()[0]
        con.close()
        if n >= 3 * batch:
            break
        time.sleep(0.05)
    time.sleep(0.037)
    _kill(child)
    con = sqlite3.connect(H.record_file(out))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = con.execute("SELECT COUNT(*) FROM scenes").fetchone()[0]
    con.close()
    assert n >= 3 * batch and n % batch == 0  # only whole transactions survive
