"""Probability and saliency rasters: alignment with the windows, COG layout, saliency maps."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import from_bounds

from polarscan.common.errors import UsageError
from scanner.infer import read_mosaic_info, read_valid_mask, score_windows
from scanner.outputs.rasters import (
    map_to_window,
    probability_raster,
    saliency_raster,
    write_float_cog,
)
from scanner.saliency import (
    choose_gradcam_layer,
    explain_windows,
    parse_methods,
    select_for_explanation,
)
from scanner.tiling import Window, window_grid
from tests.support.outputs_mosaics import blue_mean_model
from training.card import ModelCard

H, W = 200, 170  # the size of the shared `mosaic` fixture (tests/scanner/conftest.py)


def test_probability_raster_is_max_over_crops():
    card = ModelCard(input_size=64, crop=32, window_px=64)
    windows = window_grid(50, 40, card, 0.5)
    probs = np.linspace(0.1, 0.9, len(windows))
    out = probability_raster(windows, probs, 50, 40)
    expected = np.full((50, 40), -1.0)
    for w, p in zip(windows, probs, strict=True):
        r, c = w.crop_row, w.crop_col
        expected[max(r, 0) : r + 32, max(c, 0) : c + 32] = np.maximum(
            expected[max(r, 0) : r + 32, max(c, 0) : c + 32], p
        )
    np.testing.assert_allclose(out, expected.astype(np.float32))
    valid = np.ones((50, 40), bool)
    valid[0, 0] = False
    assert np.isnan(probability_raster(windows, probs, 50, 40, valid)[0, 0])
    # no crop over a pixel → NaN
    assert np.isnan(probability_raster(windows[:1], probs[:1], 50, 40)[49, 39])
    with pytest.raises(UsageError, match="windows but"):
        probability_raster(windows, probs[:-1], 50, 40)


def test_probability_cog_aligns_with_crop_footprints(mosaic, tmp_path):
    path, _, _ = mosaic
    info = read_mosaic_info(path)
    card = ModelCard(input_size=64, crop=32, window_px=64, pixel_spacing_m=2000)
    windows = window_grid(H, W, card, 0.0)  # crops tile without overlap: one score per pixel
    probs = score_windows(blue_mean_model(64, 32), path, windows, card, batch_size=8)
    valid = read_valid_mask(path)
    raster = probability_raster(windows, probs, H, W, valid)
    out = write_float_cog(
        tmp_path / "probability.tif",
        raster,
        transform=info.transform,
        crs=info.crs,
        name="probability",
        tags={"model": "blue-mean"},
    )
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 3413 and src.transform == info.transform
        assert src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.tags()["model"] == "blue-mean"
        assert src.descriptions == ("probability",)
        assert src.profile["tiled"] and src.profile["blockxsize"] == 512
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        for w, p in zip(windows, probs, strict=True):
            minx, miny, maxx, maxy = w.crop_footprint(info.transform).bounds
            box = from_bounds(minx, miny, maxx, maxy, src.transform).round_offsets()
            vals = src.read(1, window=box, boundless=True, fill_value=np.nan)
            inside = vals[~np.isnan(vals)]
            if inside.size:
                np.testing.assert_allclose(inside, p, atol=1e-6)


def test_overviews_on_a_bigger_raster(tmp_path, mosaic):
    _, _, transform = mosaic
    raster = np.random.default_rng(0).random((1100, 1300)).astype(np.float32)
    raster[:100] = np.nan
    out = write_float_cog(
        tmp_path / "p.tif", raster, transform=transform, crs="EPSG:3413", name="p"
    )
    with rasterio.open(out) as src:
        assert src.overviews(1) == [2, 4]
        np.testing.assert_array_equal(src.read(1), raster)


def test_saliency_raster_places_maps_and_weights():
    card = ModelCard(input_size=64, crop=32, window_px=32)  # model frame = 2x window pixels
    windows = [Window(row=-8, col=-8, size=32, crop_offset=8, crop_size=16)]
    windows.append(Window(row=0, col=0, size=32, crop_offset=8, crop_size=16))
    m = np.full((64, 64), np.nan, np.float32)
    m[16:48, 16:48] = 1.0
    m[16:18, 16:18] = 0.5  # the crop's top-left input pixels (nearest samples odd ones)
    assert map_to_window(m, windows[0]).shape == (32, 32)
    out = saliency_raster(windows, [m, m * 0.8], 40, 40, weights=[0.5, 1.0])
    # window 0 crop covers 0..16, weight .5; window 1 crop covers 8..24, value .8
    assert out[0, 0] == pytest.approx(0.25)  # 0.5 map value x 0.5 weight
    assert out[2, 2] == pytest.approx(0.5)
    assert out[10, 10] == pytest.approx(0.8)
    assert out[20, 20] == pytest.approx(0.8)
    assert np.isnan(out[30, 30]) and np.isnan(out[0, 30])
    raw = saliency_raster(windows, [m, m], 40, 40)
    assert raw[2, 2] == pytest.approx(1.0)
    assert card.crop_px == 16
    with pytest.raises(UsageError, match="saliency maps"):
        saliency_raster(windows, [m], 40, 40)


def test_explain_windows_gradcam_and_ig(mosaic, small_model):
    path, _, _ = mosaic
    card = ModelCard(input_size=192, crop=128, window_px=96, pixel_spacing_m=4000)
    windows = window_grid(H, W, card, 0.5)[:3]
    maps = explain_windows(small_model, path, windows, card, ("gradcam", "ig"), ig_steps=2)
    for name in ("gradcam", "ig"):
        a = maps[name]
        assert a.shape == (3, 192, 192)
        assert np.isnan(a[:, :32]).all() and np.isnan(a[:, :, 160:]).all()
        inner = a[:, 32:160, 32:160]
        assert not np.isnan(inner).any() and inner.min() >= 0 and inner.max() <= 1
    # block5 (4x4) upsampled over the crop: not a constant map
    assert any(np.nanstd(m) > 0 for m in maps["gradcam"])
    ras = saliency_raster(windows, maps["gradcam"], H, W, weights=[0.2, 0.4, 0.6])
    assert np.nanmax(ras) <= 0.6 + 1e-6
    assert np.isnan(ras[150:, 150:]).all()


def test_gradcam_layer_choice(small_model):
    # 128-px crop: the authors' block7 is 1x1, so auto falls back to the 4x4 block5 ReLU
    assert small_model.get_layer("block7_relu2").output.shape[1] == 1
    assert choose_gradcam_layer(small_model) == "block5_relu2"
    assert small_model.get_layer("block5_relu2").output.shape[1] == 4
    assert choose_gradcam_layer(small_model, "block6_relu2") == "block6_relu2"


def test_method_parsing_and_selection():
    assert parse_methods("gradcam, ig") == ("gradcam", "ig")
    assert parse_methods("none") == () and parse_methods(None) == ()
    with pytest.raises(UsageError, match="unknown saliency"):
        parse_methods("gradcam,shap")
    ws = [Window(0, i, 4, 1, 2) for i in range(4)]
    sel, p = select_for_explanation(ws, [0.1, 0.7, 0.5, 0.2], 0.5)
    assert [w.col for w in sel] == [1, 2] and p.tolist() == pytest.approx([0.7, 0.5])


def test_explain_rejects_a_card_that_does_not_fit(mosaic, small_model):
    path, _, _ = mosaic
    with pytest.raises(UsageError, match="card says input 800/crop 512") as err:
        explain_windows(small_model, path, [], ModelCard(input_size=800, crop=512), ("gradcam",))
    assert err.value.exit_code == 2
    with pytest.raises(UsageError, match="unknown saliency"):
        explain_windows(small_model, path, [], ModelCard(input_size=192, crop=128), ("lime",))
