"""The reference inputs of the legacy-h5 fixture (tests/data/legacy-h5/README.md)."""

from __future__ import annotations

import numpy as np


def reference_images(n: int = 192) -> np.ndarray:
    """The four images of tests/data/legacy-h5/README.md (float32, 0-255)."""
    yy, xx = np.mgrid[0:n, 0:n] / n
    ramps = np.stack([255 * xx, 255 * yy, 128 + 0 * xx], axis=-1)
    r = np.hypot(xx - 0.5, yy - 0.5)
    disk = np.repeat((255 * (r < 0.2))[..., None], 3, axis=-1)
    waves = np.stack(
        [
            127 + 120 * np.sin(20 * xx),
            127 + 120 * np.cos(15 * yy),
            127 + 120 * np.sin(9 * (xx + yy)),
        ],
        axis=-1,
    )
    th = np.arctan2(yy - 0.5, xx - 0.5)
    spiral = np.repeat((127 + 127 * np.sin(3 * th + 25 * r))[..., None], 3, axis=-1)
    return np.stack([ramps, disk, waves, spiral]).astype(np.float32)
