"""Lowest layer: LUT interpolation and block arithmetic, exact values on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from scanner.safe.lut import AzimuthBlock, VectorLut, azimuth_noise
from scanner.safe.radiometry import SIGMA0_FLOOR, BlockAccumulator, block_centres, calibrate


def test_vector_lut_bilinear_with_irregular_pixels():
    # two vectors with different pixel positions: each interpolated along its own pixels first
    lut = VectorLut(
        lines=np.array([0.0, 10.0]),
        pixels=(np.array([0.0, 10.0]), np.array([0.0, 5.0, 10.0])),
        values=(np.array([0.0, 10.0]), np.array([100.0, 100.0, 200.0])),
    )
    out = lut.evaluate(np.array([0.0, 5.0, 10.0, 20.0]), np.array([0.0, 5.0, 10.0, 12.0]))
    np.testing.assert_allclose(out[0], [0.0, 5.0, 10.0, 10.0])  # constant beyond the last pixel
    np.testing.assert_allclose(out[2], [100.0, 100.0, 200.0, 200.0])
    np.testing.assert_allclose(out[1], [50.0, 52.5, 105.0, 105.0])  # halfway between lines
    np.testing.assert_allclose(out[3], out[2])  # constant beyond the last line


def test_azimuth_blocks_cover_half_pixel_centres():
    blocks = (
        AzimuthBlock("EW1", 0, 9, 0, 4, np.array([0.0, 9.0]), np.array([1.0, 2.0])),
        AzimuthBlock("EW2", 0, 9, 5, 9, np.array([0.0, 9.0]), np.array([3.0, 3.0])),
    )
    out = azimuth_noise(blocks, np.array([0.0, 4.5, 9.0, 20.0]), np.array([4.0, 4.5, 5.0, 50.0]))
    np.testing.assert_allclose(out[:, 0], [1.0, 1.5, 2.0, 1.0])  # row 20: no block → 1
    np.testing.assert_allclose(out[:3, 1], [3.0, 3.0, 3.0])  # col 4.5 belongs to the next block
    assert (out[:, 3] == 1.0).all()


@pytest.mark.parametrize(
    ("n", "block", "expected"),
    [
        (24, 12, [5.5, 17.5]),  # exact multiple
        (25, 12, [5.5, 17.5, 24.0]),  # one-pixel last block
        (5, 12, [2.0]),  # block larger than the extent
        (3, 1, [0.0, 1.0, 2.0]),  # block 1 = full resolution
    ],
)
def test_block_centres(n, block, expected):
    np.testing.assert_allclose(block_centres(n, block), expected)


@pytest.mark.parametrize(("h", "w", "b"), [(24, 30, 12), (25, 31, 12), (5, 7, 3), (13, 1, 4)])
def test_block_accumulator_matches_brute_force(h, w, b):
    rng = np.random.default_rng(h * w)
    dn = (rng.integers(0, 3, (h, w)) * rng.integers(1, 65535, (h, w))).astype(np.uint16)
    acc = BlockAccumulator(w, b, -(-h // b) * b)
    sums, counts = acc.add(dn)
    hb, wb = -(-h // b), -(-w // b)
    sq = np.zeros((hb * b, wb * b))
    ok = np.zeros((hb * b, wb * b))
    sq[:h, :w] = dn.astype(np.float64) ** 2
    ok[:h, :w] = dn != 0
    np.testing.assert_allclose(sums, sq.reshape(hb, b, wb, b).sum(axis=(1, 3)), rtol=1e-6)
    np.testing.assert_array_equal(counts, ok.reshape(hb, b, wb, b).sum(axis=(1, 3)))


def test_calibrate_clips_negatives_and_keeps_nan():
    out = calibrate(
        np.array([400.0, 100.0, np.nan]), np.array([10.0, 10.0, 10.0]), np.array([0.0, 200.0, 0.0])
    )
    assert out.dtype == np.float32
    assert out[0] == pytest.approx(4.0)
    assert out[1] == SIGMA0_FLOOR  # 100 − 200 < 0 → floor, not NaN
    assert np.isnan(out[2])
