"""The RGB recipe that turns co-/cross-pol backscatter (dB) into the 8-bit images the model saw.

Inferred, not published (domain brief §2, §5): the dataset's channel means are about
(0.287, 0.287, 0.460) of 255 with R == G, consistent with R = G = cross-pol (HV in EW, VH in IW)
and B = co-pol (HH or VV), each in dB and linearly stretched over a fixed window. The recipe
names channels by role (``co`` / ``cross``), so one recipe serves HH+HV and VV+VH products; the
dB windows are per acquisition mode (EW, IW). The defaults are the best guess — the same
windows for both modes, since nothing published tells them apart — and are configuration, never
constants baked into callers. Value 0 is reserved for nodata: valid pixels are clipped to 1..255.

Older recipes named channels ``hh``/``hv`` and had top-level ``hh_db``/``hv_db`` windows; they
are still read (``hh`` → ``co``, ``hv`` → ``cross``, the windows applied to every mode) with a
deprecation warning.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from polarscan.common.config import StrictModel
from polarscan.common.errors import UsageError

log = logging.getLogger(__name__)

MODES = ("EW", "IW")
Role = Literal["co", "cross"]
_LEGACY_ROLES = {"hh": "co", "hv": "cross"}
_LEGACY_WINDOWS = {"hh_db": "co_db", "hv_db": "cross_db"}


class DbWindows(StrictModel):
    """The dB range stretched onto 1..255, per role, for one acquisition mode."""

    co_db: tuple[float, float] = Field((-30.0, 0.0), description="co-pol (HH or VV) window")
    cross_db: tuple[float, float] = Field((-36.0, -6.0), description="cross-pol (HV or VH) window")

    @model_validator(mode="after")
    def _check(self) -> DbWindows:
        for name in ("co_db", "cross_db"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ValueError(f"{name} window must be (low, high) with low < high")
        return self


class ModeWindows(StrictModel):
    """dB windows per acquisition mode (defaults identical: inferred, see the module doc)."""

    EW: DbWindows = Field(default_factory=DbWindows, description="Extra Wide swath products")
    IW: DbWindows = Field(default_factory=DbWindows, description="Interferometric Wide products")


class RGBRecipe(StrictModel):
    """Linear dB stretch per channel: red = green = cross-pol, blue = co-pol (defaults)."""

    red: Role = "cross"
    green: Role = "cross"
    blue: Role = "co"
    windows: ModeWindows = Field(default_factory=ModeWindows, description="dB windows per mode")
    floor_db: float = -40.0  # sigma0 below this (or negative after noise removal) is clipped here

    @model_validator(mode="before")
    @classmethod
    def _legacy_keys(cls, data: Any) -> Any:
        """Read the old ``hh``/``hv`` recipe (channel names and ``hh_db``/``hv_db``)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        old: list[str] = []
        for ch in ("red", "green", "blue"):
            v = data.get(ch)
            if isinstance(v, str) and v.lower() in _LEGACY_ROLES:
                data[ch] = _LEGACY_ROLES[v.lower()]
                old.append(f"{ch}: {v}")
        old.extend(k for k in _LEGACY_WINDOWS if k in data)
        legacy_windows = {new: data.pop(k) for k, new in _LEGACY_WINDOWS.items() if k in data}
        if legacy_windows:
            if "windows" in data:
                raise ValueError(
                    "rgb has both the old hh_db/hv_db keys and 'windows'; keep only "
                    "windows.<mode>.co_db / cross_db"
                )
            data["windows"] = {m: dict(legacy_windows) for m in MODES}
        if old:
            msg = (
                f"RGB recipe uses deprecated keys ({', '.join(old)}): channels are now named by "
                "role ('co' = HH or VV, 'cross' = HV or VH) and dB windows are per mode under "
                "rgb.windows.<EW|IW>.co_db / cross_db; hh → co, hv → cross, hh_db/hv_db "
                "applied to every mode"
            )
            warnings.warn(msg, DeprecationWarning, stacklevel=2)
            log.warning("%s", msg)
        return data

    def window(self, mode: str, role: str) -> tuple[float, float]:
        """The dB window of ``role`` (co|cross) for acquisition ``mode`` (EW|IW)."""
        w = getattr(self.windows, mode.upper(), None) if mode.upper() in MODES else None
        if w is None:
            raise UsageError(
                f"no RGB dB windows for acquisition mode {mode!r} (known: {', '.join(MODES)})",
                "use an EW or IW product, or add the mode to rgb.windows",
            )
        return getattr(w, f"{role}_db")


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


def db_to_rgb(
    co_db: np.ndarray,
    cross_db: np.ndarray,
    recipe: RGBRecipe | None = None,
    mode: str = "EW",
) -> np.ndarray:
    """Stack (H, W) co-pol and cross-pol dB arrays into an (H, W, 3) uint8 image with the
    windows of acquisition ``mode``; 0 where either is NaN."""
    recipe = recipe or RGBRecipe()
    chans = {
        "co": stretch(co_db, recipe.window(mode, "co")),
        "cross": stretch(cross_db, recipe.window(mode, "cross")),
    }
    rgb = np.stack([chans[recipe.red], chans[recipe.green], chans[recipe.blue]], axis=-1)
    rgb[np.isnan(co_db) | np.isnan(cross_db)] = 0
    return rgb
