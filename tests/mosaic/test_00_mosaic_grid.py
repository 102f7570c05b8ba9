"""Output grid arithmetic: snapping to the resolution, windows, pixel centres (exact values)."""

from __future__ import annotations

import pytest

from scanner.mosaic.grid import OutputGrid, snap_grid, union_bounds


@pytest.mark.parametrize(
    ("bounds", "res", "x0", "y0", "w", "h"),
    [
        # already on multiples: unchanged, no extra pixel
        ((0.0, 0.0, 1000.0, 500.0), 500.0, 0.0, 500.0, 2, 1),
        # not multiples: grown outward to the next multiple on every side
        ((10.0, -10.0, 990.0, 510.0), 500.0, 0.0, 1000.0, 2, 3),
        # negative coordinates (EPSG:3413 is mostly negative)
        ((-1249.0, -751.0, -1.0, -1.0), 500.0, -1500.0, 0.0, 3, 2),
        # float noise just past a multiple is absorbed
        ((-1e-9, 0.0, 500.0 + 1e-9, 500.0), 500.0, 0.0, 500.0, 1, 1),
        # extent smaller than one pixel
        ((100.0, 100.0, 200.0, 200.0), 500.0, 0.0, 500.0, 1, 1),
        # other resolution
        ((0.0, 0.0, 2500.0, 1999.0), 1000.0, 0.0, 2000.0, 3, 2),
    ],
)
def test_snap_grid_table(bounds, res, x0, y0, w, h):
    g = snap_grid(bounds, res, "EPSG:3413")
    assert (g.x0, g.y0, g.width, g.height) == (x0, y0, w, h)
    left, bottom, right, top = g.bounds
    assert left <= bounds[0] + 1e-6 and right >= bounds[2] - 1e-6
    assert bottom <= bounds[1] + 1e-6 and top >= bounds[3] - 1e-6
    # every edge is a multiple of the resolution: grids of different nights align
    for v in g.bounds:
        assert v / res == pytest.approx(round(v / res), abs=1e-9)


def test_snap_grid_rejects_empty():
    with pytest.raises(ValueError):
        snap_grid((0.0, 0.0, 0.0, 10.0), 500.0, "EPSG:3413")


def test_transform_centres_rowcol_roundtrip():
    g = OutputGrid("EPSG:3413", 500.0, -1000.0, 2000.0, 4, 3)
    assert tuple(g.transform)[:6] == (500.0, 0.0, -1000.0, 0.0, -500.0, 2000.0)
    xs, ys = g.centres()
    assert list(xs) == [-750.0, -250.0, 250.0, 750.0]
    assert list(ys) == [1750.0, 1250.0, 750.0]
    r, c = g.rowcol(xs[2], ys[1])
    assert (float(r), float(c)) == (1.5, 2.5)


@pytest.mark.parametrize(
    ("bounds", "rows", "cols"),
    [
        ((-1000.0, 500.0, 1000.0, 2000.0), (0, 3), (0, 4)),  # whole grid
        ((-500.0, 1000.0, 0.0, 1500.0), (1, 2), (1, 2)),  # one pixel, exact edges
        ((-600.0, 900.0, 10.0, 1600.0), (0, 3), (0, 3)),  # partial pixels included
        ((-5000.0, -5000.0, 5000.0, 5000.0), (0, 3), (0, 4)),  # clipped to the grid
        ((5000.0, 0.0, 6000.0, 100.0), (3, 3), (4, 4)),  # outside → empty
    ],
)
def test_window_of_table(bounds, rows, cols):
    g = OutputGrid("EPSG:3413", 500.0, -1000.0, 2000.0, 4, 3)
    r, c = g.window_of(bounds)
    assert (r.start, r.stop) == rows
    assert (c.start, c.stop) == cols


def test_union_bounds():
    assert union_bounds([(0, 0, 1, 1), (-1, 0.5, 0.5, 3)]) == (-1, 0, 1, 3)


def test_shipped_config_is_the_default(repo_root):
    from polarscan.common.config import load_config
    from scanner.mosaic.config import MosaicConfig

    assert load_config(MosaicConfig, repo_root / "configs" / "mosaic.yaml") == MosaicConfig()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"crs": "EPSG:4326"}, "not projected"),
        ({"crs": "EPSG:999999"}, "unknown CRS"),
        ({"resolution_m": 0}, "resolution_m"),
        ({"resampling": "cubic"}, "resampling"),
        ({"block": 0}, "block"),
        ({"rgb": {"windows": {"IW": {"co_db": [0, -30]}}}}, "co_db"),
        ({"rgb": {"hh_db": [0, -30]}}, "co_db"),  # the old key, read as the new one
        ({"rgb": {"red": "vv"}}, "red"),
        ({"rgb": {"windows": {"SM": {}}}}, "unknown key 'rgb.windows.SM'"),
        ({"rgb": {"hh_db": [-30, 0], "windows": {}}}, "only windows"),
        ({"colour": "red"}, "unknown key 'colour'"),
    ],
)
def test_bad_config_values(data, needle):
    from polarscan.common.config import parse_config
    from polarscan.common.errors import UsageError
    from scanner.mosaic.config import MosaicConfig

    with pytest.raises(UsageError, match=needle):
        parse_config(MosaicConfig, data)
