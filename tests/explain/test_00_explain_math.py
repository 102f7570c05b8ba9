"""The NumPy arithmetic of the explanations, with exact values (no model involved)."""

from __future__ import annotations

import numpy as np
import pytest

from polarscan.common.errors import UsageError
from training.explain import (
    bilinear_matrix,
    cam_from_gradients,
    ig_magnitude,
    place_in_crop,
    trapezoid_weights,
)


def test_bilinear_matrix_half_pixel_centres():
    # 2 -> 4: outputs sample the input at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    mat = bilinear_matrix(4, 2)
    expected = np.array([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]], np.float32)
    np.testing.assert_allclose(mat, expected, atol=1e-7)
    np.testing.assert_allclose(bilinear_matrix(128, 4).sum(axis=1), 1.0, atol=1e-6)


def test_bilinear_matrix_from_one_cell_is_constant():
    np.testing.assert_array_equal(bilinear_matrix(7, 1), np.ones((7, 1), np.float32))


def test_bilinear_matches_tf_image_resize():
    tf = pytest.importorskip("tensorflow")
    grid = np.random.default_rng(1).random((1, 4, 5, 1)).astype(np.float32)
    ref = tf.image.resize(grid, (32, 40), method="bilinear").numpy()[0, :, :, 0]
    ours = bilinear_matrix(32, 4) @ grid[0, :, :, 0] @ bilinear_matrix(40, 5).T
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_cam_channel_mean_weights_relu_and_max_normalisation():
    acts = np.zeros((1, 2, 2, 2), np.float32)
    acts[0, :, :, 0] = [[1.0, 2.0], [3.0, 4.0]]
    acts[0, :, :, 1] = [[4.0, 0.0], [0.0, 0.0]]
    grads = np.zeros_like(acts)
    grads[0, :, :, 0] = 1.0  # weight 1
    grads[0, :, :, 1] = -2.0  # weight -2
    # 1*A0 - 2*A1 = [[-7, 2], [3, 4]] -> ReLU -> / 4
    expected = np.array([[[0.0, 0.5], [0.75, 1.0]]], np.float32)
    np.testing.assert_allclose(cam_from_gradients(acts, grads), expected)


def test_cam_without_positive_evidence_is_zero_not_nan():
    acts = np.ones((2, 3, 3, 4), np.float32)
    cam = cam_from_gradients(acts, -np.ones_like(acts))
    assert np.array_equal(cam, np.zeros((2, 3, 3), np.float32))


def test_place_in_crop_nan_outside_values_inside():
    cams = np.array([[[0.0, 1.0], [1.0, 0.0]]], np.float32)
    out = place_in_crop(cams, 10, (3, 3, 4))
    assert out.shape == (1, 10, 10)
    inside = np.zeros((10, 10), bool)
    inside[3:7, 3:7] = True
    assert np.isnan(out[0][~inside]).all()
    assert not np.isnan(out[0][inside]).any()
    assert out[0, 3, 3] == 0.0 and out[0, 3, 6] == 1.0 and out[0, 6, 3] == 1.0


@pytest.mark.parametrize("steps", [1, 2, 7, 200])
def test_trapezoid_weights_integrate_linear_exactly(steps):
    alphas, weights = trapezoid_weights(steps)
    assert len(alphas) == steps + 1 and alphas[0] == 0.0 and alphas[-1] == 1.0
    assert weights.sum() == pytest.approx(1.0)
    assert (weights * (3 * alphas + 1)).sum() == pytest.approx(2.5)  # ∫0^1 3a + 1 da


def test_ig_magnitude_percentile_clip():
    attr = np.zeros((1, 10, 10, 3), np.float32)
    attr[0, :, :, 0] = np.arange(100).reshape(10, 10)  # magnitudes 0..99
    attr[0, :, :, 1] = -np.arange(100).reshape(10, 10)  # abs adds: magnitudes 0..198
    mag = ig_magnitude(attr, percentile=50.0)
    top = np.percentile(2 * np.arange(100), 50.0)
    np.testing.assert_allclose(mag[0, 0, :3], [0.0, 2 / top, 4 / top], rtol=1e-6)
    assert mag.max() == 1.0 and mag.min() == 0.0
    assert (mag[0].ravel()[50:] == 1.0).all()


def test_ig_magnitude_of_zero_attributions_is_zero():
    assert not ig_magnitude(np.zeros((2, 4, 4, 3))).any()


@pytest.mark.parametrize(
    ("shape", "percentile", "match"),
    [((4, 4, 3), 99.0, "batch"), ((1, 4, 4, 3), 0.0, "percentile")],
)
def test_ig_magnitude_bad_input(shape, percentile, match):
    with pytest.raises(UsageError, match=match):
        ig_magnitude(np.ones(shape), percentile=percentile)
