"""Where each pixel of a COG's RMS overview comes from, in full-resolution pixels, and the
radiometry block grids built on it (pure numpy/scipy; no IO).

**GDAL's rule** (measured on GDAL 3.10's COG driver, ``OVERVIEW_RESAMPLING=RMS``, nodata 0;
pinned pixel by pixel in ``tests/s3/test_s3_02_footprints.py``):

- level sizes: each level is the previous one halved, rounded down (1001 → 500 → 250 → 125 …);
- level 1 (1/2) is computed from full resolution, level k from level k−1 (cascading);
- each target pixel ``i`` of a level of ``n_dst`` pixels made from ``n_src`` covers the source
  interval ``[i·r, (i+1)·r)``, ``r = n_src / n_dst`` (not an integer: 1001/500 = 2.002), and a
  source pixel counts with the length of its overlap with that interval (area weighting; rows and
  columns separable);
- nodata (0) pixels drop out and the others are re-weighted; the result is sqrt of the weighted
  mean of squares, rounded to the nearest integer.

So an overview pixel of the 1/4 level is a weighted mean of DN² over a footprint ~4.01 pixels
wide whose edges are spread over ~2 pixels, and its footprints drift away from a uniform
``block``-pixel grid (3 pixels over a 10487-line scene at 1/4). A block mean of DN² from the
overview equals a full-resolution one only when both sum the same weights: :func:`cog_grid`
defines blocks as groups of whole overview pixels and gives each block's weights over the
full-resolution pixels (the composition of the levels' weights above), for both paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse


def level_weights(n_src: int, n_dst: int) -> sparse.csr_matrix:
    """(n_dst, n_src) weights of one overview level made from ``n_src`` pixels: the overlap of
    target pixel ``i``'s interval ``[i·r, (i+1)·r)`` with each source pixel, rows summing to 1."""
    if not 0 < n_dst <= n_src:
        raise ValueError(f"an overview of {n_src} pixels cannot have {n_dst}")
    r = n_src / n_dst
    lo = np.arange(n_dst) * r
    hi = lo + r
    first = np.floor(lo).astype(np.int64)
    last = np.minimum(np.ceil(hi).astype(np.int64), n_src)  # exclusive
    width = int((last - first).max())
    src = first[:, None] + np.arange(width)[None, :]
    w = np.minimum(hi[:, None], src + 1.0) - np.maximum(lo[:, None], src.astype(np.float64))
    w = np.where(src < last[:, None], np.clip(w, 0.0, None), 0.0)
    w /= w.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(n_dst), width)
    m = sparse.csr_matrix((w.ravel(), (rows, np.minimum(src, n_src - 1).ravel())),
                          shape=(n_dst, n_src))  # fmt: skip
    m.eliminate_zeros()
    return m


def overview_weights(n: int, sizes: Sequence[int]) -> sparse.csr_matrix:
    """(sizes[-1], n) weights of the last level's pixels over the full-resolution pixels, the
    levels (``sizes``: 1/2, 1/4, … along one axis) each made from the one before."""
    m = sparse.identity(n, format="csr")
    prev = n
    for size in sizes:
        m = level_weights(prev, size) @ m
        prev = size
    return sparse.csr_matrix(m)


