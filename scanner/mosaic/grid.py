"""The output grid: a north-up raster in the target CRS whose edges snap to the resolution.

Snapping every extent outward to whole multiples of the resolution means mosaics of different
nights (and different slices of one night) share pixel edges, so they stack and compare without
resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine


@dataclass(frozen=True)
class OutputGrid:
    """``width`` x ``height`` pixels of ``resolution`` metres, top-left corner at (x0, y0)."""

    crs: str
    resolution: float
    x0: float  # left edge
    y0: float  # top edge
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.x0, 0.0, -self.resolution, self.y0)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top)."""
        r = self.resolution
        return (self.x0, self.y0 - self.height * r, self.x0 + self.width * r, self.y0)

    def centres(self, rows: slice = slice(None), cols: slice = slice(None)):
        """Pixel-centre coordinates (x 1D over columns, y 1D over rows) of a window."""
        r = self.resolution
        c = np.arange(self.width, dtype=np.float64)[cols]
        w = np.arange(self.height, dtype=np.float64)[rows]
        return self.x0 + (c + 0.5) * r, self.y0 - (w + 0.5) * r

    def rowcol(self, x, y):
        """Fractional (row, col) of map coordinates; pixel (i, j) spans [i, i+1) x [j, j+1)."""
        r = self.resolution
        return (self.y0 - np.asarray(y)) / r, (np.asarray(x) - self.x0) / r

    def window_of(self, bounds: tuple[float, float, float, float]) -> tuple[slice, slice]:
        """(rows, cols) slices of this grid covering ``bounds`` (clipped to the grid)."""
        left, bottom, right, top = bounds
        r = self.resolution
        c0 = min(self.width, max(0, math.floor((left - self.x0) / r + 1e-9)))
        c1 = min(self.width, math.ceil((right - self.x0) / r - 1e-9))
        r0 = min(self.height, max(0, math.floor((self.y0 - top) / r + 1e-9)))
        r1 = min(self.height, math.ceil((self.y0 - bottom) / r - 1e-9))
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def snap_grid(bounds: tuple[float, float, float, float], resolution: float, crs: str) -> OutputGrid:
    """The smallest grid aligned to multiples of ``resolution`` that contains ``bounds``.

    Edges already on a multiple stay there (a tiny tolerance absorbs float noise), so the
    extent is never grown by a whole pixel for nothing.
    """
    left, bottom, right, top = bounds
    if not (right > left and top > bottom):
        raise ValueError(f"empty bounds {bounds}")
    r = resolution
    eps = 1e-6
    x0 = math.floor(left / r + eps) * r
    x1 = math.ceil(right / r - eps) * r
    y0 = math.ceil(top / r - eps) * r
    y1 = math.floor(bottom / r + eps) * r
    return OutputGrid(
        crs=crs,
        resolution=r,
        x0=x0,
        y0=y0,
        width=max(1, round((x1 - x0) / r)),
        height=max(1, round((y0 - y1) / r)),
    )


def union_bounds(
    many: list[tuple[float, float, float, float]],
) -> tuple[float, float, float, float]:
    """The bounding box of several (left, bottom, right, top) boxes."""
    arr = np.asarray(many, dtype=np.float64)
    return (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
