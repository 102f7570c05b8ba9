"""The RGB recipe that turns HH/HV backscatter (dB) into the 8-bit images the model was trained on.

Inferred, not published (domain brief §2): the dataset's channel means are about
(0.287, 0.287, 0.460) of 255 with R == G, consistent with R = G = cross-pol HV and B = co-pol HH,
each in dB and linearly stretched over a fixed window. The windows below are the best guess and
are configuration, never constants baked into callers. Value 0 is reserved for nodata: valid
pixels are clipped to 1..255.
"""

from __future__ import annotations

import numpy as np
from pydantic import model_validator

from polarscan.common.config import StrictModel


class RGBRecipe(StrictModel):
    """Linear dB stretch per channel: red = green = HV, blue = HH (defaults)."""

    red: str = "hv"
    green: str = "hv"
    blue: str = "hh"
    hh_db: tuple[float, float] = (-30.0, 0.0)
    hv_db: tuple[float, float] = (-36.0, -6.0)
    floor_db: float = -40.0  # sigma0 below this (or negative after noise removal) is clipped here

    @model_validator(mode="after")
    def _check(self) -> RGBRecipe:
        for name in ("red", "green", "blue"):
            if getattr(self, name) not in ("hh", "hv"):
                raise ValueError(f"{name} must be 'hh' or 'hv'")
        for name in ("hh_db", "hv_db"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ValueError(f"{name} window must be (low, high) with low < high")
        return self


def to_db(sigma0: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """10·log10(max(sigma0, floor)) in float32; NaN stays NaN."""
    floor = np.float32(10.0 ** (floor_db / 10.0))
    with np.errstate(invalid="ignore"):
        return (10.0 * np.log10(np.maximum(np.asarray(sigma0, dtype=np.float32), floor))).astype(
            np.float32
        )


def stretch(db: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """dB → uint8 in 1..255 over ``window``; NaN → 0 (nodata)."""
    lo, hi = window
    scaled = (np.asarray(db, dtype=np.float32) - lo) * (254.0 / (hi - lo)) + 1.0
    out = np.clip(np.nan_to_num(scaled, nan=0.0), 1.0, 255.0)
    out[np.isnan(db)] = 0.0
    return np.rint(out).astype(np.uint8)


def db_to_rgb(hh_db: np.ndarray, hv_db: np.ndarray, recipe: RGBRecipe | None = None) -> np.ndarray:
    """Stack (H, W) HH and HV dB arrays into an (H, W, 3) uint8 image; 0 where either is NaN."""
    recipe = recipe or RGBRecipe()
    chans = {"hh": stretch(hh_db, recipe.hh_db), "hv": stretch(hv_db, recipe.hv_db)}
    rgb = np.stack([chans[recipe.red], chans[recipe.green], chans[recipe.blue]], axis=-1)
    rgb[np.isnan(hh_db) | np.isnan(hv_db)] = 0
    return rgb
