"""Streaming windows out of a real COG and scoring them with real Keras models."""

from __future__ import annotations

import numpy as np
import pytest

from polarscan.common.errors import UsageError
from scanner.cog import write_cog
from scanner.infer import (
    iter_window_batches,
    open_valid_mask_reader,
    read_mosaic_info,
    read_valid_mask,
    resize_nearest,
    score_windows,
)
from scanner.tiling import filter_windows, window_grid
from tests.support.outputs_mosaics import blue_mean_model, blue_mean_prob
from training.card import ModelCard

H, W = 300, 260  # the size of the shared `mosaic` fixture (tests/scanner/conftest.py)


def padded(rgb: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    out = np.zeros((size, size, 3), np.uint8)
    for i in range(size):
        for j in range(size):
            r, c = row + i, col + j
            if 0 <= r < rgb.shape[0] and 0 <= c < rgb.shape[1]:
                out[i, j] = rgb[r, c]
    return out


def test_mosaic_info_and_mask(mosaic):
    path, rgb, transform = mosaic
    info = read_mosaic_info(path)
    assert (info.height, info.width) == (H, W)
    assert info.transform == transform
    assert info.crs.to_epsg() == 3413
    np.testing.assert_array_equal(read_valid_mask(path), rgb.any(axis=-1))


def test_batches_match_the_mosaic_pixels(mosaic):
    path, rgb, _ = mosaic
    card = ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000)
    windows = window_grid(H, W, card, 0.5)
    seen = 0
    for chunk, batch in iter_window_batches(path, windows, card, batch_size=4):
        assert batch.dtype == np.uint8 and batch.shape[1:] == (192, 192, 3)
        assert len(chunk) == len(batch) <= 4
        for w, img in zip(chunk, batch, strict=True):
            np.testing.assert_array_equal(img, padded(rgb, w.row, w.col, 192))
        seen += len(chunk)
    assert seen == len(windows)


def test_windows_resized_to_model_input(mosaic):
    path, rgb, _ = mosaic
    card = ModelCard(input_size=192, crop=128, window_px=96, pixel_spacing_m=4000)
    windows = window_grid(H, W, card, 0.5)[:3]
    (chunk, batch), *_ = list(iter_window_batches(path, windows, card, 8))
    for w, img in zip(chunk, batch, strict=True):
        win = padded(rgb, w.row, w.col, 96)
        np.testing.assert_array_equal(img, np.repeat(np.repeat(win, 2, 0), 2, 1))
    assert resize_nearest(np.arange(4)[:, None].repeat(4, 1), 2).tolist() == [
        [1, 1],
        [3, 3],
    ]  # pixel centres, as PIL


def test_scores_equal_the_crop_content(mosaic):
    path, rgb, _ = mosaic
    card = ModelCard(input_size=64, crop=32, window_px=64, pixel_spacing_m=2000)
    model = blue_mean_model(64, 32)
    windows = filter_windows(window_grid(H, W, card, 0.5), open_valid_mask_reader(path), 0.5)
    assert 10 < len(windows) < len(window_grid(H, W, card, 0.5))
    done = []
    probs = score_windows(model, path, windows, card, batch_size=5, progress=done.append)
    assert probs.dtype == np.float32 and probs.shape == (len(windows),)
    assert sum(done) == len(windows)
    expected = [blue_mean_prob(padded(rgb, w.crop_row, w.crop_col, w.crop_size)) for w in windows]
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    # no prefetch thread: same numbers
    np.testing.assert_allclose(
        score_windows(model, path, windows, card, batch_size=7, prefetch=0), probs, atol=1e-6
    )


def test_pipeline_matches_bare_predict(mosaic, small_model):
    path, _, _ = mosaic
    card = ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000)
    windows = window_grid(H, W, card, 0.5)
    probs = score_windows(small_model, path, windows, card, batch_size=4)
    x = np.concatenate([b for _, b in iter_window_batches(path, windows, card, 64)])
    bare = small_model.predict(x.astype(np.float32), verbose=0)[:, 1]
    np.testing.assert_allclose(probs, bare, atol=1e-5)


def test_bad_mosaic_and_card(mosaic, tmp_path, small_model):
    path, _, transform = mosaic
    card = ModelCard(input_size=192, crop=128, window_px=192)
    one_band = tmp_path / "hh.tif"
    write_cog(one_band, np.zeros((40, 40), np.float32), transform=transform, crs="EPSG:3413")
    with pytest.raises(UsageError, match="3-band uint8") as err:
        score_windows(small_model, one_band, [], card)
    assert err.value.exit_code == 2
    with pytest.raises(UsageError, match="3-band uint8"):
        read_valid_mask(one_band)
    with pytest.raises(UsageError, match="not found"):
        read_mosaic_info(tmp_path / "missing.tif")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    with pytest.raises(UsageError, match="not a readable raster"):
        read_mosaic_info(junk)
    wrong = ModelCard(input_size=800, crop=512)
    with pytest.raises(UsageError, match="card says input 800/crop 512"):
        score_windows(small_model, path, [], wrong)
    with pytest.raises(UsageError, match="batch size"):
        next(iter_window_batches(path, [], card, 0))


def test_band_reader_fallback_reads_the_same_pixels(mosaic):
    import rasterio

    from scanner.infer import _BandReader

    path, rgb, _ = mosaic
    card = ModelCard(input_size=64, crop=32, window_px=64)
    windows = window_grid(H, W, card, 0.75)
    with rasterio.open(path) as src:
        banded, single = _BandReader(src, windows), _BandReader(src, windows, max_bytes=1)
        for w in windows[::3]:
            expected = padded(rgb, w.row, w.col, 64)
            np.testing.assert_array_equal(banded.read(w), expected)
            np.testing.assert_array_equal(single.read(w), expected)
