"""Grid arithmetic of scanner.tiling as a table of edge cases, plus the nodata filter."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_origin

from polarscan.common.errors import UsageError
from scanner.tiling import (
    TilingConfig,
    Window,
    array_mask_reader,
    crop_geometry,
    crop_stride,
    filter_windows,
    nodata_fraction,
    window_grid,
)
from training.card import ModelCard


def card(input_size: int, crop: int, window_px: int | None = None) -> ModelCard:
    return ModelCard(input_size=input_size, crop=crop, window_px=window_px or input_size)


# (height, width, input, crop, window_px, overlap, expected stride, expected (rows, cols) of crops)
CASES = [
    # raster smaller than a window / than a crop
    (100, 60, 192, 128, None, 0.5, 64, (1, 1)),
    (10, 10, 800, 512, None, 0.5, 256, (1, 1)),
    # exact multiples of the crop
    (128, 256, 192, 128, None, 0.0, 128, (1, 2)),
    (512, 1024, 800, 512, None, 0.5, 256, (1, 3)),
    # off by one on either side of a multiple
    (129, 127, 192, 128, None, 0.0, 128, (2, 1)),
    (513, 511, 800, 512, None, 0.5, 256, (2, 1)),
    (769, 768, 800, 512, None, 0.5, 256, (3, 2)),
    # overlap 0.75
    (200, 128, 192, 128, None, 0.75, 32, (4, 1)),
    (1000, 1000, 800, 512, None, 0.75, 128, (5, 5)),
    # crop == window
    (300, 300, 128, 128, None, 0.5, 64, (4, 4)),
    (256, 257, 128, 128, None, 0.0, 128, (2, 3)),
    # window in mosaic pixels differs from the model input (legacy 1536 model fed 800-px windows)
    (1600, 900, 1536, 1024, 800, 0.5, 266, (6, 3)),
    # one-pixel rasters and strips
    (1, 1, 192, 128, None, 0.5, 64, (1, 1)),
    (1, 1000, 192, 128, None, 0.5, 64, (1, 15)),
]


@pytest.mark.parametrize("h,w,size,crop,window_px,overlap,stride,shape", CASES)
def test_grid_covers_every_pixel(h, w, size, crop, window_px, overlap, stride, shape):
    c = card(size, crop, window_px)
    windows = window_grid(h, w, c, overlap)
    offset, crop_size = crop_geometry(c)
    assert crop_stride(crop_size, overlap) == stride
    rows = sorted({win.crop_row for win in windows})
    cols = sorted({win.crop_col for win in windows})
    assert (len(rows), len(cols)) == shape
    assert len(windows) == shape[0] * shape[1]
    # stride between consecutive crops, crops start at 0, none starts beyond the raster
    assert rows[0] == 0 and cols[0] == 0
    assert all(b - a == stride for a, b in zip(rows, rows[1:], strict=False))
    assert all(b - a == stride for a, b in zip(cols, cols[1:], strict=False))
    assert rows[-1] < h and cols[-1] < w
    # the last crop is the first to reach the far edge (no useless extra row/column)
    assert rows[-1] + crop_size >= h and (len(rows) == 1 or rows[-2] + crop_size < h)
    assert cols[-1] + crop_size >= w and (len(cols) == 1 or cols[-2] + crop_size < w)
    # every pixel is covered by at least one crop
    cover = np.zeros((h, w), dtype=np.int32)
    for win in windows:
        assert win.size == c.window_px
        assert win.crop_size == crop_size
        assert win.crop_row - win.row == offset
        rs, cs = win.crop_slices(h, w)
        cover[rs, cs] += 1
    assert cover.min() >= 1
    if overlap == 0.0 and crop_size <= min(h, w):
        assert cover.max() <= 4  # corners where the last crop overlaps


def test_crop_geometry_matches_center_crop():
    assert crop_geometry(card(800, 512)) == (144, 512)
    assert crop_geometry(card(192, 128)) == (32, 128)
    assert crop_geometry(card(128, 128)) == (0, 128)
    # 1536/1024 model over 800-px windows: CenterCrop cuts 256 input px = 133.3 mosaic px
    assert crop_geometry(card(1536, 1024, 800)) == (133, 533)


def test_window_boxes_and_footprint():
    w = Window(row=-32, col=-32, size=192, crop_offset=32, crop_size=128)
    assert w.window_box == (-32, -32, 192, 192)
    assert w.crop_box == (0, 0, 128, 128)
    assert w.id == "r0_c0"
    t = from_origin(1000.0, 5000.0, 2000.0, 2000.0)
    poly = w.crop_footprint(t)
    assert poly.bounds == (1000.0, 5000.0 - 128 * 2000.0, 1000.0 + 128 * 2000.0, 5000.0)
    assert w.crop_bounds(t) == poly.bounds
    assert poly.area == pytest.approx((128 * 2000.0) ** 2)
    # hashable and frozen: safe to send to tasks
    assert len({w, Window(-32, -32, 192, 32, 128)}) == 1


def test_crop_slices_clip_to_raster():
    w = Window(row=50, col=-40, size=192, crop_offset=32, crop_size=128)
    rs, cs = w.crop_slices(100, 100)
    assert (rs.start, rs.stop, cs.start, cs.stop) == (82, 100, 0, 100)
    empty = Window(row=500, col=0, size=192, crop_offset=32, crop_size=128).crop_slices(100, 100)
    assert empty[0].stop - empty[0].start == 0


def test_filter_windows_skips_mostly_nodata():
    h, w = 256, 256
    valid = np.zeros((h, w), dtype=bool)
    valid[:, :100] = True  # a slanted swath would do the same: left part valid
    c = card(192, 128)
    windows = window_grid(h, w, c, 0.5)
    reader = array_mask_reader(valid)
    fracs = {win.id: nodata_fraction(win, reader) for win in windows}
    assert fracs["r0_c0"] == pytest.approx(1 - 100 / 128)
    assert fracs["r0_c128"] == 1.0
    kept = filter_windows(windows, reader, 0.5)
    assert {win.crop_col for win in kept} == {0}  # the crop at 64 is 72 % nodata
    assert all(fracs[win.id] <= 0.5 for win in kept)
    # everything allowed except crops that are wholly nodata
    assert {win.crop_col for win in filter_windows(windows, reader, 1.0)} == {0, 64}
    assert filter_windows(windows, reader, 0.0) == []


def test_crop_beyond_raster_counts_as_nodata():
    reader = array_mask_reader(np.ones((100, 100), dtype=bool))
    (only,) = window_grid(100, 100, card(192, 128), 0.5)
    assert nodata_fraction(only, reader) == pytest.approx(1 - 100 * 100 / 128**2)


@pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5])
def test_bad_overlap(overlap):
    with pytest.raises(UsageError, match="overlap"):
        window_grid(100, 100, card(192, 128), overlap)


def test_bad_inputs():
    with pytest.raises(UsageError, match="empty mosaic"):
        window_grid(0, 10, card(192, 128))
    with pytest.raises(UsageError, match="max_nodata_fraction"):
        filter_windows([], array_mask_reader(np.ones((2, 2), bool)), 1.5)
    with pytest.raises(UsageError):
        from polarscan.common.config import parse_config

        parse_config(TilingConfig, {"overlap": 1.2})
    with pytest.raises(UsageError, match="unknown key"):
        from polarscan.common.config import parse_config

        parse_config(TilingConfig, {"stride": 3})
