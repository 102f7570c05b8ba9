"""Grad-CAM: placed on the crop the model sees, to the pixel; right numbers; clear errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from polarscan.common.errors import UsageError
from training import gradcam
from training.explain import crop_window, gradcam_layers, place_in_crop


def _inside(size: int, window: tuple[int, int, int]) -> np.ndarray:
    row0, col0, crop = window
    mask = np.zeros((size, size), bool)
    mask[row0 : row0 + crop, col0 : col0 + crop] = True
    return mask


@pytest.mark.parametrize(
    ("fixture", "size", "window"),
    [("model_800", 800, (144, 144, 512)), ("model_1536", 1536, (256, 256, 1024))],
)
def test_map_sits_on_the_crop_to_the_pixel(request, fixture, size, window):
    model = request.getfixturevalue(fixture)
    assert crop_window(model) == window
    row0, col0, crop = window
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    outside = x.copy()  # everything the model cannot see, changed
    outside[:, :row0] = 255 - outside[:, :row0]
    outside[:, :, col0 + crop :] = 0
    first_row = x.copy()  # only the first row of the crop, changed
    first_row[:, row0, col0 : col0 + crop] = 255 - first_row[:, row0, col0 : col0 + crop]
    first_col = x.copy()  # only the first column of the crop, changed
    first_col[:, row0 : row0 + crop, col0] = 255 - first_col[:, row0 : row0 + crop, col0]
    maps = gradcam(model, np.concatenate([x, outside, first_row, first_col]), batch_size=4)

    assert maps.shape == (4, size, size) and maps.dtype == np.float32
    inside = _inside(size, window)
    assert np.isnan(maps[:, ~inside]).all()  # undefined outside, exactly
    assert not np.isnan(maps[:, inside]).any()
    assert maps[:, inside].min() >= 0.0 and maps[:, inside].max() <= 1.0
    assert maps[0, inside].max() > 0.5  # there is positive evidence to move
    # outside the crop: no effect at all (up to float rounding, which varies with the batch)
    np.testing.assert_allclose(maps[1], maps[0], rtol=0, atol=1e-6)
    assert np.abs(maps[2] - maps[0])[inside].max() > 1e-4  # the crop's edge pixels count
    assert np.abs(maps[3] - maps[0])[inside].max() > 1e-4


@pytest.mark.parametrize(("size", "row0"), [(96, 16), (99, 17)])
def test_known_map_of_a_patch_model(make_patch_model, size, row0):
    """Grad-CAM of the patch-sum model is the patch sums over their max, upsampled on the crop
    (an odd margin checks Keras' offset convention, (size - crop) // 2)."""
    model = make_patch_model(size, 64)
    assert crop_window(model) == (row0, row0, 64)
    x = np.full((1, size, size, 3), 51.0, np.float32)  # 0.2 after rescaling
    col0 = row0
    x[0, row0 + 16 : row0 + 24, col0 + 40 : col0 + 48] = 255.0  # grid cell (2, 5) -> 1.0
    maps = gradcam(model, x, layer="patch_relu")
    grid = np.full((1, 8, 8), 0.2, np.float32)
    grid[0, 2, 5] = 1.0
    np.testing.assert_allclose(maps, place_in_crop(grid, size, (row0, col0, 64)), atol=1e-5)
    peak = np.unravel_index(np.nanargmax(maps[0]), maps[0].shape)
    assert row0 + 16 <= peak[0] < row0 + 24 and col0 + 40 <= peak[1] < col0 + 48
    # the conv layer itself works too (any convolutional layer by name)
    np.testing.assert_allclose(gradcam(model, x, layer="patches"), maps, atol=1e-5)


def test_model_without_crop_maps_the_whole_input(make_patch_model):
    model = make_patch_model(64, None)
    assert crop_window(model) == (0, 0, 64)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    maps = gradcam(model, x, layer="patch_relu")
    assert not np.isnan(maps).any() and maps.max() <= 1.0


def test_batches_and_padding_do_not_change_results(legacy_model, legacy_images):
    x = np.concatenate([legacy_images, legacy_images[:1] * 0.5])  # 5 images
    one_go = gradcam(legacy_model, x, layer="block5_relu2", batch_size=16)
    in_twos = gradcam(legacy_model, x, layer="block5_relu2", batch_size=2)
    np.testing.assert_allclose(in_twos, one_go, atol=1e-5)
    assert not np.allclose(one_go[0], one_go[1], equal_nan=True)  # maps differ per image


def test_probe_activations_are_the_reference_activations(legacy_model, legacy_images, test_data):
    """The probe model shares the loaded weights: its activations are the authors' (TF 2.5)."""
    from training.explain import _probe
    from training.gradients import activation_gradients

    ref = np.load(test_data / "legacy-h5" / "paper_tf25_192_ref.npz")
    probe, eps = _probe(legacy_model, "block7_relu2", 4)
    acts, grads, probs = activation_gradients(probe, eps, legacy_images, 1)
    np.testing.assert_allclose(acts, ref["a14"], rtol=1e-5, atol=1e-5 * np.abs(ref["a14"]).max())
    np.testing.assert_allclose(probs, ref["pred"], rtol=1e-4, atol=1e-6)
    assert grads.shape == acts.shape and np.abs(grads).max() > 0


def test_one_by_one_layer_gives_a_constant_map_and_says_so(caplog):
    from training.model import build_model

    model = build_model(192, 128, augment=False)  # fresh: the warning comes once per model
    x = np.random.default_rng(5).uniform(0, 255, (2, 192, 192, 3)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="training.explain"):
        maps = gradcam(model, x)  # block7_relu2 is 1x1 for a 128 crop
        gradcam(model, x)
    assert "1x1" in caplog.text and "constant" in caplog.text and "block5_relu2" in caplog.text
    assert caplog.text.count("1x1") == 1
    inside = _inside(192, (32, 32, 128))
    for m in maps:
        assert np.unique(m[inside]).size == 1 and m[inside][0] in (0.0, 1.0)
        assert np.isnan(m[~inside]).all()


def test_unknown_layer_lists_valid_names(small_model):
    x = np.zeros((1, 192, 192, 3), np.float32)
    with pytest.raises(UsageError, match="not a convolutional feature map") as err:
        gradcam(small_model, x, layer="no_such_layer")
    assert "block7_relu2" in str(err.value) and "entry_conv" in str(err.value)
    assert "classifier" not in str(err.value).split("choose one of:")[1]


def test_valid_layers_are_feature_maps_only(small_model):
    names = gradcam_layers(small_model)
    assert names[0] == "entry_conv" and "exit_relu" in names and "block7_relu2" in names
    assert not {"center_crop", "rescaling", "gap", "classifier", "image"} & set(names)


def test_model_without_conv_layer_is_refused():
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="dense_only")
    with pytest.raises(UsageError, match="no convolutional layer"):
        gradcam(model, np.zeros((1, 16, 16, 3), np.float32), layer="dense")


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 800, 800, 3), r"do not fit the model: it takes \(N, 192, 192, 3\)"),
        ((2, 192, 192, 4), "192x192 pixels with 3 channels"),
        ((192, 192, 3), "add a batch axis"),
        ((0, 192, 192, 3), "empty"),
    ],
)
def test_wrong_image_shape_is_refused(small_model, shape, match):
    with pytest.raises(UsageError, match=match) as err:
        gradcam(small_model, np.zeros(shape, np.float32))
    assert err.value.exit_code == 2
