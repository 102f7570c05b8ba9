"""Bad usage of ``cli.py scan``: exit 2, one line naming the problem and the fix, nothing written.

Every case here is caught before any work starts: no output folder, no record, no search or
download, no demo data generated (a private ``POLARSCAN_CACHE`` stays absent), no model loaded
(except where the model file itself is the problem) and no LocalCluster worker started — the
``nothing_made`` fixture watches the last three with spies that call through to the real code.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

import cli


def run_cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli.main(["-q", "scan", *args])
        except SystemExit as exc:  # argparse's own usage errors
            rc = exc.code
    return rc, err.getvalue()


@pytest.fixture()
def out(tmp_path) -> Path:
    return tmp_path / "out"


class Watch:
    """What a scan started: models loaded, clusters asked for, demo data generated."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.loads: list[str] = []
        self.clusters: list = []

    def assert_nothing_made(self, *, model_loaded: bool = False) -> None:
        assert not self.cache.exists(), "the demo datatake was generated"
        assert bool(self.loads) == model_loaded, f"model loads: {self.loads}"
        started = [s for s in self.clusters if not s.scheduler]
        assert not started, "a LocalCluster was started"


@pytest.fixture()
def nothing_made(tmp_path, monkeypatch) -> Watch:
    """A private demo cache, and spies (calling the real functions) on model loading and on
    connecting to / starting a dask cluster."""
    import scanner.infer
    import scanner.scan.runner as runner

    watch = Watch(tmp_path / "polarscan-cache")
    monkeypatch.setenv("POLARSCAN_CACHE", str(watch.cache))
    real_load, real_connect = scanner.infer.cached_model, runner._connect

    def load(path):
        watch.loads.append(str(path))
        return real_load(path)

    def connect(spec):
        watch.clusters.append(spec)
        return real_connect(spec)

    monkeypatch.setattr(scanner.infer, "cached_model", load)
    monkeypatch.setattr(runner, "_connect", connect)
    return watch


