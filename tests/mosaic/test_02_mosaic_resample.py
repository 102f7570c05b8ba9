"""Sampling block-averaged values at radar positions: exact values, partial blocks, NaN."""

from __future__ import annotations

import numpy as np
import pytest

from scanner.mosaic.resample import block_index, sample_blocks


@pytest.mark.parametrize(
    ("n", "block", "pos", "expected"),
    [
        (12, 4, [1.5, 5.5, 9.5], [0.0, 1.0, 2.0]),  # block centres → whole indices
        (12, 4, [3.5, 7.5], [0.5, 1.5]),  # halfway between centres
        (12, 4, [-0.5, 0.0, 11.5], [0.0, 0.0, 2.0]),  # edge half-blocks clamp
        (10, 4, [9.0, 7.5], [2.0, 1 + 2 / 3]),  # partial last block (8..9, centre 8.5)
        (10, 1, [3.0, 3.25], [3.0, 3.25]),  # block 1 = pixels
        (3, 5, [0.0, 2.0], [0.0, 0.0]),  # one block only
    ],
)
def test_block_index_table(n, block, pos, expected):
    assert block_index(np.array(pos), n, block) == pytest.approx(expected)


def test_bilinear_reproduces_a_linear_field_exactly():
    # values encode their block position: v = 10*i + j
    vals = np.add.outer(10.0 * np.arange(5), np.arange(6)).astype(np.float32)
    line = np.array([1.5, 3.5, 5.5, 7.5, 3.0])
    pixel = np.array([1.5, 1.5, 5.5, 9.5, 4.0])
    out = sample_blocks(vals, line, pixel, (20, 24), 4, "bilinear")
    u = (line - 1.5) / 4
    v = (pixel - 1.5) / 4
    assert out == pytest.approx(10 * u + v, abs=1e-5)


def test_nearest_picks_the_containing_block():
    vals = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = sample_blocks(
        vals, np.array([0.0, 4.4, 11.0]), np.array([0.0, 7.9, 15.0]), (12, 16), 4, "nearest"
    )
    assert out.tolist() == [0.0, 6.0, 11.0]


def test_nan_positions_and_nan_blocks():
    vals = np.array([[1.0, np.nan], [3.0, 4.0]], dtype=np.float32)
    line = np.array([[np.nan, 0.5], [0.5, 1.0]])
    pixel = np.array([[0.0, 1.5], [1.0, 1.0]])
    out = sample_blocks(vals, line, pixel, (2, 2), 1, "bilinear")
    assert out.shape == (2, 2)
    assert np.isnan(out[0, 0])  # no position → nodata
    # (0.5, 1.5): neighbours (0,1)=NaN, (1,1)=4 → only the valid one counts
    assert out[0, 1] == pytest.approx(4.0)
    # (0.5, 1.0): (0,1) NaN drops out, (1,1)=4 valid
    assert out[1, 0] == pytest.approx(4.0)
    assert out[1, 1] == pytest.approx(4.0)
    # on a NaN block centre, bilinear has only that neighbour: stays NaN
    assert np.isnan(sample_blocks(vals, np.array([0.0]), np.array([1.0]), (2, 2), 1)[0])


def test_unknown_method():
    with pytest.raises(ValueError):
        sample_blocks(np.zeros((2, 2)), np.zeros(1), np.zeros(1), (2, 2), 1, "cubic")


def test_nodata_neither_grows_nor_shrinks():
    """Half-way between a valid and an empty block is the edge: nearer the valid one → value."""
    vals = np.array([[2.0, np.nan]], dtype=np.float32)  # 1 x 2 blocks of 4 px: centres 1.5, 5.5
    pixel = np.array([1.5, 3.0, 3.4, 3.6, 4.0, 5.5])
    out = sample_blocks(vals, np.zeros(6), pixel, (4, 8), 4)
    assert out[:3] == pytest.approx([2.0, 2.0, 2.0])
    assert np.isnan(out[3:]).all()
