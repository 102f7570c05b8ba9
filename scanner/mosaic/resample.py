"""Sample block-averaged radar values at fractional (line, pixel) positions (pure numpy).

Blocks are ``block × block`` radar pixels; block ``i`` is centred at
``scanner.safe.radiometry.block_centres`` (the last block may be partial, its centre moves
accordingly). Bilinear sampling is NaN-aware: a missing neighbour drops out and the others are
re-weighted, as long as the valid ones carry at least half of the weight — so a nodata area
(the swath edge, an empty block) neither erodes the image by a block nor is filled from afar. Positions and weights are computed
once per product and reused for HH and HV (:class:`BlockSampler`).
"""

from __future__ import annotations

import numpy as np

MIN_WEIGHT = np.float32(0.5 - 1e-6)


def block_index(pos: np.ndarray, n: int, block: int) -> np.ndarray:
    """Fractional block index of radar positions ``pos`` along an axis of ``n`` pixels."""
    starts = np.arange(0, n, block, dtype=np.float64)
    centres = (starts + np.minimum(starts + block, n) - 1.0) / 2.0
    if centres.size == 1:
        return np.zeros_like(pos, dtype=np.float64)
    # np.interp clamps beyond the first/last centre: the edge half-blocks take the edge value
    return np.interp(pos, centres, np.arange(centres.size, dtype=np.float64))


class BlockSampler:
    """Where (line, pixel) positions fall in the block grid of an image of ``shape``."""

    def __init__(
        self,
        line: np.ndarray,
        pixel: np.ndarray,
        shape: tuple[int, int],
        block: int,
        method: str = "bilinear",
    ) -> None:
        if method not in ("bilinear", "nearest"):
            raise ValueError(f"unknown resampling {method!r}")
        self.out_shape = np.shape(line)
        self.method = method
        self.ok = np.isfinite(line) & np.isfinite(pixel)
        u = block_index(np.asarray(line, dtype=np.float64)[self.ok], shape[0], block)
        v = block_index(np.asarray(pixel, dtype=np.float64)[self.ok], shape[1], block)
        self.nb = (-(-shape[0] // block), -(-shape[1] // block))
        nb_l, nb_p = self.nb
        if method == "nearest":
            self.flat: tuple[np.ndarray, ...] = (
                np.rint(u).astype(np.intp) * nb_p + np.rint(v).astype(np.intp),
            )
            return
        i0 = np.clip(np.floor(u).astype(np.intp), 0, max(nb_l - 2, 0))
        j0 = np.clip(np.floor(v).astype(np.intp), 0, max(nb_p - 2, 0))
        i1 = np.minimum(i0 + 1, nb_l - 1)
        j1 = np.minimum(j0 + 1, nb_p - 1)
        fu = (u - i0).astype(np.float32)
        fv = (v - j0).astype(np.float32)
        self.flat = (i0 * nb_p + j0, i0 * nb_p + j1, i1 * nb_p + j0, i1 * nb_p + j1)
        self.w = ((1 - fu) * (1 - fv), (1 - fu) * fv, fu * (1 - fv), fu * fv)

    def sample(self, values: np.ndarray) -> np.ndarray:
        """``values`` (the block grid) at the positions → float32, NaN where none is valid."""
        values = np.asarray(values, dtype=np.float32)
        if values.shape != self.nb:
            raise ValueError(f"block grid is {values.shape}, expected {self.nb}")
        out = np.full(self.out_shape, np.nan, dtype=np.float32)
        flat = values.ravel()
        if self.method == "nearest":
            out[self.ok] = flat[self.flat[0]]
            return out
        acc = np.zeros(self.flat[0].shape, dtype=np.float32)
        wsum = np.zeros_like(acc)
        for idx, w in zip(self.flat, self.w, strict=True):
            val = flat[idx]
            good = ~np.isnan(val)
            wg = np.where(good, w, np.float32(0))
            acc += np.where(good, val, np.float32(0)) * wg
            wsum += wg
        with np.errstate(invalid="ignore", divide="ignore"):
            out[self.ok] = np.where(wsum >= MIN_WEIGHT, acc / wsum, np.float32(np.nan))
        return out


def sample_blocks(
    values: np.ndarray,
    line: np.ndarray,
    pixel: np.ndarray,
    shape: tuple[int, int],
    block: int,
    method: str = "bilinear",
) -> np.ndarray:
    """``values`` (nb_lines, nb_samples) sampled at ``line``/``pixel`` (any shape, NaN = skip).

    ``shape`` is the radar image (lines, samples). Returns float32 with NaN where the position
    is NaN or no neighbour is valid.
    """
    return BlockSampler(line, pixel, shape, block, method).sample(values)
