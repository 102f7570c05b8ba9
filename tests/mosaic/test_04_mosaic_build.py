"""build_mosaic on synthetic products (real sample metadata, 1/16 scale): the COG, its grid,
tags and pixels, a polar low where it was put, and seamless multi-slice strips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polarscan.common.errors import UsageError
from polarscan.common.rgb import RGBRecipe
from scanner.mosaic import MosaicConfig, build_mosaic, channel_means
from tests.support.mosaic_products import other_datatake
from tests.support.products import copy_product, make_datatake, make_product

FAST = MosaicConfig(resolution_m=2000.0)  # ~300 x 400 px per slice: fast
VORTEX = (79.0, 92.0, 150.0)  # lat, lon, radius km: inside the first slice


def read(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(), ds.profile, ds.tags(), ds.descriptions, ds.colorinterp


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "m.tif"
    return build_mosaic([make_product(vortex=VORTEX)], out, FAST)


@pytest.fixture(scope="module")
def strip(tmp_path_factory):
    paths = make_datatake(slices=2)
    d = tmp_path_factory.mktemp("strip")
    both = build_mosaic(paths, d / "both.tif", FAST)
    first = build_mosaic(paths[:1], d / "first.tif", FAST)
    second = build_mosaic(paths[1:], d / "second.tif", FAST)
    return both, first, second


def test_cog_grid_bands_and_tags(single):
    data, prof, tags, desc, ci = read(single.path)
    assert single.path.exists() and not list(single.path.parent.glob(".*tmp"))
    assert prof["count"] == 3 and prof["dtype"] == "uint8" and prof["nodata"] == 0
    assert prof["crs"].to_epsg() == 3413 and prof["tiled"]
    t = prof["transform"]
    assert (t.a, t.e) == (2000.0, -2000.0)
    assert t.c % 2000.0 == 0 and t.f % 2000.0 == 0  # snapped: nights align
    assert data.shape[1:] == single.shape
    assert desc == ("HV dB", "HV dB", "HH dB")
    assert [c.name for c in ci] == ["red", "green", "blue"]
    assert tags["products"] == single.products[0]
    assert tags["products"].startswith("S1A_EW_GRDM_1SDH_20221130T014342")
    assert tags["start"] == single.start.isoformat() and tags["stop"] == single.stop.isoformat()
    assert RGBRecipe(**json.loads(tags["rgb_recipe"])) == FAST.rgb
    assert tags["crs"] == "EPSG:3413" and tags["resolution_m"] == "2000"
    assert tags["resampling"] == "bilinear" and tags["block_px"] == "3"
    assert (tags["mode"], tags["polarisations"]) == ("EW", "HH+HV")
    assert (single.mode, single.polarisations) == ("EW", ("HH", "HV"))
    assert tags["software"].startswith("polarscan")
    assert (tags["mission"], tags["abs_orbit"], tags["datatake_id"]) == ("S1A", "46117", "058549")


def test_pixels_follow_the_recipe(single):
    data, *_ = read(single.path)
    r, g, b = data
    assert np.array_equal(r, g)  # R = G = HV
    valid = (data != 0).any(axis=0)
    assert (data[:, valid] >= 1).all()  # valid pixels never collide with nodata
    assert (data[:, ~valid] == 0).all()
    assert 0.3 < valid.mean() < 0.9  # a rotated swath: nodata corners
    assert not valid[0, 0] and not valid[-1, -1]
    # sea is bluer than HV (HH is ~7 dB above HV over open water)
    assert b[valid].mean() > r[valid].mean() + 20


def test_footprint_and_result(single):
    from shapely.geometry import Point

    from scanner.safe import open_product

    with open_product(make_product(vortex=VORTEX)) as p:
        g = p.geolocation_grid()
        centre = Point(float(g.lon[11, 10]), float(g.lat[11, 10]))
        assert single.footprint.contains(centre)
        assert single.footprint.area == pytest.approx(p.footprint.area, rel=0.05)
    assert single.crs == "EPSG:3413"


def test_polar_low_lands_where_it_was_put(single):
    """The synthetic vortex's calm centre is the darkest spot around its lat/lon (±15 km)."""
    from pyproj import Transformer
    from scipy.ndimage import uniform_filter

    data, *_ = read(single.path)
    valid = (data != 0).any(axis=0)
    bright = data.astype(np.float64).mean(axis=0)
    k = 9  # 18 km box
    num = uniform_filter(np.where(valid, bright, 0.0), k)
    den = uniform_filter(valid.astype(np.float64), k)
    smooth = np.where(den > 0.9, num / np.maximum(den, 1e-9), np.nan)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3413", always_xy=True).transform(
        VORTEX[1], VORTEX[0]
    )
    col, row = ~single.transform @ (x, y)
    r0, c0 = int(row), int(col)
    near = smooth[r0 - 8 : r0 + 9, c0 - 8 : c0 + 9]  # ±16 km
    ring = [smooth[r0 + dr, c0 + dc] for dr, dc in [(-40, 0), (40, 0), (0, -40), (0, 40)]]
    assert np.nanmin(near) < np.nanmin(ring) - 5
    rr, cc = np.unravel_index(np.nanargmin(smooth[r0 - 30 : r0 + 31, c0 - 30 : c0 + 31]), (61, 61))
    assert abs(rr - 30) <= 8 and abs(cc - 30) <= 8  # the darkest spot within 60 km: ≤ 16 km off


