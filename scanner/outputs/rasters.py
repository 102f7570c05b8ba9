"""Per-window results painted back onto the mosaic grid, and written as COGs.

- Probability: each pixel holds the MAXIMUM probability over the crops covering it (the model
  only sees crops, so a pixel outside every scored crop has no value). NaN = no value.
- Saliency (Grad-CAM, IG magnitude): each window's map lives in the model's input frame (NaN
  outside the central crop); it is resized back to the window's mosaic pixels (nearest, pixel
  centres), WEIGHTED BY THE WINDOW'S PROBABILITY and combined by maximum. Grad-CAM is
  max-normalised per window, so an unweighted map of a window the model finds negative would
  shine as brightly as a real detection; weighting keeps the raster readable as "where the
  polar lows are, and how sure the model is" (pass ``weights=None`` for the raw maximum).
Both rasters are float32 in the mosaic grid (a 500 m mosaic is small); NaN is nodata, also where
the mosaic itself is nodata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from polarscan.common.errors import UsageError
from scanner.infer import nearest_index
from scanner.tiling import Window


def probability_raster(
    windows: Sequence[Window],
    probs: Sequence[float],
    height: int,
    width: int,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) float32: max probability over the crops covering each pixel; NaN elsewhere."""
    if len(windows) != len(probs):
        raise UsageError(
            f"{len(windows)} windows but {len(probs)} probabilities", "pass one score per window"
        )
    out = np.full((height, width), np.nan, dtype=np.float32)
    for w, p in zip(windows, probs, strict=True):
        rs, cs = w.crop_slices(height, width)
        np.fmax(out[rs, cs], np.float32(p), out=out[rs, cs])
    if valid is not None:
        out[~valid] = np.nan
    return out


def map_to_window(saliency: np.ndarray, window: Window) -> np.ndarray:
    """An (input, input) map in the model frame resized to the window's mosaic pixels."""
    n = saliency.shape[0]
    if saliency.shape != (n, n):
        raise UsageError(f"saliency map of shape {saliency.shape} is not square", "pass (N, H, W)")
    idx = nearest_index(n, window.size)
    return saliency[idx][:, idx]


def saliency_raster(
    windows: Sequence[Window],
    maps: Iterable[np.ndarray],
    height: int,
    width: int,
    weights: Sequence[float] | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) float32: per-window maps (model frame, NaN outside the crop) placed at their
    windows and combined by max, each multiplied by its weight (the window's probability)."""
    out = np.full((height, width), np.nan, dtype=np.float32)
    count = 0
    for i, (w, m) in enumerate(zip(windows, maps, strict=False)):
        count += 1
        tile = map_to_window(np.asarray(m, dtype=np.float32), w)
        if weights is not None:
            tile = tile * np.float32(weights[i])
        r0, c0 = max(w.row, 0), max(w.col, 0)
        r1, c1 = min(w.row + w.size, height), min(w.col + w.size, width)
        if r1 <= r0 or c1 <= c0:
            continue
        part = tile[r0 - w.row : r1 - w.row, c0 - w.col : c1 - w.col]
        np.fmax(out[r0:r1, c0:c1], part, out=out[r0:r1, c0:c1])
    if count != len(windows):
        raise UsageError(f"{len(windows)} windows but {count} saliency maps", "pass one per window")
    if valid is not None:
        out[~valid] = np.nan
    return out


def write_float_cog(
    path: str | Path,
    raster: np.ndarray,
    *,
    transform,
    crs,
    name: str,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write an (H, W) float32 raster as a COG (NaN nodata, average overviews), atomically."""
    from scanner.cog import write_cog

    return write_cog(
        path,
        np.asarray(raster, dtype=np.float32),
        transform=transform,
        crs=crs,
        nodata=float("nan"),
        tags=dict(tags or {}),
        band_names=[name],
        resampling="AVERAGE",
    )
