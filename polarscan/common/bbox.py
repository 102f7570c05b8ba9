"""The checks a lon/lat bbox ``W S E N`` must pass (standard library only: the CLI checks
``--bbox`` while parsing, :meth:`scanner.aoi.AOI.from_bbox` checks values from anywhere)."""

from __future__ import annotations

import math

from polarscan.common.errors import UsageError


def check_bbox(w: float, s: float, e: float, n: float) -> None:
    """A :class:`UsageError` (``key="bbox"``) unless the numbers are finite degrees with
    ``S < N`` and ``W != E``; ``W > E`` is allowed and means the box crosses 180°."""
    vals = {"west": w, "south": s, "east": e, "north": n}
    for name, v in vals.items():
        if not isinstance(v, int | float) or not math.isfinite(v):
            raise UsageError(
                f"bbox {name} is not a number ({v!r})", "give W S E N in degrees", key="bbox"
            )
    for name in ("south", "north"):
        if abs(vals[name]) > 90:
            raise UsageError(
                f"bbox {name} latitude {vals[name]:g} is outside [-90, 90]",
                "give latitudes in degrees between -90 and 90 (order: W S E N)",
                key="bbox",
            )
    for name in ("west", "east"):
        if abs(vals[name]) > 180:
            raise UsageError(
                f"bbox {name} longitude {vals[name]:g} is outside [-180, 180]",
                "give longitudes in degrees between -180 and 180 (W > E crosses 180°)",
                key="bbox",
            )
    if s >= n:
        raise UsageError(
            f"bbox south ({s:g}) is not below north ({n:g})",
            "give the bbox as W S E N with S < N",
            key="bbox",
        )
    if w == e:
        raise UsageError(
            f"bbox west and east are both {w:g}: the box is empty",
            "give W S E N with W ≠ E (W > E means the box crosses 180°)",
            key="bbox",
        )
