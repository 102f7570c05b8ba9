"""Synthetic RGB mosaics and tiny transparent models for the tiling/inference/output tests.

The mosaic's pixels encode their position (R = row, G = column, modulo 254, plus 1) so a window
read from the wrong place is caught to the pixel; a slanted swath edge gives nodata (0) borders
like a real descending pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

CRS = "EPSG:3413"


def rgb_array(height: int, width: int, slant: bool = True, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8, position-encoded R/G, random B in 1..255, 0 outside a slanted swath."""
    rows, cols = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = rows % 254 + 1
    rgb[..., 1] = cols % 254 + 1
    rgb[..., 2] = rng.integers(1, 256, size=(height, width), dtype=np.uint8)
    if slant:
        left = (rows * 0.3).astype(int)  # swath edge moves right going down
        rgb[cols < left] = 0
    return rgb


def write_rgb_mosaic(
    path: Path, height: int, width: int, pixel_m: float = 2000.0, slant: bool = True, seed: int = 0
) -> tuple[np.ndarray, object]:
    """Write a 3-band uint8 COG in EPSG:3413; return (the (H, W, 3) array, its transform)."""
    from scanner.cog import write_cog

    rgb = rgb_array(height, width, slant, seed)
    transform = from_origin(-500_000.0, 1_500_000.0, pixel_m, pixel_m)
    write_cog(
        path,
        np.moveaxis(rgb, -1, 0),
        transform=transform,
        crs=CRS,
        nodata=0,
        colorinterp=["red", "green", "blue"],
    )
    return rgb, transform


def blue_mean_model(input_size: int, crop: int, gain: float = 8.0):
    """A real Keras model with the classifier's interface (``center_crop`` layer, softmax over
    2 classes) whose positive probability is sigmoid(2·gain·(mean blue of the crop / 255 − 0.5)):
    its scores can be recomputed exactly from the mosaic pixels."""
    import keras
    from keras import layers

    inp = keras.Input((input_size, input_size, 3))
    x = layers.CenterCrop(crop, crop, name="center_crop")(inp)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    dense = layers.Dense(2, activation="softmax", name="classifier")
    out = dense(x)
    model = keras.Model(inp, out)
    dense.set_weights(
        [
            np.array([[0, 0], [0, 0], [-gain, gain]], dtype=np.float32),
            np.array([gain / 2, -gain / 2], dtype=np.float32) * 1.0,
        ]
    )
    return model


def blue_mean_prob(crop_pixels: np.ndarray, gain: float = 8.0) -> float:
    """What :func:`blue_mean_model` returns for a crop (uint8 (h, w, 3))."""
    b = crop_pixels[..., 2].astype(np.float64).mean() / 255.0
    return float(1.0 / (1.0 + np.exp(-2.0 * gain * (b - 0.5))))
