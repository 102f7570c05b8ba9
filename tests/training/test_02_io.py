"""Loading models: the authors' legacy .h5 reproduces TF 2.5, ours round-trip, bad files fail."""

from __future__ import annotations

import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest

from polarscan.common.errors import UsageError
from tests.support.legacy import reference_images
from training.card import ModelCard, card_path, read_card
from training.io import load_model, save_model
from training.model import GRADCAM_LAYER, model_geometry


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_legacy_h5_reproduces_tf25_outputs(legacy_model, test_data):
    import keras

    ref = np.load(test_data / "legacy-h5" / "paper_tf25_192_ref.npz")
    x = reference_images()
    assert model_geometry(legacy_model) == (192, 128)
    pred = legacy_model.predict(x, verbose=0)
    assert _rel(pred, ref["pred"]) < 1e-5
    probe = keras.Model(legacy_model.input, legacy_model.get_layer(GRADCAM_LAYER).output)
    a14 = probe.predict(x, verbose=0)
    assert a14.shape == ref["a14"].shape
    assert _rel(a14, ref["a14"]) < 1e-5


def test_keras_round_trip_with_card(saved_small, small_model):
    assert saved_small.is_file() and card_path(saved_small).is_file()
    model = load_model(saved_small)
    x = np.random.default_rng(0).uniform(0, 255, (2, 192, 192, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), small_model.predict(x, verbose=0))
    card = read_card(saved_small, *model_geometry(model))
    assert card.pixel_spacing_m == 2000.0 and card.window_px == 192
    leftovers = [p.name for p in saved_small.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def _err(path, match):
    with pytest.raises(UsageError, match=match) as info:
        load_model(path)
    assert info.value.exit_code == 2 and info.value.fix
    return str(info.value)


def test_missing_file(tmp_path):
    _err(tmp_path / "nope.keras", "not found")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(b"x")
    _err(p, "unsupported model file extension")


def test_weights_only_file_is_explained(tmp_path):
    p = tmp_path / "model.weights.h5"
    p.write_bytes(b"x")
    _err(p, "weights only")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_png_renamed_is_not_a_model(tmp_path, suffix):
    from PIL import Image

    p = tmp_path / f"picture{suffix}"
    Image.new("RGB", (8, 8)).save(p, format="PNG")
    _err(p, "is not a")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_random_bytes_are_not_a_model(tmp_path, suffix):
    p = tmp_path / f"noise{suffix}"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    _err(p, "is not a")


def test_zip_that_is_not_a_keras_model(tmp_path):
    p = tmp_path / "fake.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("hello.txt", "hi")
    _err(p, "could not be loaded")


def test_keras_model_of_another_architecture(tmp_path):
    import keras

    inp = keras.Input((16, 16, 3))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp))
    p = tmp_path / "other.keras"
    keras.Model(inp, out).save(p)
    msg = _err(p, "not this project's mini-Xception")
    assert "center_crop" in msg


def test_keras_lambda_is_refused_by_safe_mode(tmp_path):
    import keras

    inp = keras.Input((4,))
    out = keras.layers.Lambda(lambda t: t * 2)(inp)
    p = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(p)
    _err(p, "could not be loaded")


def _patched_h5(src, dest, edit):
    shutil.copy(src, dest)
    with h5py.File(dest, "r+") as fh:
        cfg = json.loads(fh.attrs["model_config"])
        edit(cfg)
        fh.attrs["model_config"] = json.dumps(cfg)
    return dest


def test_h5_of_wrong_architecture_names_what_was_expected(tmp_path, legacy_h5):
    def widen_head(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["config"]["units"] = 3

    p = _patched_h5(legacy_h5, tmp_path / "wide.h5", widen_head)
    msg = _err(p, "not the mini-Xception")
    assert "Dense units [3]" in msg and "expected" in msg


def test_h5_missing_a_block(tmp_path, legacy_h5):
    def drop_sepconv(cfg):
        layers = cfg["config"]["layers"]
        idx = next(i for i, lyr in enumerate(layers) if lyr["class_name"] == "SeparableConv2D")
        del layers[idx]

    p = _patched_h5(legacy_h5, tmp_path / "short.h5", drop_sepconv)
    _err(p, "SeparableConv2D filters")


def test_h5_without_model_config(tmp_path):
    p = tmp_path / "bare.h5"
    with h5py.File(p, "w") as fh:
        fh.create_dataset("x", data=np.zeros(3))
    _err(p, "without a model_config")


def test_save_model_refuses_bad_suffix_and_mismatched_card(tmp_path, small_model):
    card = ModelCard(input_size=192, crop=128, window_px=192)
    with pytest.raises(UsageError, match=r"\.keras"):
        save_model(small_model, tmp_path / "m.h5", card)
    with pytest.raises(UsageError, match="card says"):
        save_model(small_model, tmp_path / "m.keras", ModelCard(input_size=800, crop=512))
    assert list(tmp_path.iterdir()) == []