@pytest.fixture(scope="module")
def not_a_model(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("bad") / "model.keras"
    p.write_bytes(b"PK\x03\x04 this is not a keras archive")
    return p


CASES = {
    "bbox south above north": (["--bbox", "10", "80", "20", "70"], "south|north|S|N"),
    "bbox latitude beyond 90": (["--bbox", "10", "70", "20", "95"], "90"),
    "bbox empty, west equals east": (["--bbox", "10", "70", "10", "80"], "empty"),
    "bbox empty, south equals north": (["--bbox", "10", "70", "20", "70"], "not below north"),
    "bbox with three numbers": (["--bbox", "10", "70", "20"], "expected 4"),
    "bbox not a number": (["--bbox", "10", "70", "x", "80"], "invalid float"),
    "bbox and aoi together": (["--bbox", "1", "2", "3", "4", "--aoi", "a.geojson"], "not allowed"),
    "aoi file missing": (["--aoi", "/nonexistent/area.geojson"], "area.geojson"),
    "since not a date": (["--bbox", "10", "70", "20", "80", "--since", "yesterday"], "--since"),
    "until before since": (
        ["--bbox", "10", "70", "20", "80", "--since", "2024-02-01", "--until", "2024-01-01"],
        "not before",
    ),
    "unknown source": (
        ["--bbox", "10", "70", "20", "80", "--source", "ftp"],
        "unknown scene source",
    ),
    "local folder missing": (
        ["--bbox", "10", "70", "20", "80", "--source", "local:/nonexistent/dir"],
        "not found",
    ),
    "no model for a real source": (
        ["--bbox", "10", "70", "20", "80", "--source", "local:{tmp}"],
        "--model",
    ),
    "model file missing": (["--source", "demo", "--model", "/nonexistent/m.keras"], "not found"),
    "unknown saliency method": (["--source", "demo", "--saliency", "lime"], "saliency"),
    "threshold out of range": (["--source", "demo", "--threshold", "1.5"], "threshold"),
    "config file missing": (
        ["--source", "demo", "--config", "/nonexistent/scan.yaml"],
        "not found",
    ),
    "no area for a real source": (["--source", "local:{tmp}"], "no area given.*--bbox"),
    "local source that is not a folder spec": (
        ["--bbox", "10", "70", "20", "80", "--source", "local"],
        "local:PATH",
    ),
    "workers not a number": (["--source", "demo", "--workers", "two"], "--workers"),
    "workers zero": (["--source", "demo", "--workers", "0"], "--workers"),
    "threshold not a number": (["--source", "demo", "--threshold", "high"], "--threshold"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_usage_exits_2_before_any_work(case, out, tmp_path, nothing_made):
    args, message = CASES[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc, err = run_cli(*args, "--out", str(out))
    assert rc == 2, err
    import re

    assert re.search(message, err), err
    assert not out.exists()  # nothing written
    nothing_made.assert_nothing_made()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source: demo\nworkers: [1, 2]\n", "workers"),
        ("source: demo\nmosaic: {max_gap_s: -5}\n", "max_gap_s"),
        ("source: demo\n  bad indent: [\n", "YAML|yaml"),
        ("- a list\n- not a mapping\n", "mapping|dict|object"),
    ],
    ids=["wrong type", "out of range", "not YAML", "not a mapping"],
)
def test_bad_config_file_exits_2_before_any_work(tmp_path, out, nothing_made, text, message):
    import re

    cfg = tmp_path / "scan.yaml"
    cfg.write_text(text)
    rc, err = run_cli("--config", str(cfg), "--out", str(out))
    assert rc == 2 and re.search(message, err), err
    assert not out.exists()
    nothing_made.assert_nothing_made()


def test_aoi_file_that_is_no_area(tmp_path, out, nothing_made):
    aoi = tmp_path / "area.geojson"
    aoi.write_text('{"type": "FeatureCollection", "features": []}')
    rc, err = run_cli("--aoi", str(aoi), "--source", f"local:{tmp_path}", "--out", str(out))
    assert rc == 2 and "area.geojson" in err, err
    assert not out.exists()
    nothing_made.assert_nothing_made()


# --- the output folder and what is already in it ----------------------------------------------


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_output_folder_that_is_a_file(tmp_path, nothing_made):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    rc, err = run_cli("--source", "demo", "--out", str(blocker))
    assert rc == 2 and "not writable" in err and "is a file" in err and "--out" in err, err
    assert blocker.read_text().startswith("a file")
    nothing_made.assert_nothing_made()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_output_folder_without_write_permission(tmp_path, nothing_made):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        rc, err = run_cli("--source", "demo", "--out", str(parent / "out"))
    finally:
        parent.chmod(0o755)
    assert rc == 2 and "no write permission" in err, err
    assert not (parent / "out").exists()
    nothing_made.assert_nothing_made()


def _corrupt_record(out: Path) -> None:
    (out / "record.sqlite").write_bytes(b"this is not an SQLite database" * 100)


def _newer_record(out: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(out / "record.sqlite")
    conn.execute("PRAGMA user_version = 99")
    conn.close()


def _record_is_a_folder(out: Path) -> None:
    (out / "record.sqlite").mkdir()


def _record_locked_by_a_live_run(out: Path) -> None:
    from scanner.record import Record

    with Record.open(out) as rec:  # held by this (live) test process under another run id
        rec.lock("20260101T000000-1-live").acquire()


RECORDS = {
    "corrupt": (_corrupt_record, "not a readable SQLite database.*mv "),
    "newer schema": (_newer_record, "schema version 99.*upgrade polarscan"),
    "a folder": (_record_is_a_folder, "is not a file"),
    "locked by a live run": (_record_locked_by_a_live_run, "another scan holds the lock.*wait"),
}


@pytest.mark.parametrize("case", list(RECORDS), ids=list(RECORDS))
def test_record_problems_are_found_before_the_model_loads(case, tmp_path, nothing_made):
    """An existing output folder whose record cannot be used: exit 2 before the model loads or
    the demo data is made, and nothing in the folder changes."""
    import re

    make, message = RECORDS[case]
    out = tmp_path / "out"
    out.mkdir()
    make(out)
    before = _listing(out)
    rc, err = run_cli("--source", "demo", "--out", str(out))
    assert rc == 2 and re.search(message, err), err
    assert _listing(out) == before
    nothing_made.assert_nothing_made()


def test_unknown_config_key_is_named(tmp_path, out, nothing_made):
    cfg = tmp_path / "scan.yaml"
    cfg.write_text("source: demo\ntiling:\n  overlap: 0.5\n  stride: 3\n")
    rc, err = run_cli("--config", str(cfg), "--out", str(out))
    assert rc == 2 and "unknown key 'tiling.stride'" in err
    assert not out.exists()
    nothing_made.assert_nothing_made()


def test_model_that_is_not_a_model(not_a_model, out, nothing_made):
    rc, err = run_cli("--source", "demo", "--model", str(not_a_model), "--out", str(out))
    assert rc == 2, err
    assert "model.keras" in err
    assert not out.exists()
    nothing_made.assert_nothing_made(model_loaded=True)  # the load itself fails


def test_card_that_contradicts_the_mosaic_settings(tmp_path, out, small_model, nothing_made):
    from training.card import ModelCard, write_card

    model = tmp_path / "m.keras"
    small_model.save(model)
    write_card(ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000.0), model)
    cfg = tmp_path / "scan.yaml"
    cfg.write_text("mosaic:\n  resolution_m: 500\n")
    rc, err = run_cli(
        "--source", "demo", "--model", str(model), "--config", str(cfg), "--out", str(out)
    )
    assert rc == 2 and "expects 2000 m" in err
    assert not out.exists()
    nothing_made.assert_nothing_made()  # read from the card file, before the model loads


def test_card_file_that_is_not_a_card(tmp_path, out, small_model, nothing_made):
    model = tmp_path / "m.keras"
    small_model.save(model)
    (tmp_path / "m.keras.card.yaml").write_text("input_size: big\n")
    rc, err = run_cli("--source", "demo", "--model", str(model), "--out", str(out))
    assert rc == 2 and "input_size" in err, err
    assert not out.exists()
    nothing_made.assert_nothing_made()


def test_card_whose_input_size_does_not_fit_the_model(tmp_path, out, small_model, nothing_made):
    from training.card import ModelCard, write_card

    model = tmp_path / "m.keras"
    small_model.save(model)  # 192 -> 128
    write_card(ModelCard(input_size=800, crop=512, window_px=800, pixel_spacing_m=500.0), model)
    rc, err = run_cli("--source", "demo", "--model", str(model), "--out", str(out))
    assert rc == 2, err
    assert "input 800/crop 512" in err and "192/128" in err
    assert not out.exists()
    nothing_made.assert_nothing_made(model_loaded=True)  # the model's geometry is the check


def test_output_folder_that_cannot_be_created(tmp_path, small_model, nothing_made):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should go")
    model = tmp_path / "m.keras"
    small_model.save(model)
    rc, err = run_cli("--source", "demo", "--model", str(model), "--out", str(blocker / "out"))
    assert rc == 2 and "not writable" in err
    nothing_made.assert_nothing_made()  # found before the demo data and the model


def test_scheduler_that_does_not_answer(tmp_path, out, small_model, nothing_made):
    model = tmp_path / "m.keras"
    small_model.save(model)
    cfg = tmp_path / "scan.yaml"
    cfg.write_text("scheduler_timeout_s: 2\n")
    rc, err = run_cli(
        "--source", "demo", "--model", str(model), "--scheduler", "tcp://127.0.0.1:9",
        "--config", str(cfg), "--out", str(out),
    )  # fmt: skip
    assert rc == 2 and "does not answer" in err
    assert not out.exists()
    nothing_made.assert_nothing_made()


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:port", "http://127.0.0.1:8786"])
def test_scheduler_address_that_is_malformed(tmp_path, out, small_model, address, nothing_made):
    model = tmp_path / "m.keras"
    small_model.save(model)
    rc, err = run_cli(
        "--source", "demo", "--model", str(model), "--scheduler", address, "--out", str(out)
    )
    assert rc == 2, err
    assert "is not a dask scheduler address" in err and "tcp://HOST:PORT" in err
    assert not out.exists()
    nothing_made.assert_nothing_made()


def test_cdse_without_credentials(tmp_path, out, monkeypatch, nothing_made):
    monkeypatch.delenv("CDSE_USERNAME", raising=False)
    monkeypatch.delenv("CDSE_PASSWORD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    rc, err = run_cli("--bbox", "-20", "65", "60", "82", "--source", "cdse", "--out", str(out))
    assert rc == 2, err
    assert "CDSE_USERNAME" in err
    assert not out.exists()
    nothing_made.assert_nothing_made()
