"""What every command promises (issue 9 item 3): values checked once while parsing (exit 2
naming the flag), ``--json`` means stdout is JSON only, library errors get their flag from the
CLI, ``download`` goes through the Source protocol, one ``model_geometry``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from polarscan import cli
from polarscan.commands._args import date_type, since_type
from scanner.record import Record
from tests.support.record_helpers import make_scene, make_scenes

REPO = Path(__file__).resolve().parents[2]
DEMO_MODEL = REPO / "models/demo/polarlow-demo-192.keras"
DEMO_SCENE = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
BBOX = ["--bbox", "60", "70", "110", "85"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own errors (a missing value, unknown choice)
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ---- type= validators -------------------------------------------------------------------------


def test_dates_parse_once_to_aware_utc():
    assert date_type("--until")("2024-01-02T05:04+02:00") == datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    assert since_type()("LAST") == "last"
    assert since_type()("2024-01-02") == datetime(2024, 1, 2, tzinfo=UTC)
    args = cli.build_parser().parse_args(["catalog", "--since", "2024-01-02", "--until", "2024-02-01"])
    assert args.since == datetime(2024, 1, 2, tzinfo=UTC)
    assert args.until == datetime(2024, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scan", "--source", "demo", "--workers", "0"], "--workers must be >= 1, got 0"),
        (["scan", "--source", "demo", "--threshold", "1"], "--threshold 1 is not in (0, 1)"),
        (["scan", "--since", "soon"], "--since 'soon' is not a date"),
        (["search", *BBOX, "--since", "2024-01-01", "--limit", "0"], "--limit must be >= 1"),
        (["search", *BBOX, "--published-after", "x"], "--published-after 'x' is not a date"),
        (["search", "--bbox", "10", "80", "20", "70", "--since", "2024-01-01"], "option --bbox"),
        (["catalog", "--since", "2024-02-01", "--until", "2024-01-01"], "--since 2024-02-01T00"),
        (["catalog", "--until", "2024-01-01", "--since", "2024-01-01"], "not before --until"),
        (["predict", str(DEMO_MODEL), "x.png", "--batch-size", "-1"], "--batch-size must be"),
        (["explain", "m.keras", "x.png", "--method", "ig", "--baseline", "256"], "--baseline"),
        (["mosaic", "p.zip", "--out", "o.tif", "--resolution", "0"], "--resolution 0 is not"),
        (["download", "x", "--out", "o", "--retries", "-1"], "--retries must be >= 0"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert "scan.yaml" not in err  # the value came from a flag, not the config file
    assert out == "" and list(tmp_path.iterdir()) == []  # nothing written


def test_scan_workers_zero_blames_the_flag_not_the_config(capsys, tmp_path):
    code, _, err = run(
        capsys, "scan", "--source", "demo", "--workers", "0", "--out", str(tmp_path / "o")
    )
    assert code == 2 and "--workers" in err and "configs/scan.yaml" not in err
    assert not (tmp_path / "o").exists()


# ---- --json: stdout is JSON only --------------------------------------------------------------


@pytest.fixture()
def record_dir(tmp_path) -> Path:
    d = tmp_path / "scan"
    with Record.open(d) as rec:
        rec.upsert(make_scenes(4))
        rec.mark(make_scene(1).id, "failed", error="HTTP 503")
        rec.start_run("20261130T021500-1-aaaa", {})
        rec.finish_run("20261130T021500-1-aaaa", {"processed": 0})
    return d


@pytest.fixture(scope="module")
def mosaic_tif(tmp_path_factory) -> Path:
    from rasterio.transform import from_origin

    from scanner.cog import write_cog

    rgb = np.random.default_rng(0).integers(1, 255, (3, 32, 32), dtype=np.uint8)
    path = tmp_path_factory.mktemp("mosaic") / "m.tif"
    return write_cog(path, rgb, transform=from_origin(0, 0, 500, 500), crs="EPSG:3413")


def json_cases(record_dir: Path, mosaic_tif: Path) -> dict[str, list[list[str]]]:
    out = ["--out", str(record_dir)]
    ids = [make_scene(0).id]
    return {
        "search": [["search", *BBOX, "--since", "2022-11-01", "--source", "demo", "--json"]],
        "catalog": [
            ["catalog", *out, "--json"],
            ["catalog", *out, "--runs", "--json"],
            ["catalog", *out, "--requeue-failed", "--json"],
            ["catalog", *out, "--requeue", *ids, "--json"],
            ["catalog", *out, "--clear-lock", "--json"],
            ["catalog", *out, "--forget", *ids, "--json"],
            ["catalog", *out, "--check", "--json"],
            ["catalog", *out, "--status", "failed", "--requeue-matching", "--json"],
        ],
        "status": [["status", *out, "--json"]],
        "predict": [
            [
                "predict",
                str(DEMO_MODEL),
                *map(str, sorted(REPO.glob("examples/*.png"))[:2]),
                "--json",
            ]
        ],
        "mosaic-stats": [["mosaic-stats", str(mosaic_tif), "--json"]],
        "scan": [],  # slow: tests/scanner/test_scan_10_demo.py json.loads scan --json's stdout
    }


def commands_with_json() -> set[str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name for name, p in sub.choices.items() if "--json" in p._option_string_actions}


def test_every_json_command_prints_only_json(capsys, record_dir, mosaic_tif):
    cases = json_cases(record_dir, mosaic_tif)
    assert set(cases) == commands_with_json()  # a new --json command needs a case here
    for argvs in cases.values():
        for argv in argvs:
            code, out, err = run(capsys, *argv)
            assert code == 0, (argv, err)
            json.loads(out)  # the whole of stdout, nothing before or after
    assert json.loads(run(capsys, *cases["search"][0])[1])  # found the demo scenes
    code, out, err = run(capsys, "catalog", "--out", str(record_dir), "--requeue-failed", "--json")
    assert json.loads(out) == [] and "re-queued 0 scene(s)" in err  # people read stderr


# ---- library errors speak of keys; the CLI adds the flag --------------------------------------


def test_library_errors_get_the_flag_of_their_key(capsys, tmp_path):
    code, _, err = run(
        capsys, "mosaic", "p.zip", "--out", "o.tif", "--config", str(tmp_path / "no.yaml")
    )
    assert (
        code == 2 and "config file not found" in err and err.rstrip().endswith("(option --config)")
    )
    code, _, err = run(capsys, "search", *BBOX, "--since", "2022-11-01", "--source", "local:")
    assert code == 2 and "local:PATH" in err and "(option --source)" in err
    from polarscan.common.errors import UsageError

    search = cli.command_parser(cli.build_parser(), ["search"])
    assert cli.flag_for(search, "area") == "option --bbox or --aoi"
    assert cli.flag_for(search, "model") is None  # search has no --model: nothing is added
    assert cli.describe_error(UsageError("p", "f", key="model"), search) == "p — f"


def test_library_messages_name_no_flags():
    import subprocess

    files = subprocess.run(
        ["git", "grep", "-lE", r"(pass|give|use|drop|write) --[a-z]", "--", "training",
         "polarscan/common", "scanner/sources/__init__.py", "scanner/sources/asf.py",
         "scanner/sources/dhus.py", "scanner/mosaic", "scanner/demo", "scanner/saliency.py"],
        capture_output=True, text=True, cwd=REPO,
    ).stdout.split()  # fmt: skip
    assert files == []


# ---- download through the Source protocol -----------------------------------------------------


def test_download_uses_the_source_protocol(capsys, tmp_path):
    code, out, err = run(
        capsys, "download", f"{DEMO_SCENE}.SAFE", "--source", "demo", "--out", str(tmp_path)
    )
    assert code == 0, err
    assert Path(out.strip()).name.startswith(DEMO_SCENE)
    code, _, err = run(
        capsys, "download", "S1A_nothing", "--source", "demo", "--out", str(tmp_path)
    )
    assert code == 2 and "no product 'S1A_nothing'" in err and "(argument ID|NAME)" in err


# ---- one model_geometry -----------------------------------------------------------------------


def test_model_geometry_is_the_one_reader():
    import keras

    from polarscan.common.errors import UsageError
    from training.explain import crop_window
    from training.model import model_geometry
    from training.predict import model_input_size

    inp = keras.Input((48, 48, 3))
    plain = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp))
    assert model_geometry(plain) == (48, 48) and crop_window(plain) == (0, 0, 48)
    assert model_input_size(plain) == 48
    wide = keras.Input((48, 64, 3))
    with pytest.raises(UsageError, match="not a fixed square") as err:
        model_geometry(keras.Model(wide, keras.layers.GlobalAveragePooling2D()(wide)))
    assert err.value.key == "model"


def test_version_names_polarscan_and_its_packages():
    import subprocess
    import sys
    from importlib.metadata import version

    proc = subprocess.run([sys.executable, "cli.py", "--version"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first == f"polarscan {version('polarscan')}"
    assert f"keras {version('keras')}" in second and f"rasterio {version('rasterio')}" in second
    assert second.startswith("Keras backend: ")
