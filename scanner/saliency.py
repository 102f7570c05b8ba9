"""Explain the windows that look like polar lows: Grad-CAM / IG maps streamed from the mosaic.

Only windows the model scores at or above a threshold are explained (Integrated Gradients costs
``steps + 1`` forward/backward passes per window). Maps come back in the model's input frame
(NaN outside the central crop), ready for :func:`scanner.outputs.rasters.saliency_raster`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from polarscan.common.config import StrictModel
from polarscan.common.errors import UsageError
from scanner.infer import check_card, iter_window_batches
from scanner.tiling import Window
from training.card import ModelCard

METHODS = ("gradcam", "ig")


class SaliencyConfig(StrictModel):
    """Which explanations the scan writes (``saliency:`` in ``configs/scan.yaml``)."""

    methods: tuple[Literal["gradcam", "ig"], ...] = Field(
        ("gradcam",), description="explanations to compute: gradcam, ig"
    )
    min_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="explain windows at or above this (default: threshold)"
    )
    weight: Literal["probability", "none"] = Field(
        "probability", description="multiply each window's map by its probability before max"
    )
    ig_steps: int = Field(64, ge=1, description="Integrated Gradients steps (authors: 200)")
    gradcam_layer: str = Field(
        "auto",
        description="Grad-CAM layer; auto = the authors' block7_relu2 unless it is 1x1 for the "
        "model's crop (crops <= 128 px), then the last block ReLU with a 4x4 or finer grid",
    )
    batch_size: int = Field(8, ge=1, description="windows explained per batch")


def parse_methods(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"gradcam,ig"`` → ``("gradcam", "ig")``; empty/None/"none" → ``()``."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip()))
    if out == ("none",):
        return ()
    bad = [m for m in out if m not in METHODS]
    if bad:
        raise UsageError(
            f"unknown saliency method(s): {', '.join(bad)}",
            "set saliency.methods to gradcam, ig, both (gradcam,ig) or none",
            key="saliency.methods",
        )
    return out


def select_for_explanation(
    windows: Sequence[Window], probs: Sequence[float], min_probability: float
) -> tuple[list[Window], np.ndarray]:
    """The windows (and their probabilities) that deserve an explanation."""
    keep = [i for i, p in enumerate(probs) if p >= min_probability]
    return [windows[i] for i in keep], np.asarray([probs[i] for i in keep], dtype=np.float32)


def _outside_crop_nan(maps: np.ndarray, model) -> np.ndarray:
    from training.explain import crop_window

    r0, c0, crop = crop_window(model)
    out = np.full_like(maps, np.nan)
    out[:, r0 : r0 + crop, c0 : c0 + crop] = maps[:, r0 : r0 + crop, c0 : c0 + crop]
    return out


def choose_gradcam_layer(model, layer: str = "auto") -> str:
    """The Grad-CAM target layer. ``auto``: the authors' layer (4x4 for their 512 crop), unless
    the model's crop makes it 1x1 (a constant map, no better than the probability): then the
    last block ReLU whose grid is at least 4x4, the authors' resolution."""
    from training.explain import gradcam_layers
    from training.model import GRADCAM_LAYER

    if layer != "auto":
        return layer
    names = gradcam_layers(model)
    if GRADCAM_LAYER in names and _grid(model, GRADCAM_LAYER) >= 2:
        return GRADCAM_LAYER
    fine = [n for n in names if _grid(model, n) >= 4]
    relus = [n for n in fine if n.endswith("_relu2")]
    if relus or fine:
        return (relus or fine)[-1]
    return GRADCAM_LAYER if GRADCAM_LAYER in names else names[-1] if names else GRADCAM_LAYER


def _grid(model, name: str) -> int:
    shape = model.get_layer(name).output.shape
    return int(min(shape[1], shape[2]))


def explain_windows(
    model,
    mosaic_path: str | Path,
    windows: Sequence[Window],
    card: ModelCard,
    methods: Sequence[str] = ("gradcam",),
    *,
    batch_size: int = 8,
    ig_steps: int = 64,
    gradcam_layer: str = "auto",
) -> dict[str, np.ndarray]:
    """``{method: (N, S, S) float32}`` maps in the input frame for each window, NaN outside
    the central crop. IG is reduced to a per-pixel magnitude in [0, 1]. ``gradcam_layer``: see
    :func:`choose_gradcam_layer`."""
    from training.explain import gradcam, ig_magnitude, integrated_gradients

    methods = parse_methods(methods)
    check_card(model, card)
    n, s = len(windows), card.input_size
    out = {m: np.empty((n, s, s), dtype=np.float32) for m in methods}
    if not methods or n == 0:
        return out
    layer = choose_gradcam_layer(model, gradcam_layer) if "gradcam" in methods else None
    i = 0
    for chunk, batch in iter_window_batches(mosaic_path, windows, card, batch_size):
        x = batch.astype(np.float32)
        m = len(chunk)
        if "gradcam" in methods:
            assert layer is not None  # chosen above whenever gradcam is asked for
            out["gradcam"][i : i + m] = gradcam(model, x, layer=layer, batch_size=batch_size)
        if "ig" in methods:
            attr = integrated_gradients(model, x, steps=ig_steps, batch_size=32)
            out["ig"][i : i + m] = _outside_crop_nan(ig_magnitude(attr), model)
        i += m
    return out