def test_two_slices_join_seamlessly(strip):
    from scipy.ndimage import binary_fill_holes, label

    both, first, second = strip
    assert both.products == first.products + second.products
    assert both.start == first.start and both.stop == second.stop
    d_both, _, tags, *_ = read(both.path)
    assert tags["products"] == ",".join(both.products)
    valid = (d_both != 0).any(axis=0)
    # one piece, no hole along the seam
    assert label(valid)[1] == 1
    assert np.array_equal(binary_fill_holes(valid), valid)
    # union extent, and each slice's pixels are where its own mosaic puts them
    for part in (first, second):
        d_part, *_ = read(part.path)
        col, row = ~both.transform @ (part.transform.c, part.transform.f)
        r0, c0 = round(row), round(col)
        h, w = part.shape
        assert r0 >= 0 and c0 >= 0 and r0 + h <= both.shape[0] and c0 + w <= both.shape[1]
        sub = d_both[:, r0 : r0 + h, c0 : c0 + w]
        v_part = (d_part != 0).any(axis=0)
        assert (sub != 0).any(axis=0)[v_part].all()
        same = (sub == d_part).all(axis=0)[v_part]
        assert same.mean() > 0.97  # differs only at the seam, where the first slice wins
    v1 = _on(both, first)
    v2 = _on(both, second)
    assert np.array_equal(valid, v1 | v2)
    assert both.footprint.geom_type == "Polygon"


def _on(big, part):
    """``part``'s valid mask placed on ``big``'s grid."""
    d_part, *_ = read(part.path)
    out = np.zeros(big.shape, dtype=bool)
    col, row = ~big.transform @ (part.transform.c, part.transform.f)
    r0, c0 = round(row), round(col)
    h, w = part.shape
    out[r0 : r0 + h, c0 : c0 + w] = (d_part != 0).any(axis=0)
    return out


def test_zip_input_gives_the_same_mosaic(tmp_path, single):
    z = make_product(vortex=VORTEX, zip=True)
    assert z.suffix == ".zip"
    res = build_mosaic([z], tmp_path / "z.tif", FAST)
    assert np.array_equal(read(res.path)[0], read(single.path)[0])


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_the_mosaic(tmp_path, single, threads):
    cfg = FAST.model_copy(update={"threads": threads})
    res = build_mosaic([make_product(vortex=VORTEX)], tmp_path / "t.tif", cfg)
    assert np.array_equal(read(res.path)[0], read(single.path)[0])


def test_channel_means(single):
    m = channel_means(single.path)
    data, *_ = read(single.path)
    valid = (data != 0).any(axis=0)
    assert m.pixels == int(valid.sum())
    assert m.means == pytest.approx(tuple(data[:, valid].mean(axis=1) / 255.0), abs=1e-9)
    assert m.reference == (0.287, 0.287, 0.460)
    sea = np.zeros(valid.shape, dtype=bool)
    sea[: valid.shape[0] // 2] = True
    assert channel_means(single.path, sea).pixels == int((valid & sea).sum())
    assert "0.460" in m.report()


def test_different_datatakes_are_refused(tmp_path):
    p = make_product()
    other = other_datatake(p, tmp_path)
    out = tmp_path / "m.tif"
    with pytest.raises(UsageError, match="datatake 05854A"):
        build_mosaic([p, other], out, FAST)
    assert not out.exists() and not list(tmp_path.glob(".m.tif*"))


def test_broken_product_leaves_nothing(tmp_path):
    p = copy_product(make_product(), tmp_path)
    tiff = next((p / "measurement").glob("*-hv-*.tiff"))
    tiff.unlink()
    out = tmp_path / "out" / "m.tif"
    with pytest.raises(UsageError, match="measurement"):
        build_mosaic([p], out, FAST)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())