def halved_sizes(n: int, levels: int) -> list[int]:
    """Sizes of ``levels`` overview levels of ``n`` pixels under GDAL's rule (halved, floor)."""
    out = []
    for _ in range(levels):
        n = max(1, n // 2)
        out.append(n)
    return out


def uniform_centres(n: int, block: int) -> np.ndarray:
    """Centre (in pixel index units) of each ``block``-pixel block; the last may be partial."""
    starts = np.arange(0, n, block, dtype=np.float64)
    stops = np.minimum(starts + block, n)
    return (starts + stops - 1.0) / 2.0


@dataclass(frozen=True, eq=False)
class Axis:
    """The blocks along one axis of ``n`` full-resolution pixels: uniform ``block``-pixel
    blocks (``weights`` None), or groups of ``per`` overview pixels of ``factor`` (``weights``:
    each block's weights over the full-resolution pixels)."""

    n: int
    block: int
    centres: np.ndarray  # of each block, in full-resolution pixel index units
    weights: Any = None  # scipy.sparse (blocks, n) or None for uniform blocks
    n_overview: int = 0  # overview pixels along the axis (0: uniform)
    per: int = 0  # overview pixels per block

    @property
    def count(self) -> int:
        return len(self.centres)

    @property
    def starts(self) -> np.ndarray:
        """First overview pixel of each block (COG blocks only)."""
        return np.arange(0, self.n_overview, self.per)

    @classmethod
    def uniform(cls, n: int, block: int) -> Axis:
        return cls(n, block, uniform_centres(n, block))

    @classmethod
    def of_overview(cls, n: int, block: int, sizes: Sequence[int], factor: int) -> Axis:
        """Blocks of ``block // factor`` pixels of the last level of ``sizes``."""
        per = block // factor
        n_ov = sizes[-1]
        ov = overview_weights(n, sizes)
        starts = np.arange(0, n_ov, per)
        group = sparse.csr_matrix(
            (np.ones(n_ov), (np.arange(n_ov) // per, np.arange(n_ov))), shape=(len(starts), n_ov)
        )
        w = sparse.csr_matrix(group @ ov)
        mass = np.asarray(w.sum(axis=1)).ravel()
        centres = np.asarray(w @ np.arange(n, dtype=np.float64)).ravel() / mass
        return cls(n, block, centres, w, n_ov, per)


@dataclass(frozen=True, eq=False)
class BlockGrid:
    """The radiometry blocks of one measurement: uniform, or whole overview pixels (COG)."""

    rows: Axis
    cols: Axis
    factor: int | None = None  # the overview decimation the blocks are made of (COG grid)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.count, self.cols.count)

    @property
    def uniform(self) -> bool:
        return self.rows.weights is None

    def sampler_positions(
        self, line: np.ndarray, pixel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """(line, pixel, shape) to give a uniform-block sampler of ``block`` so that it finds
        the same fractional block indices in a uniform grid of this grid's shape as ``line``,
        ``pixel`` have in this grid (identity for a uniform grid)."""
        if self.uniform:
            return line, pixel, (self.rows.n, self.cols.n)
        b = self.rows.block
        out = []
        for pos, ax in ((line, self.rows), (pixel, self.cols)):
            if ax.count == 1:
                out.append(np.where(np.isfinite(pos), 0.0, np.nan))
                continue
            target = uniform_centres(ax.count * b, b)
            out.append(np.interp(np.asarray(pos, dtype=np.float64), ax.centres, target))
        return out[0], out[1], (self.rows.count * b, self.cols.count * b)


def uniform_grid(shape: tuple[int, int], block: int) -> BlockGrid:
    return BlockGrid(Axis.uniform(shape[0], block), Axis.uniform(shape[1], block))


def cog_grid(
    shape: tuple[int, int],
    block: int,
    factor: int,
    level_shapes: Sequence[tuple[int, int]] | None = None,
) -> BlockGrid:
    """Blocks of ``block / factor`` overview pixels of the 1/``factor`` level; ``level_shapes``
    the (lines, samples) of the levels 1/2 … 1/factor as in the file (default: GDAL's rule)."""
    if factor < 2 or factor & (factor - 1) or block % factor:
        raise ValueError(f"a {block}-pixel block is not made of 1/{factor} overview pixels")
    levels = factor.bit_length() - 1
    if level_shapes is None:
        level_shapes = list(zip(halved_sizes(shape[0], levels), halved_sizes(shape[1], levels),
                                strict=True))  # fmt: skip
    if len(level_shapes) != levels:
        raise ValueError(f"1/{factor} needs {levels} levels, got {len(level_shapes)}")
    rows = Axis.of_overview(shape[0], block, [s[0] for s in level_shapes], factor)
    cols = Axis.of_overview(shape[1], block, [s[1] for s in level_shapes], factor)
    return BlockGrid(rows, cols, factor)
