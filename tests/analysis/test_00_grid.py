"""The cube's grid arithmetic, exact values (pure functions)."""

from __future__ import annotations

import pytest
from affine import Affine

from polarscan.common.errors import UsageError
from scanner.analysis.grid import (
    Grid,
    aligned_offset,
    block_starts,
    check_bounds,
    check_resolution,
    intersects,
    overlap,
    snap_grid,
    union_bounds,
)


@pytest.mark.parametrize(
    ("size", "chunk", "expected"),
    [
        (10, 4, [(0, 4), (4, 4), (8, 2)]),  # not a multiple
        (8, 4, [(0, 4), (4, 4)]),  # a multiple
        (3, 4, [(0, 3)]),  # chunk larger than the size
        (1, 1, [(0, 1)]),
    ],
)
def test_block_starts(size, chunk, expected):
    assert block_starts(size, chunk) == expected


def test_snap_grid_outward_and_exact():
    g = snap_grid((1000.0, 3000.0, 9000.0, 10_500.0), 2000.0, snap=True)
    assert (g.left, g.top, g.width, g.height) == (0.0, 12_000.0, 5, 5)
    assert g.bounds == (0.0, 2000.0, 10_000.0, 12_000.0)
    # exact multiples gain nothing
    g = snap_grid((0.0, 0.0, 8000.0, 4000.0), 2000.0, snap=True)
    assert (g.width, g.height) == (4, 2)
    # not snapped: starts at left/top, the last pixel may reach past right/bottom
    g = snap_grid((1000.0, 0.0, 8000.0, 4000.0), 3000.0, snap=False)
    assert (g.left, g.top, g.width, g.height) == (1000.0, 4000.0, 3, 2)


def test_grid_centres_and_blocks():
    g = Grid(0.0, 10.0, 2.0, 3, 2)
    assert g.xs() == [1.0, 3.0]
    assert g.ys() == [9.0, 7.0, 5.0]
    assert g.transform == Affine(2.0, 0, 0.0, 0, -2.0, 10.0)
    b = g.block(1, 1, 2, 1)
    assert (b.left, b.top, b.height, b.width) == (2.0, 8.0, 2, 1)


def test_aligned_offset():
    src = Affine(2000.0, 0, 4000.0, 0, -2000.0, 100_000.0)
    assert aligned_offset(Grid(0.0, 102_000.0, 2000.0, 4, 4), src) == (-1, -2)
    assert aligned_offset(Grid(8000.0, 90_000.0, 2000.0, 4, 4), src) == (5, 2)
    assert aligned_offset(Grid(1000.0, 90_000.0, 2000.0, 4, 4), src) is None  # half a pixel
    assert aligned_offset(Grid(8000.0, 90_000.0, 4000.0, 4, 4), src) is None  # other spacing


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((-1, -2, 4, 4, 10, 10), ((0, 0), (1, 2), (3, 2))),  # block hangs over the corner
        ((2, 3, 4, 4, 10, 10), ((2, 3), (0, 0), (4, 4))),  # inside
        ((8, 8, 4, 4, 10, 10), ((8, 8), (0, 0), (2, 2))),  # past the far edge
        ((10, 0, 4, 4, 10, 10), None),  # touching only
        ((-4, 0, 4, 4, 10, 10), None),
    ],
)
def test_overlap(args, expected):
    assert overlap(*args) == expected


def test_union_and_intersects():
    assert union_bounds([(0, 0, 1, 1), (-1, 0.5, 0.5, 3)]) == (-1, 0, 1, 3)
    assert intersects((0, 0, 2, 2), (1, 1, 3, 3))
    assert not intersects((0, 0, 2, 2), (2, 0, 3, 2))  # shared edge only


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), "2000"])
def test_bad_resolution(bad):
    with pytest.raises(UsageError, match="resolution"):
        check_resolution(bad)


@pytest.mark.parametrize("bad", [(0, 0, 0, 1), (0, 1, 1, 0), (0, 0, 1), ("a", 0, 1, 1), None])
def test_bad_bounds(bad):
    with pytest.raises(UsageError, match="bounds"):
        check_bounds(bad)
