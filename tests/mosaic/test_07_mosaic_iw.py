"""IW dual-pol mosaics (issue 14): geolocation against an independent transformer between the
grid nodes, composite by role with per-mode windows, IW slices joining, mixed strips refused,
and bounded memory on a full-size IW scene (slow)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from polarscan.common.rgb import RGBRecipe
from scanner.demo.synthetic_product import SAMPLE_IW, read_sample, write_datatake
from scanner.mosaic import MosaicConfig, build_mosaic, group_products
from scanner.mosaic.geocode import make_geocoder
from scanner.mosaic.grid import snap_grid
from scanner.safe.xmlparse import parse_annotation

REPO = Path(__file__).resolve().parents[2]
FAST = MosaicConfig(resolution_m=1000.0, inverse_step_m=4000.0)


@pytest.fixture(scope="module")
def iw_grid():
    s = read_sample(SAMPLE_IW)
    return parse_annotation(s.texts[("annotation", "VV")]).grid, s.shape


def _landing(line_map, pixel_map, lq, pq, r_guess, c_guess):
    """Where the output grid puts radar positions (lq, pq): solved from the inverse-map arrays
    that drive resampling, by a local linear model around the expected pixel (output px)."""
    h, w = line_map.shape
    out = np.empty((lq.size, 2))
    for k in range(lq.size):
        i = min(max(int(r_guess[k]), 1), h - 2)
        j = min(max(int(c_guess[k]), 1), w - 2)
        jac = np.array(
            [
                [
                    (line_map[i + 1, j] - line_map[i - 1, j]) / 2,
                    (line_map[i, j + 1] - line_map[i, j - 1]) / 2,
                ],
                [
                    (pixel_map[i + 1, j] - pixel_map[i - 1, j]) / 2,
                    (pixel_map[i, j + 1] - pixel_map[i, j - 1]) / 2,
                ],
            ]
        )
        d = np.linalg.solve(jac, [lq[k] - line_map[i, j], pq[k] - pixel_map[i, j]])
        out[k] = (i + 0.5 + d[0], j + 0.5 + d[1])
    return out


@pytest.mark.parametrize(("crs", "res"), [("EPSG:3413", 500.0), ("EPSG:32633", 500.0)])
def test_iw_geolocation_between_nodes_against_gdal_tps(iw_grid, crs, res):
    """At the 210 nodes AND at points between them (cell centres, edge midpoints, random), the
    output places each radar position within one output pixel of where GDAL's thin-plate-spline
    warp of the same GCPs (an independent interpolator) puts it.

    The sample is mostly land (Apennines, tie-point heights up to 1845 m): there the lat/lon
    grid bends with the terrain between nodes and the two interpolators differ by up to ~0.99
    output pixel (measured); over sea, where polar lows are, by < 0.1 pixel."""
    from pyproj import Transformer
    from rasterio.control import GroundControlPoint
    from rasterio.transform import GCPTransformer

    g, shape = iw_grid
    gc = make_geocoder(g.line, g.pixel, g.lat, g.lon, shape, crs)
    grid = snap_grid(gc.bounds(), res, crs)
    line_map, pixel_map = gc.inverse_map(grid, mask=False)
    # query points: nodes, cell centres, midpoints along both axes, and random interior points
    lm = (g.line[:-1] + g.line[1:]) / 2
    pm = (g.pixel[:-1] + g.pixel[1:]) / 2
    rng = np.random.default_rng(14)
    sets = {
        "nodes": np.meshgrid(g.line, g.pixel, indexing="ij"),
        "centres": np.meshgrid(lm, pm, indexing="ij"),
        "line_mid": np.meshgrid(lm, g.pixel, indexing="ij"),
        "pixel_mid": np.meshgrid(g.line, pm, indexing="ij"),
        "random": (rng.uniform(0, shape[0] - 1, 400), rng.uniform(0, shape[1] - 1, 400)),
    }
    gcps = [
        GroundControlPoint(
            row=float(li), col=float(pi), x=float(g.lon[i, j]), y=float(g.lat[i, j]), z=0.0
        )
        for i, li in enumerate(g.line)
        for j, pi in enumerate(g.pixel)
    ]
    to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    worst = {}
    with GCPTransformer(gcps, tps=True) as tps:
        for name, (lq, pq) in sets.items():
            lq, pq = np.ravel(lq).astype(float), np.ravel(pq).astype(float)
            # GCP rows/cols are the annotation's line/pixel: query them as given (no +0.5)
            lon, lat = tps.xy(lq, pq, offset="ul")
            x, y = to_map.transform(np.asarray(lon), np.asarray(lat))
            r_ref, c_ref = grid.rowcol(x, y)
            got = _landing(line_map, pixel_map, lq, pq, r_ref, c_ref)
            err = np.hypot(got[:, 0] - r_ref, got[:, 1] - c_ref)
            worst[name] = float(err.max())
            if name == "centres":  # cells whose four corner nodes are all at sea level
                h = g.height
                h_max = np.maximum.reduce([h[:-1, :-1], h[1:, :-1], h[:-1, 1:], h[1:, 1:]])
                sea = h_max.ravel() < 20.0
                assert sea.sum() >= 20
                worst["sea"] = float(err[sea].max())
    assert max(worst.values()) < 1.0, worst
    assert worst["sea"] < 0.2, worst
    assert worst["nodes"] < 0.05, worst  # TPS and our spline both interpolate the nodes


def _mosaic(paths, out, config=FAST, **kw):
    return build_mosaic(paths, out, config, **kw)


@pytest.fixture(scope="module")
def iw_two(tmp_path_factory) -> list[Path]:
    return write_datatake(tmp_path_factory.mktemp("iw2"), sample=SAMPLE_IW, scale=1 / 32, slices=2)


def _read(path):
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(), ds.tags(), ds.descriptions


def test_iw_mosaic_composite_by_role_and_mode(iw_two, tmp_path):
    res = _mosaic(iw_two[:1], tmp_path / "iw.tif")
    data, tags, desc = _read(res.path)
    assert (res.mode, res.polarisations) == ("IW", ("VV", "VH"))
    assert (tags["mode"], tags["polarisations"]) == ("IW", "VV+VH")
    assert desc == ("VH dB", "VH dB", "VV dB")  # R = G = cross-pol, B = co-pol
    valid = (data != 0).any(axis=0)
    assert 0.2 < valid.mean() < 0.9
    assert (data[0] == data[1]).all()
    r, b = data[0][valid].astype(float), data[2][valid].astype(float)
    assert b.mean() > r.mean()  # co-pol brighter than cross over sea, as in the dataset
    # the IW windows are used, not the EW ones: shift IW co_db by +10 dB → blue drops by
    # 254/30·10 ≈ 84.7 levels wherever it stays inside the window; EW windows change nothing
    shifted = RGBRecipe.model_validate(
        {"windows": {"IW": {"co_db": [-20.0, 10.0]}, "EW": {"co_db": [-40.0, -10.0]}}}
    )
    res2 = _mosaic(iw_two[:1], tmp_path / "iw2.tif", FAST.model_copy(update={"rgb": shifted}))
    data2, tags2, _ = _read(res2.path)
    np.testing.assert_array_equal(data2[0], data[0])  # cross-pol window unchanged
    inside = valid & (data[2] > 90) & (data[2] < 255)
    diff = data[2][inside].astype(int) - data2[2][inside].astype(int)
    assert inside.sum() > 100 and np.abs(diff - 254 / 3).max() <= 1.0
    assert json.loads(tags2["rgb_recipe"])["windows"]["IW"]["co_db"] == [-20.0, 10.0]


def test_iw_slices_of_one_datatake_join(iw_two, tmp_path):
    from scanner.safe import open_product

    prods = [open_product(p) for p in iw_two]
    try:
        groups = group_products(prods)
        assert [len(g) for g in groups] == [2]
        assert prods[0].stop == prods[1].start and prods[0].datatake_id == prods[1].datatake_id
    finally:
        for p in prods:
            p.close()
    both = _mosaic(iw_two, tmp_path / "both.tif")
    one = _mosaic(iw_two[:1], tmp_path / "one.tif")
    assert both.products == tuple(p.name.removesuffix(".SAFE") for p in iw_two)
    data, _, _ = _read(both.path)
    valid = (data != 0).any(axis=0)
    one_valid = (_read(one.path)[0] != 0).any(axis=0).sum()
    # two equal slices edge to edge: twice the valid pixels of one, no overlap, no gap
    assert 1.9 * one_valid < valid.sum() < 2.05 * one_valid
    assert 1.9 < both.footprint.area / one.footprint.area < 2.02
    # no seam of nodata: the union footprint is one polygon and covers ~all valid pixels
    assert both.footprint.geom_type == "Polygon"
    rows_valid = valid.any(axis=1)
    first, last = np.flatnonzero(rows_valid)[[0, -1]]
    assert rows_valid[first : last + 1].all()


def test_mixed_strip_refuses_the_odd_slice_and_mosaics_the_rest(iw_two, tmp_path):
    odd = tmp_path / iw_two[1].name
    shutil.copytree(iw_two[1], odd)
    man = odd / "manifest.safe"
    text = man.read_text()
    assert "<s1sarl1:mode>IW</s1sarl1:mode>" in text
    man.write_text(
        text.replace("<s1sarl1:mode>IW</s1sarl1:mode>", "<s1sarl1:mode>EW</s1sarl1:mode>")
    )
    refused: list = []
    res = _mosaic([iw_two[0], odd], tmp_path / "m.tif", refused=refused)
    assert res.products == (iw_two[0].name.removesuffix(".SAFE"),)
    assert res.mode == "IW" and (tmp_path / "m.tif").exists()
    assert [r.item.name for r in refused] == [odd.name.removesuffix(".SAFE")]
    msg = str(refused[0].error)
    assert "mode EW" in msg and "mode IW" in msg and "never mixes" in msg


@dataclass
class _S:
    name: str
    start: datetime
    stop: datetime
    mode: str = "IW"
    pol_pair: tuple[str, str] = ("VV", "VH")
    mission: str = "S1A"
    abs_orbit: int = 1
    datatake_id: str = "0000AA"


def test_grouping_keeps_the_majority_acquisition():
    t = datetime(2024, 1, 1, tzinfo=UTC)
    s = timedelta(seconds=25)
    a = _S("a", t, t + s)
    b = _S("b", t + s, t + 2 * s, pol_pair=("HH", "HV"))
    c = _S("c", t + 2 * s, t + 3 * s)
    d = _S("d", t + 3 * s, t + 4 * s)
    refused: list = []
    groups = group_products([d, b, a, c], refused=refused)
    # b refused; without it a and c..d are separated by a gap
    assert [[x.name for x in g] for g in groups] == [["a"], ["c", "d"]]
    assert [r.item.name for r in refused] == ["b"]
    assert "polarisations HH+HV" in str(refused[0].error)
    # a tie keeps the earliest slice's acquisition; other datatakes are independent
    e = _S("e", t, t + s, mode="EW", pol_pair=("HH", "HV"), datatake_id="0000BB")
    f = _S("f", t + s, t + 2 * s, mode="IW", datatake_id="0000BB")
    refused.clear()
    groups = group_products([a, e, f], refused=refused)
    assert [[x.name for x in g] for g in groups] == [["a"], ["e"]]
    assert [r.item.name for r in refused] == ["f"]


@pytest.mark.slow
def test_full_size_iw_scene_peak_rss_under_1_5_gb(tmp_path):
    """A full 26102 x 16705 dual-pol IW scene (10 m pixels, block-averaged 50 x 50 to 500 m)."""
    (product,) = write_datatake(tmp_path / "p", sample=SAMPLE_IW, scale=1.0, compress="deflate")
    out = tmp_path / "m.tif"
    cmd = [sys.executable, str(REPO / "benchmarks/bench_mosaic.py"), "--child", "mosaic"]
    proc = subprocess.run(
        [*cmd, str(product), str(out), "500"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["rss_mb"] < 1500
    _, tags, _ = _read(out)
    assert tags["block_px"] == "50" and tags["mode"] == "IW"
    h, w = res["shape"]
    assert 400 < h < 900 and 400 < w < 900  # ~250 x 170 km, rotated, at 500 m of EPSG:3413 (x1.17 at 41°N)
