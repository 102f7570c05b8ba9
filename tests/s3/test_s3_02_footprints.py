"""GDAL's RMS overviews of a COG, pinned pixel by pixel against the footprint model of
:mod:`scanner.safe.footprints` (GDAL is the independent reference): level sizes halved and
floored, level 1 from full resolution and each next level from the one before, area-weighted
footprints ``[i·r, (i+1)·r)``, nodata 0 dropped and re-weighted, rounded to nearest."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio

from scanner.safe.footprints import (
    Axis,
    cog_grid,
    halved_sizes,
    level_weights,
    uniform_grid,
)


def _model_level(src: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    wr, wc = level_weights(src.shape[0], shape[0]), level_weights(src.shape[1], shape[1])
    sq = np.square(src, dtype=np.float64)
    valid = (src != 0).astype(np.float64)
    num = wr @ (wc @ sq.T).T
    den = wr @ (wc @ valid.T).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.rint(np.sqrt(num / den)), 0)


@pytest.fixture(scope="module")
def cog(tmp_path_factory):
    from scanner.demo.cog_twin import write_cog

    work = tmp_path_factory.mktemp("ovr")
    rng = np.random.default_rng(7)
    dn = rng.gamma(4.0, 400.0, (1001, 1203)).astype(np.uint16) + 1  # odd sizes: ratios ≠ 2
    dn[:, :37] = 0  # a swath edge of nodata
    dn[300:303, 500:509] = 0  # and a hole
    src = work / "src.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(src, "w", driver="GTiff", height=dn.shape[0], width=dn.shape[1],
                           count=1, dtype="uint16") as ds:  # fmt: skip
            ds.write(dn, 1)
        write_cog(src, work / "cog.tif", blocksize=256)
        levels = []
        for k in range(6):
            with rasterio.open(work / "cog.tif", overview_level=k) as ds:
                levels.append(ds.read(1))
    return dn, levels


def test_level_sizes_are_halved_and_floored(cog):
    dn, levels = cog
    assert [lv.shape for lv in levels] == list(
        zip(halved_sizes(1001, 6), halved_sizes(1203, 6), strict=True)
    )
    assert [lv.shape for lv in levels][:2] == [(500, 601), (250, 300)]


def test_each_level_is_the_area_weighted_rms_of_the_one_before(cog):
    dn, levels = cog
    prev = dn
    for k, got in enumerate(levels):
        want = _model_level(prev, got.shape)
        diff = np.abs(want - got)
        assert diff.max() <= 1, k  # round-half cases only
        assert (diff == 0).mean() > 0.999, (k, (diff == 0).mean())
        prev = got
    # and not from full resolution: level 2 made from full resolution is far off
    assert (np.abs(_model_level(dn, levels[1].shape) - levels[1]) > 1).mean() > 0.5


def test_level_weights_table():
    w = level_weights(5, 2).toarray()  # r = 2.5
    np.testing.assert_allclose(w, [[0.4, 0.4, 0.2, 0, 0], [0, 0, 0.2, 0.4, 0.4]])
    np.testing.assert_allclose(level_weights(4, 2).toarray(), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(level_weights(3, 3).toarray(), np.eye(3))
    with pytest.raises(ValueError):
        level_weights(3, 4)


def test_cog_blocks_cover_every_pixel_once_and_centres_drift():
    ax = Axis.of_overview(1311, 8, halved_sizes(1311, 2), 4)  # 1311 → 655 → 327
    assert ax.count == 164 and ax.n_overview == 327 and ax.per == 2
    mass = np.asarray(ax.weights.sum(axis=0)).ravel()  # per full-resolution pixel
    np.testing.assert_allclose(mass, 327 / 1311)  # every pixel counts, all equally
    # the first block is centred near the uniform one, the last ~3 px further (8.02 px blocks)
    uni = Axis.uniform(1311, 8)
    assert abs(ax.centres[0] - uni.centres[0]) < 0.1
    assert 2.0 < ax.centres[-2] - uni.centres[-2] < 3.5


def test_sampler_positions_map_cog_centres_to_block_indices():
    grid = cog_grid((1338, 1311), 8, 4)
    line = grid.rows.centres[[0, 5, 166]]
    pixel = grid.cols.centres[[0, 5, 163]]
    l2, p2, shape = grid.sampler_positions(line, pixel)
    assert shape == (167 * 8, 164 * 8)
    np.testing.assert_allclose(l2, np.array([0, 5, 166]) * 8 + 3.5)
    np.testing.assert_allclose(p2, np.array([0, 5, 163]) * 8 + 3.5)
    u = uniform_grid((100, 90), 8)
    assert u.sampler_positions(line, pixel)[2] == (100, 90)
    with pytest.raises(ValueError):
        cog_grid((100, 100), 12, 8)


def test_the_check_tells_rms_from_average_at_ew_looks(tmp_path):
    """At EW's 10.7 looks an AVERAGE overview's squares are only ~2 % below the mean DN²: the
    check, on the same footprints, still refuses it; the RMS one passes."""
    from scanner.demo.cog_twin import write_cog_twin
    from scanner.demo.synthetic_product import write_product
    from scanner.safe import open_product
    from scanner.safe.radiometry import block_grid, verify_overview

    original = write_product(tmp_path / "o", scale=1 / 16, seed=5)  # default looks: 10.7
    for resampling, ok in (("RMS", True), ("AVERAGE", False)):
        twin = write_cog_twin(original, tmp_path / resampling, resampling=resampling, blocksize=256)
        with open_product(twin) as p:
            for pol in p.pol_pair:
                grid = block_grid(p, pol, 12)  # 500 m at 40 m: 1.5 pixels of 1/8 a side
                assert grid.factor == 8 and grid.rows.block == 8
                why = verify_overview(p, pol, grid)
                assert (why is None) == ok, (resampling, pol, why)
