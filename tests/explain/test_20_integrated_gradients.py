"""Integrated Gradients: completeness, the crop footprint, baselines, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest

from polarscan.common.errors import UsageError
from training import integrated_gradients


def _positive(model, x: np.ndarray) -> np.ndarray:
    return model.predict(x, verbose=0)[:, 1]


def test_completeness_within_one_percent_at_200_steps(legacy_model, legacy_images):
    """Sum of attributions = f(x) - f(black) within 1 %, on the 192 -> 128 model."""
    x = legacy_images[[0, 3]]  # ramps, spiral
    attr = integrated_gradients(legacy_model, x)  # defaults: black, 200 steps
    assert attr.shape == x.shape and attr.dtype == np.float32
    delta = _positive(legacy_model, x) - _positive(legacy_model, np.zeros_like(x[:1]))
    assert (np.abs(delta) > 0.1).all()  # a meaningful difference to explain
    np.testing.assert_allclose(attr.reshape(len(attr), -1).sum(axis=1), delta, rtol=0.01)


def test_baseline_that_differs_only_in_a_patch(legacy_model, legacy_images):
    """Attributions live only where image and baseline differ, and still sum to the change."""
    x = legacy_images[2:3]  # waves
    baseline = x[0].copy()
    baseline[64:128, 48:112] = 50.0
    attr = integrated_gradients(legacy_model, x, baseline=baseline, steps=200, batch_size=67)
    delta = _positive(legacy_model, x) - _positive(legacy_model, baseline[None])
    assert abs(delta[0]) > 0.01
    np.testing.assert_allclose(attr.sum(), delta[0], rtol=0.01)
    patch = np.zeros((192, 192), bool)
    patch[64:128, 48:112] = True
    assert not attr[0][~patch].any() and np.abs(attr[0][patch]).sum() > 0


def test_zero_outside_the_crop_and_alive_on_its_edges(legacy_model):
    x = np.random.default_rng(7).uniform(0, 255, (1, 192, 192, 3)).astype(np.float32)
    attr = np.abs(integrated_gradients(legacy_model, x, steps=4)[0]).sum(axis=-1)
    inside = np.zeros((192, 192), bool)
    inside[32:160, 32:160] = True
    assert not attr[~inside].any()  # the model never sees these pixels
    for edge in (attr[32, 32:160], attr[159, 32:160], attr[32:160, 32], attr[32:160, 159]):
        assert (edge > 0).mean() > 0.5  # and sees the crop's first/last rows and columns


def test_batching_over_steps_changes_nothing(legacy_model, legacy_images):
    x = legacy_images[:2]
    small = integrated_gradients(legacy_model, x, steps=8, batch_size=5)  # 18 points, uneven
    large = integrated_gradients(legacy_model, x, steps=8, batch_size=64)
    np.testing.assert_allclose(small, large, rtol=1e-4, atol=1e-7 * np.abs(large).max())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"baseline": np.zeros((5, 5, 3))}, "baseline of shape"),
    ],
)
def test_bad_arguments(small_model, kwargs, match):
    with pytest.raises(UsageError, match=match):
        integrated_gradients(small_model, np.zeros((1, 192, 192, 3), np.float32), **kwargs)


def test_wrong_image_size(small_model):
    with pytest.raises(UsageError, match="resize the images to 192x192"):
        integrated_gradients(small_model, np.zeros((1, 128, 128, 3), np.float32))
