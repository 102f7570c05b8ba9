"""Look-up tables of the SAFE annotation, evaluated on any (rows, cols) grid.

Calibration and range-noise LUTs are lists of vectors: one per annotated line, each with its own
(irregular) pixel positions. Azimuth noise (IPF >= 2.9) is a list of rectangular blocks per
sub-swath, each a 1D profile over lines. Everything here is pure numpy: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VectorLut:
    """Values given at ``pixels[i]`` on line ``lines[i]``; bilinear in between, constant beyond."""

    lines: np.ndarray  # (n,) increasing
    pixels: tuple[np.ndarray, ...]  # n arrays, each increasing
    values: tuple[np.ndarray, ...]  # n arrays, same lengths as pixels

    def evaluate(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Value at every (row, col) of the grid ``rows × cols`` → float64 (len(rows), len(cols)).

        Interpolates each vector along its own pixels first (they differ between vectors), then
        linearly between the two vectors that bracket each row.
        """
        return self.along_lines(self.along_pixels(cols), rows)

    def along_pixels(self, cols: np.ndarray) -> np.ndarray:
        """Every vector interpolated at ``cols`` → (n_vectors, len(cols)); reusable per strip."""
        cols = np.asarray(cols, dtype=np.float64)
        return np.stack(
            [np.interp(cols, p, v) for p, v in zip(self.pixels, self.values, strict=True)]
        )

    def along_lines(self, per_vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Linear interpolation of ``along_pixels`` output between the vectors bracketing rows."""
        rows = np.asarray(rows, dtype=np.float64)
        if len(self.lines) == 1:
            return np.repeat(per_vector[:1], len(rows), axis=0)
        idx = np.clip(np.searchsorted(self.lines, rows, side="right") - 1, 0, len(self.lines) - 2)
        l0, l1 = self.lines[idx], self.lines[idx + 1]
        w = np.clip((rows - l0) / np.maximum(l1 - l0, 1e-9), 0.0, 1.0)[:, None]
        w = w.astype(per_vector.dtype)
        return per_vector[idx] * (1 - w) + per_vector[idx + 1] * w


@dataclass(frozen=True)
class AzimuthBlock:
    """One block of the azimuth noise LUT: a profile over lines, valid in a rectangle."""

    swath: str
    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    lines: np.ndarray
    values: np.ndarray


def azimuth_noise(
    blocks: tuple[AzimuthBlock, ...], rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Azimuth noise scaling on the grid ``rows × cols``; 1.0 where no block covers a point."""
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    out = np.ones((len(rows), len(cols)), dtype=np.float64)
    for b in blocks:
        # half-pixel margins so fractional block centres (x.5) between two blocks belong to one
        r_sel = np.flatnonzero((rows >= b.first_line - 0.5) & (rows < b.last_line + 0.5))
        c_sel = np.flatnonzero((cols >= b.first_sample - 0.5) & (cols < b.last_sample + 0.5))
        if r_sel.size == 0 or c_sel.size == 0:
            continue
        profile = np.interp(rows[r_sel], b.lines, b.values)
        out[np.ix_(r_sel, c_sel)] = profile[:, None]
    return out
