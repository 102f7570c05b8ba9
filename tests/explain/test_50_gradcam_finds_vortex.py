"""On synthetic images with a known polar low, the trained demo model's Grad-CAM points at it."""

from __future__ import annotations

import numpy as np
import pytest

from training import gradcam
from training.explain import crop_window

N_IMAGES = 40


@pytest.fixture(scope="module")
def demo_model(repo_root):
    path = repo_root / "models" / "demo" / "polarlow-demo-192.keras"
    if not path.is_file():
        pytest.skip(f"{path} is missing: make it with tools/make_demo_weights.py")
    from training.io import load_model

    return load_model(path)


@pytest.fixture(scope="module")
def vortex_images():
    """Positives drawn by the foundation's generator (seeded, not the demo's training seed)."""
    from training.synthetic import make_image

    rng = np.random.default_rng(20260101)
    pairs = [make_image(rng, 192, positive=True, pixel_m=2000.0) for _ in range(N_IMAGES)]
    return np.stack([img for img, _ in pairs]).astype(np.float32), [v for _, v in pairs]


def test_gradcam_peak_falls_in_the_vortex_far_more_often_than_chance(demo_model, vortex_images):
    images, vortices = vortex_images
    # block7_relu2 is 1x1 for a 128-px crop (constant map): block4_relu2 is the 8x8 feature map
    maps = gradcam(demo_model, images, layer="block4_relu2")
    row0, col0, crop = crop_window(demo_model)
    inside = np.zeros((192, 192), bool)
    inside[row0 : row0 + crop, col0 : col0 + crop] = True
    yy, xx = np.mgrid[0:192, 0:192]
    hits, chance = [], []
    for m, v in zip(maps, vortices, strict=True):
        near = np.hypot(yy - v.row, xx - v.col) <= v.radius_px / 3  # the inner third: eye + arms
        peak = np.unravel_index(np.nanargmax(m), m.shape)
        hits.append(bool(near[peak]))
        chance.append((near & inside).sum() / inside.sum())  # a random pixel of the crop
    hit_rate, chance_rate = float(np.mean(hits)), float(np.mean(chance))
    assert hit_rate >= 0.75, (hit_rate, chance_rate)
    assert hit_rate >= 2.5 * chance_rate, (hit_rate, chance_rate)
