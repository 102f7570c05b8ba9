"""Bad usage of ``cli.py scan``: exit 2, one line naming the problem and the fix, nothing written.

Every case here is caught before any work starts (no search, no download, no record).
"""

from __future__ import annotations

import contextlib
import io
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
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_usage_exits_2_before_any_work(case, out, tmp_path):
    args, message = CASES[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc, err = run_cli(*args, "--out", str(out))
    assert rc == 2, err
    import re

    assert re.search(message, err), err
    assert not out.exists()  # nothing written


def test_unknown_config_key_is_named(tmp_path, out):
    cfg = tmp_path / "scan.yaml"
    cfg.write_text("source: demo\ntiling:\n  overlap: 0.5\n  stride: 3\n")
    rc, err = run_cli("--config", str(cfg), "--out", str(out))
    assert rc == 2 and "unknown key 'tiling.stride'" in err
    assert not out.exists()


def test_model_that_is_not_a_model(not_a_model, out):
    rc, err = run_cli("--source", "demo", "--model", str(not_a_model), "--out", str(out))
    assert rc == 2, err
    assert "model.keras" in err
    assert not out.exists()


def test_card_that_contradicts_the_mosaic_settings(tmp_path, out, small_model):
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


def test_card_whose_input_size_does_not_fit_the_model(tmp_path, out, small_model):
    from training.card import ModelCard, write_card

    model = tmp_path / "m.keras"
    small_model.save(model)  # 192 -> 128
    write_card(ModelCard(input_size=800, crop=512, window_px=800, pixel_spacing_m=500.0), model)
    rc, err = run_cli("--source", "demo", "--model", str(model), "--out", str(out))
    assert rc == 2, err
    assert "input 800/crop 512" in err and "192/128" in err
    assert not out.exists()


def test_output_folder_that_cannot_be_created(tmp_path, small_model):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should go")
    model = tmp_path / "m.keras"
    small_model.save(model)
    rc, err = run_cli("--source", "demo", "--model", str(model), "--out", str(blocker / "out"))
    assert rc == 2 and "not writable" in err


def test_scheduler_that_does_not_answer(tmp_path, out, small_model):
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


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:port", "http://127.0.0.1:8786"])
def test_scheduler_address_that_is_malformed(tmp_path, out, small_model, address):
    model = tmp_path / "m.keras"
    small_model.save(model)
    rc, err = run_cli(
        "--source", "demo", "--model", str(model), "--scheduler", address, "--out", str(out)
    )
    assert rc == 2, err
    assert "is not a dask scheduler address" in err and "tcp://HOST:PORT" in err
    assert not out.exists()


def test_cdse_without_credentials(tmp_path, out, monkeypatch):
    monkeypatch.delenv("CDSE_USERNAME", raising=False)
    monkeypatch.delenv("CDSE_PASSWORD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    rc, err = run_cli("--bbox", "-20", "65", "60", "82", "--source", "cdse", "--out", str(out))
    assert rc == 2, err
    assert "CDSE_USERNAME" in err
    assert not out.exists()
