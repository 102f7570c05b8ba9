"""Scoring images: batching, nearest-neighbour resizing, modes, and the predict command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cli
from polarscan.common.errors import UsageError
from training.predict import fit_to_input, predict_files, predict_proba, read_image


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    rng = np.random.default_rng(3)
    d = tmp_path_factory.mktemp("imgs")
    arrays = rng.integers(0, 256, (3, 192, 192, 3), dtype=np.uint8)
    paths = []
    for i, a in enumerate(arrays):
        p = d / f"img{i}.png"
        Image.fromarray(a).save(p)
        paths.append(p)
    small = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(small).save(d / "small.png")
    Image.fromarray(arrays[0]).convert("RGBA").save(d / "rgba.png")
    Image.fromarray(arrays[0][..., 0]).save(d / "grey.png")
    Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16)).save(d / "i16.tif")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return d, arrays, paths, small


def test_batched_equals_model_and_is_batch_invariant(small_model, images):
    _, arrays, _, _ = images
    want = small_model.predict(arrays.astype("float32"), verbose=0)[:, 1]
    for bs in (1, 2, 16):
        got = predict_proba(small_model, arrays, batch_size=bs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    got = predict_proba(small_model, iter(list(arrays)), batch_size=2)  # a generator works
    assert got.shape == (3,) and got.dtype == np.float32


def test_resize_only_when_sizes_differ(small_model, images):
    _, arrays, _, small = images
    first = arrays[0]
    assert fit_to_input(first, 192) is first  # no copy, no resampling
    up = fit_to_input(small, 192)
    np.testing.assert_array_equal(up, np.repeat(np.repeat(small, 2, axis=0), 2, axis=1))
    np.testing.assert_allclose(
        predict_proba(small_model, [small]), predict_proba(small_model, [up]), rtol=1e-6
    )


def test_modes(images):
    d, arrays, _, _ = images
    np.testing.assert_array_equal(read_image(d / "rgba.png"), arrays[0])
    grey = read_image(d / "grey.png")
    assert grey.shape == (192, 192, 3)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    with pytest.raises(UsageError, match="mode I"):
        read_image(d / "i16.tif")
    with pytest.raises(UsageError, match="cannot read image"):
        read_image(d / "broken.png")
    with pytest.raises(UsageError, match="not found"):
        read_image(d / "absent.png")


def test_predict_files_checks_all_before_scoring(small_model, images):
    d, _, paths, _ = images
    with pytest.raises(UsageError, match="broken.png"):
        predict_files(small_model, [*paths, d / "broken.png"])


def test_cli_predict_lines_and_json(saved_small, images, capsys):
    _, _, paths, _ = images
    assert cli.main(["predict", str(saved_small), *map(str, paths)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    path, prob, label = lines[0].split("\t")
    assert path == str(paths[0]) and 0.0 <= float(prob) <= 1.0
    assert label == ("polar-low" if float(prob) >= 0.5 else "no-polar-low")
    assert cli.main(["predict", "--json", str(saved_small), *map(str, paths)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == list(map(str, paths))
    assert all(r["threshold"] == 0.5 for r in rows)
    assert (
        cli.main(["predict", "--json", "--threshold", "0.0001", str(saved_small), str(paths[0])])
        == 0
    )
    assert json.loads(capsys.readouterr().out)[0]["positive"] is True


@pytest.mark.parametrize(
    "name,message",
    [("absent.png", "image not found"), ("i16.tif", "mode I"), ("broken.png", "cannot read")],
)
def test_cli_predict_bad_images_exit_2(saved_small, images, capsys, name, message):
    d, _, _, _ = images
    assert cli.main(["predict", str(saved_small), str(d / name)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert captured.out == ""


def test_cli_predict_bad_model_exit_2(images, capsys):
    d, _, paths, _ = images
    assert cli.main(["predict", str(d / "img0.png"), str(paths[0])]) == 2
    assert "unsupported model file extension" in capsys.readouterr().err
    assert cli.main(["predict", str(d / "nope.keras"), str(paths[0])]) == 2


def test_cli_predict_file_that_is_not_a_model_exit_2(images, tmp_path, capsys):
    d, _, paths, _ = images
    fake = tmp_path / "model.h5"
    fake.write_bytes((d / "img0.png").read_bytes())
    assert cli.main(["predict", str(fake), str(paths[0])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an HDF5 model file" in err[0]


def _run(argv, repo_root):
    return subprocess.run(
        argv, cwd=repo_root, capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_traceback_only_with_verbose(repo_root, tmp_path):
    """Errors are one line without -v; -v adds the traceback (same exit code)."""
    argv = [sys.executable, "cli.py", "predict", str(tmp_path / "nope.keras"), "x.png"]
    quiet = _run(argv, repo_root)
    assert quiet.returncode == 2
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model file not found")
    loud = _run([argv[0], argv[1], "-v", *argv[2:]], repo_root)
    assert loud.returncode == 2
    assert "Traceback" in loud.stderr and "error: model file not found" in loud.stderr


def test_console_script_runs_the_same_cli(repo_root):
    script = Path(sys.executable).with_name("polarscan")
    if not script.is_file():
        pytest.skip(f"console script not installed beside {sys.executable} (pip install -e .)")
    via_script = _run([str(script), "predict", "--help"], repo_root)
    via_cli = _run([sys.executable, "cli.py", "predict", "--help"], repo_root)
    assert via_script.returncode == via_cli.returncode == 0
    assert via_script.stdout == via_cli.stdout and "--threshold" in via_script.stdout


def test_cli_stderr_is_free_of_tensorflow_start_up_noise(repo_root, tmp_path):
    """TensorFlow's C++ start-up lines bypass its log settings; the CLI keeps them out of
    stderr (cron logs) unless -vv."""
    import subprocess
    import sys

    model = repo_root / "models" / "demo" / "polarlow-demo-192.keras"
    image = sorted((repo_root / "examples").glob("*.png"))[0]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "POLARSCAN_TF_VERBOSE")
    }
    run = subprocess.run(
        [sys.executable, str(repo_root / "cli.py"), "-q", "predict", str(model), str(image)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert image.name in run.stdout
    assert "absl::InitializeLog" not in run.stderr and "cudart" not in run.stderr, run.stderr
