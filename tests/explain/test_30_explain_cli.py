"""``polarscan explain`` end to end through ``cli.main``: files written, errors and exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cli
from training import gradcam, integrated_gradients


@pytest.fixture(scope="module")
def pngs(tmp_path_factory, legacy_images):
    """Two of the legacy reference images as 8-bit PNGs, plus a wrong-size one."""
    root = tmp_path_factory.mktemp("pngs")
    paths = []
    for name, img in (("ramps", legacy_images[0]), ("spiral", legacy_images[3])):
        paths.append(root / f"{name}.png")
        Image.fromarray(np.rint(img).astype(np.uint8)).save(paths[-1])
    Image.new("RGB", (200, 192)).save(root / "wide.png")
    return paths, root / "wide.png"


@pytest.fixture(scope="module")
def legacy_h5(test_data):
    return test_data / "legacy-h5" / "paper_tf25_192.h5"


def _read(paths):
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]).astype(np.float32)


def test_gradcam_writes_array_and_overlay(tmp_path, pngs, legacy_h5, legacy_model, capsys):
    paths, _ = pngs
    out = tmp_path / "out"
    argv = ["explain", str(legacy_h5), *map(str, paths), "--method", "gradcam"]
    code = cli.main([*argv, "--layer", "block5_relu2", "--out", str(out)])
    assert code == 0
    expected = gradcam(legacy_model, _read(paths), layer="block5_relu2")
    for path, exp in zip(paths, expected, strict=True):
        arr = np.load(out / f"{path.stem}.gradcam.npy")
        assert arr.shape == (192, 192) and np.isnan(arr[:32]).all()
        np.testing.assert_allclose(arr, exp, atol=1e-5)
        with Image.open(out / f"{path.stem}.gradcam.png") as im:
            assert im.format == "PNG" and min(im.size) > 300
    assert f"{paths[0].stem}.gradcam.npy" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(  # no temporary files left
        f"{p.stem}.gradcam.{ext}" for p in paths for ext in ("npy", "png")
    )


def test_ig_writes_attributions(tmp_path, pngs, legacy_h5, legacy_model):
    paths, _ = pngs
    out = tmp_path / "out"
    argv = ["explain", str(legacy_h5), str(paths[1]), "--method", "ig", "--steps", "8"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    arr = np.load(out / "spiral.ig.npy")
    np.testing.assert_allclose(
        arr, integrated_gradients(legacy_model, _read(paths[1:]), steps=8)[0], rtol=1e-4, atol=1e-8
    )
    assert (out / "spiral.ig.png").stat().st_size > 1000


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, pngs, legacy_h5, capsys):
    paths, _ = pngs
    out = tmp_path / "out"
    out.mkdir()
    (out / "ramps.gradcam.png").write_bytes(b"mine")
    argv = ["explain", str(legacy_h5), str(paths[0]), "--method", "gradcam", "--out", str(out)]
    assert cli.main(argv) == 2
    assert "exist already" in capsys.readouterr().err
    assert (out / "ramps.gradcam.png").read_bytes() == b"mine"
    assert cli.main([*argv, "--overwrite"]) == 0
    assert (out / "ramps.gradcam.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "gradcam", "--layer", "nope"], "choose one of: entry_conv"),
        (["--method", "ig", "--layer", "block7_relu2"], "--layer applies to --method gradcam"),
        (["--method", "ig", "--steps", "0"], "--steps must be >= 1"),
        (["--method", "gradcam", "--steps", "5"], "--steps applies to --method ig"),
    ],
)
def test_bad_options_exit_2(tmp_path, pngs, legacy_h5, capsys, extra, message):
    paths, _ = pngs
    out = tmp_path / "out"
    code = cli.main(["explain", str(legacy_h5), str(paths[0]), *extra, "--out", str(out)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_wrong_size_image_writes_nothing(tmp_path, pngs, legacy_h5, capsys):
    paths, wide = pngs
    out = tmp_path / "out"
    code = cli.main(
        [
            "explain",
            str(legacy_h5),
            str(paths[0]),
            str(wide),
            "--method",
            "gradcam",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "wide.png is 200x192 px but the model takes 192x192" in err
    assert not out.exists() or not any(out.iterdir())  # not even the good image's outputs


@pytest.mark.parametrize("kind", ["missing", "not_an_image", "grey"])
def test_bad_image_files_exit_2(tmp_path, legacy_h5, capsys, kind):
    img = tmp_path / "img.png"
    if kind == "not_an_image":
        img.write_text("hello")
    elif kind == "grey":
        np.save(tmp_path / "img.npy", np.zeros((192, 192)))
        img = tmp_path / "img.npy"
    code = cli.main(
        ["explain", str(legacy_h5), str(img), "--method", "ig", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert {"missing": "image not found", "not_an_image": "cannot read image", "grey": "RGB"}[
        kind
    ] in err


def test_model_without_conv_layer_exit_2(tmp_path, pngs, capsys):
    import keras

    inputs = keras.Input((192, 192, 3))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = tmp_path / "dense.keras"
    model.save(path)
    paths, _ = pngs
    code = cli.main(
        ["explain", str(path), str(paths[0]), "--method", "gradcam", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "not this project's mini-Xception" in capsys.readouterr().err


def test_window_sized_images_are_fitted_like_predict(tmp_path, pngs, legacy_h5, legacy_model):
    """A model card saying window_px 96 makes 96-px images welcome: resized by nearest neighbour
    to the 192 input (the authors' way of feeding 800-px PNGs to their 1536 model)."""
    import shutil

    from training.card import ModelCard, write_card
    from training.predict import fit_to_input

    model_path = tmp_path / "m.h5"
    shutil.copy(legacy_h5, model_path)
    write_card(ModelCard(input_size=192, crop=128, window_px=96), model_path)
    small = tmp_path / "small.png"
    with Image.open(pngs[0][1]) as im:
        im.resize((96, 96)).save(small)
    out = tmp_path / "out"
    argv = [
        "explain",
        str(model_path),
        str(small),
        "--method",
        "gradcam",
        "--layer",
        "block5_relu2",
    ]
    assert cli.main([*argv, "--out", str(out)]) == 0
    fitted = fit_to_input(np.asarray(Image.open(small).convert("RGB")), 192)
    expected = gradcam(legacy_model, fitted[None].astype(np.float32), layer="block5_relu2")[0]
    np.testing.assert_allclose(np.load(out / "small.gradcam.npy"), expected, atol=1e-5)
