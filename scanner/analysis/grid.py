"""Grid arithmetic of the data cube: the common grid, its spatial blocks, and where a mosaic lands.

Pure functions on numbers (no IO): tested with exact values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine

from polarscan.common.errors import UsageError

Bounds = tuple[float, float, float, float]  # left, bottom, right, top (CRS units)


@dataclass(frozen=True)
class Grid:
    """A north-up grid: ``left``/``top`` corner, square ``resolution``, ``height`` x ``width``."""

    left: float
    top: float
    resolution: float
    height: int
    width: int

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.left, 0.0, -self.resolution, self.top)

    @property
    def bounds(self) -> Bounds:
        r = self.resolution
        return (self.left, self.top - self.height * r, self.left + self.width * r, self.top)

    def xs(self) -> list[float]:
        """Pixel-centre x coordinates, west to east."""
        r = self.resolution
        return [self.left + (i + 0.5) * r for i in range(self.width)]

    def ys(self) -> list[float]:
        """Pixel-centre y coordinates, north to south."""
        r = self.resolution
        return [self.top - (i + 0.5) * r for i in range(self.height)]

    def block(self, row0: int, col0: int, height: int, width: int) -> Grid:
        """The sub-grid of ``height`` x ``width`` pixels starting at pixel (row0, col0)."""
        r = self.resolution
        return Grid(self.left + col0 * r, self.top - row0 * r, r, height, width)


def check_resolution(resolution: float) -> float:
    if not (isinstance(resolution, int | float) and math.isfinite(resolution) and resolution > 0):
        raise UsageError(
            f"resolution {resolution!r} is not a positive number of CRS units",
            "pass resolution=None for the mosaics' own spacing, or e.g. resolution=2000.0",
        )
    return float(resolution)


def check_bounds(bounds: Bounds) -> Bounds:
    try:
        left, bottom, right, top = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise UsageError(
            f"bounds {bounds!r} are not four numbers",
            "pass bounds=(left, bottom, right, top) in the cube's CRS, or None for the union",
        ) from None
    if (
        not all(math.isfinite(v) for v in (left, bottom, right, top))
        or left >= right
        or bottom >= top
    ):
        raise UsageError(
            f"bounds {bounds!r} are empty or not finite (need left < right and bottom < top)",
            "pass bounds=(left, bottom, right, top) in the cube's CRS, or None for the union",
        )
    return left, bottom, right, top


def union_bounds(all_bounds: list[Bounds]) -> Bounds:
    """The smallest box holding every one of ``all_bounds``."""
    if not all_bounds:
        raise ValueError("no bounds to join")
    return (
        min(b[0] for b in all_bounds),
        min(b[1] for b in all_bounds),
        max(b[2] for b in all_bounds),
        max(b[3] for b in all_bounds),
    )


def snap_grid(bounds: Bounds, resolution: float, *, snap: bool) -> Grid:
    """The grid covering ``bounds`` at ``resolution``.

    ``snap=True`` moves the edges outward to multiples of the resolution (as the mosaics are, so
    nights share pixel edges); otherwise the grid starts exactly at (left, top) and its last
    column/row may reach past right/bottom by less than one pixel.
    """
    left, bottom, right, top = bounds
    r = resolution
    if snap:
        # a tolerance of 1e-6 px keeps exact multiples from gaining a pixel to float noise
        left = math.floor(left / r + 1e-6) * r
        top = math.ceil(top / r - 1e-6) * r
        right = math.ceil(right / r - 1e-6) * r
        bottom = math.floor(bottom / r + 1e-6) * r
    width = max(1, math.ceil((right - left) / r - 1e-6))
    height = max(1, math.ceil((top - bottom) / r - 1e-6))
    return Grid(left, top, r, height, width)


def block_starts(size: int, chunk: int) -> list[tuple[int, int]]:
    """(start, length) of the consecutive blocks of at most ``chunk`` covering ``size`` pixels."""
    if chunk < 1:
        raise ValueError(f"chunk {chunk} < 1")
    return [(s, min(chunk, size - s)) for s in range(0, size, chunk)]


def intersects(a: Bounds, b: Bounds) -> bool:
    """Whether two boxes share some area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def aligned_offset(inner: Grid, outer_transform: Affine) -> tuple[int, int] | None:
    """(row, col) of ``inner``'s corner in the grid of ``outer_transform`` if both share pixel
    size and edges (whole-pixel offset within 1e-6 px); ``None`` if a warp is needed."""
    a, b, c, d, e, f = outer_transform[:6]
    r = inner.resolution
    if (
        b != 0
        or d != 0
        or not math.isclose(a, r, rel_tol=1e-9)
        or not math.isclose(-e, r, rel_tol=1e-9)
    ):
        return None
    col = (inner.left - c) / r
    row = (f - inner.top) / r
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


def overlap(row0: int, col0: int, height: int, width: int, src_height: int, src_width: int):
    """The part of a ``height`` x ``width`` block at (row0, col0) of a source's pixel grid that lies
    inside the source (``src_height`` x ``src_width``): ``((src_row, src_col), (dst_row, dst_col),
    (h, w))``, or ``None`` when they do not overlap."""
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + height, src_height), min(col0 + width, src_width)
    if r1 <= r0 or c1 <= c0:
        return None
    return (r0, c0), (r0 - row0, c0 - col0), (r1 - r0, c1 - c0)
