"""Geocoding accuracy on the REAL sample's geolocation grid (Kara Sea, Severnaya Zemlya terrain).

Required by the issue: at every geolocation grid point, the output places it within one output
pixel of its annotated lat/lon. We solve, from the inverse map arrays that drive resampling,
where in the output grid the radar position (line, pixel) of each grid point lands, and compare
with its annotated lat/lon projected with pyproj.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scanner.mosaic.geocode import make_geocoder
from scanner.mosaic.grid import snap_grid

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "scanner/demo/sample/S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15.SAFE"
)


@pytest.fixture(scope="module")
def sample():
    from scanner.safe import open_product

    with open_product(SAMPLE, require_measurement=False) as p:
        return p.geolocation_grid(), p.shape


def _setup(sample, crs: str, res: float):
    grid_pts, shape = sample
    gc = make_geocoder(grid_pts.line, grid_pts.pixel, grid_pts.lat, grid_pts.lon, shape, crs)
    grid = snap_grid(gc.bounds(), res, crs)
    return grid_pts, shape, gc, grid


def _landing_error(grid_pts, gc, grid):
    """Per grid point: distance (output px) between where the inverse map puts its (line,
    pixel) and where its annotated lat/lon projects."""
    from pyproj import Transformer

    line, pixel = gc.inverse_map(grid, mask=False)
    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(
        grid_pts.lon, grid_pts.lat
    )
    r_true, c_true = grid.rowcol(x, y)
    ll, pp = np.meshgrid(grid_pts.line, grid_pts.pixel, indexing="ij")
    err = np.empty(ll.shape)
    for idx in np.ndindex(ll.shape):
        i = min(max(int(r_true[idx]), 1), grid.height - 2)
        j = min(max(int(c_true[idx]), 1), grid.width - 2)
        # local linear model of the inverse map around pixel (i, j), solved for the point
        jac = np.array(
            [
                [(line[i + 1, j] - line[i - 1, j]) / 2, (line[i, j + 1] - line[i, j - 1]) / 2],
                [(pixel[i + 1, j] - pixel[i - 1, j]) / 2, (pixel[i, j + 1] - pixel[i, j - 1]) / 2],
            ],
            dtype=np.float64,
        )
        d = np.linalg.solve(jac, [ll[idx] - line[i, j], pp[idx] - pixel[i, j]])
        err[idx] = np.hypot(i + 0.5 + d[0] - r_true[idx], j + 0.5 + d[1] - c_true[idx])
    return err


def test_every_grid_point_lands_within_one_output_pixel(sample):
    grid_pts, shape, gc, grid = _setup(sample, "EPSG:3413", 500.0)
    assert grid_pts.lat.shape == (23, 21)  # all 483 annotated points are checked
    err = _landing_error(grid_pts, gc, grid)
    assert err.max() < 1.0
    # in practice it is metres, also over the terrain of Severnaya Zemlya
    assert err.max() < 0.05


def test_accuracy_other_crs_and_resolution(sample):
    grid_pts, _, gc, grid = _setup(sample, "EPSG:32645", 1000.0)  # UTM 45N, 1 km
    assert _landing_error(grid_pts, gc, grid).max() < 0.05


def test_interior_grid_points_fall_in_valid_output_pixels(sample):
    from pyproj import Transformer

    grid_pts, shape, gc, grid = _setup(sample, "EPSG:3413", 500.0)
    line, pixel = gc.inverse_map(grid)
    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(
        grid_pts.lon, grid_pts.lat
    )
    r, c = grid.rowcol(x, y)
    ll, pp = np.meshgrid(grid_pts.line, grid_pts.pixel, indexing="ij")
    inner = (ll > 0) & (ll < shape[0] - 1) & (pp > 0) & (pp < shape[1] - 1)
    ri, ci = r.astype(int)[inner], c.astype(int)[inner]
    assert np.isfinite(line[ri, ci]).all() and np.isfinite(pixel[ri, ci]).all()
    # nodata outside the swath: the grid corners of a rotated swath are empty
    assert np.isnan(line[0, 0]) and np.isnan(line[-1, -1])
    valid = np.isfinite(line)
    assert 0.4 < valid.mean() < 0.9
    assert np.nanmin(line) >= -0.5 and np.nanmax(line) <= shape[0] - 0.5
    assert np.nanmin(pixel) >= -0.5 and np.nanmax(pixel) <= shape[1] - 0.5


def test_interpolated_inverse_matches_exact_newton(sample):
    """The lattice + bilinear shortcut against Newton at every sampled pixel (metres)."""
    _, _, gc, grid = _setup(sample, "EPSG:3413", 500.0)
    line, pixel = gc.inverse_map(grid)
    rng = np.random.default_rng(0)
    i = rng.integers(0, grid.height, 4000)
    j = rng.integers(0, grid.width, 4000)
    ok = np.isfinite(line[i, j])
    xs, ys = grid.centres()
    fx, fy = gc.xy(line[i, j][ok], pixel[i, j][ok])
    assert np.hypot(fx - xs[j][ok], fy - ys[i][ok]).max() < 25.0  # ≪ 500 m


def test_forward_reproduces_every_node_and_bounds_contain_them(sample):
    grid_pts, shape, gc, grid = _setup(sample, "EPSG:3413", 500.0)
    ll, pp = np.meshgrid(grid_pts.line, grid_pts.pixel, indexing="ij")
    x, y = gc.xy(ll, pp)
    assert np.allclose(x, gc.node_x, atol=1e-3) and np.allclose(y, gc.node_y, atol=1e-3)
    left, bottom, right, top = gc.bounds()
    assert left <= x.min() and right >= x.max() and bottom <= y.min() and top >= y.max()
    assert gc.pixel_spacing() == pytest.approx(40.0, rel=0.05)


def test_bad_geolocation_grid_is_rejected():
    with pytest.raises(ValueError, match="increase"):
        make_geocoder([0, 0], [0, 1], np.zeros((2, 2)) + 80, np.zeros((2, 2)), (2, 2))
    with pytest.raises(ValueError, match="missing"):
        make_geocoder([0, 1], [0, 1], np.array([[80, np.nan], [80, 80]]), np.zeros((2, 2)), (2, 2))
