"""Polar lows as objects: grouping of touching crops, Grad-CAM peak centre, centroid fallback."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from scanner.forecast.objects import find_polar_lows, group_windows, peak_centre
from tests.forecast.helpers import PIXEL, H, W, crop, mosaic, prov, transform_at, write_gradcam


@pytest.mark.parametrize(
    ("a", "b", "merged"),
    [
        ((0, 0), (0, 16), True),  # overlap by half
        ((0, 0), (0, 32), True),  # share an edge
        ((0, 0), (32, 32), True),  # share a corner
        ((0, 0), (0, 33), False),  # one pixel apart
        ((0, 0), (33, 33), False),
    ],
)
def test_group_touching_crops(a, b, merged):
    groups = group_windows([crop(*a), crop(*b)])
    assert groups == ([[0, 1]] if merged else [[0], [1]])


def test_grouping_is_transitive():
    # 0 touches 1, 1 touches 2, 0 and 2 are far apart; 3 stands alone
    ws = [crop(0, 0), crop(0, 32), crop(0, 64), crop(68, 0)]
    assert group_windows(ws) == [[0, 1, 2], [3]]


def test_peak_centre_plateau_and_mask():
    v = np.zeros((10, 10), np.float32)
    v[2:4, 6:8] = 1.0  # a 2x2 plateau: centre between its pixels
    v[9, 9] = 5.0  # higher, but masked out
    mask = np.ones_like(v, bool)
    mask[9, 9] = False
    assert peak_centre(v, mask) == (3.0, 7.0)
    assert peak_centre(np.full((3, 3), np.nan), np.ones((3, 3), bool)) is None
    assert peak_centre(np.zeros((3, 3)), np.ones((3, 3), bool)) is None


def test_polar_lows_from_windows_and_gradcam(tmp_path):
    t = transform_at()
    # group 1: three crops in a row (overlapping, touching); group 2: one crop far away;
    # a window below the threshold between them is not part of anything
    ws = [crop(0, 0), crop(0, 16), crop(0, 48), crop(40, 0), crop(66, 40)]
    probs = [0.6, 0.9, 0.7, 0.3, 0.8]
    cam = np.full((H, W), np.nan, np.float32)
    cam[0:32, 0:80] = 0.1
    cam[5, 40] = 0.85  # the peak inside group 1
    cam[66:98, 40:72] = 0.0  # group 2's map is all zero → centroid fallback
    cam[50, 10] = 1.0  # outside every detected crop: ignored
    path = write_gradcam(tmp_path / "m_gradcam.tif", cam)
    m = mosaic("m1", ws, probs, rasters={"gradcam": path})
    lows = find_polar_lows(m, prov())
    assert [lo.id for lo in lows] == ["m1-PL01", "m1-PL02"]
    first, second = lows
    assert (first.n_windows, first.window_ids) == (3, ("r0_c0", "r0_c16", "r0_c48"))
    assert first.max_probability == pytest.approx(0.9)
    assert first.mean_probability == pytest.approx((0.6 + 0.9 + 0.7) / 3)
    assert first.centre_method == "gradcam"
    x, y = t @ (40.5, 5.5)
    assert (first.x, first.y) == pytest.approx((x, y))
    lon, lat = Transformer.from_crs("EPSG:3413", "EPSG:4326", always_xy=True).transform(x, y)
    assert (first.lon, first.lat) == pytest.approx((lon, lat))
    # footprint: the union of the crops, checked against an independent box
    x0, y0 = t @ (0, 32)
    x1, y1 = t @ (80, 0)
    assert first.footprint.equals(box(x0, y0, x1, y1))
    assert first.footprint.area == pytest.approx(80 * 32 * PIXEL**2)
    assert second.centre_method == "centroid" and second.n_windows == 1
    assert (second.x, second.y) == pytest.approx(t @ (40 + 16, 66 + 16))
    assert first.time == m.scenes[0].start + (m.scenes[0].stop - m.scenes[0].start) / 2


def test_centroid_fallback_is_probability_weighted():
    ws = [crop(0, 0), crop(0, 16)]
    m = mosaic("m2", ws, [0.6, 0.9])  # no Grad-CAM raster at all
    [low] = find_polar_lows(m, prov())
    col = (16 * 0.6 + 32 * 0.9) / 1.5  # crop centres at columns 16 and 32, row 16
    assert low.centre_method == "centroid"
    assert (low.x, low.y) == pytest.approx(transform_at() @ (col, 16.0))
    corner_touch = find_polar_lows(mosaic("m3", [crop(0, 0), crop(32, 32)], [0.7, 0.7]), prov())
    assert len(corner_touch) == 1
    assert shapely.get_num_geometries(corner_touch[0].footprint) == 2  # a MultiPolygon


def test_nothing_detected():
    assert find_polar_lows(mosaic("m4", [crop(0, 0)], [0.2]), prov()) == []
