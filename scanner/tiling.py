"""Cut a mosaic into the windows the model was trained on, so its central crops cover the swath.

The model sees only the central crop of its input (``card.crop`` of ``card.input_size``), so what
must tile the mosaic is the crops, not the windows: crops step by ``crop_px * (1 - overlap)``
from the top-left pixel until the last one reaches the far edge, and each window is its crop
grown by the margin the model will cut away. Windows (and the last crops) may reach beyond the
raster; the reader pads them with nodata (0). Pure arithmetic: no IO here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from polarscan.common.config import StrictModel
from polarscan.common.errors import UsageError
from training.card import ModelCard


class TilingConfig(StrictModel):
    """How windows are laid over a mosaic (``tiling:`` in ``configs/scan.yaml``)."""

    overlap: float = Field(0.5, ge=0.0, lt=1.0, description="overlap between neighbouring crops")
    max_nodata_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="skip windows whose crop has more nodata than this"
    )


@dataclass(frozen=True, order=True)
class Window:
    """One model input over the mosaic, in mosaic pixels (offsets may be negative).

    Small, frozen and hashable: this is what crosses into tasks, never pixels.
    """

    row: int  # window top-left
    col: int
    size: int  # window side (card.window_px)
    crop_offset: int  # crop top-left relative to the window top-left
    crop_size: int  # crop side in mosaic pixels (≈ card.crop_px)

    @property
    def id(self) -> str:
        return f"r{self.crop_row}_c{self.crop_col}"

    @property
    def crop_row(self) -> int:
        return self.row + self.crop_offset

    @property
    def crop_col(self) -> int:
        return self.col + self.crop_offset

    @property
    def window_box(self) -> tuple[int, int, int, int]:
        """(row_off, col_off, height, width) of the whole window."""
        return (self.row, self.col, self.size, self.size)

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        """(row_off, col_off, height, width) of the central crop the model sees."""
        return (self.crop_row, self.crop_col, self.crop_size, self.crop_size)

    def crop_slices(self, height: int, width: int) -> tuple[slice, slice]:
        """The crop clipped to a ``height`` x ``width`` raster, as array slices (may be empty)."""
        r0, c0 = max(self.crop_row, 0), max(self.crop_col, 0)
        r1 = min(self.crop_row + self.crop_size, height)
        c1 = min(self.crop_col + self.crop_size, width)
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    def crop_bounds(self, transform) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the crop in the mosaic CRS (``transform``: affine)."""
        xs, ys = [], []
        for r in (self.crop_row, self.crop_row + self.crop_size):
            for c in (self.crop_col, self.crop_col + self.crop_size):
                x, y = transform @ (c, r)
                xs.append(x)
                ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    def crop_footprint(self, transform):
        """The crop as a shapely polygon in the mosaic CRS."""
        from shapely.geometry import Polygon

        r0, c0 = self.crop_row, self.crop_col
        r1, c1 = r0 + self.crop_size, c0 + self.crop_size
        corners = [(c0, r0), (c1, r0), (c1, r1), (c0, r1)]
        return Polygon([transform @ rc for rc in corners])


def crop_geometry(card: ModelCard) -> tuple[int, int]:
    """(crop offset in the window, crop size), in whole mosaic pixels.

    Keras' CenterCrop cuts ``(input - crop) // 2`` input pixels from the top-left; scaled to
    mosaic pixels and rounded. Exact when ``window_px == input_size``.
    """
    scale = card.window_px / card.input_size
    size = max(1, round(card.crop * scale))
    offset = round(((card.input_size - card.crop) // 2) * scale)
    return offset, min(size, card.window_px - offset)


def crop_stride(crop_size: int, overlap: float) -> int:
    """Step between crops: never more than ``crop_size * (1 - overlap)`` so overlap is at least
    what was asked (rounded down), and at least one pixel."""
    if not 0.0 <= overlap < 1.0:
        raise UsageError(f"tiling overlap {overlap} is out of range", "use a value in [0, 1)")
    return max(1, math.floor(crop_size * (1.0 - overlap) + 1e-9))


def _starts(extent: int, crop_size: int, stride: int) -> list[int]:
    n = 1 + max(0, math.ceil((extent - crop_size) / stride))
    return [k * stride for k in range(n)]


def window_grid(height: int, width: int, card: ModelCard, overlap: float = 0.5) -> list[Window]:
    """Windows whose central crops cover every pixel of a ``height`` x ``width`` mosaic.

    Crops start at pixel 0 and step by :func:`crop_stride`; the last crop in each direction is
    the first one that reaches the far edge, so no crop starts beyond the raster. Row-major order.
    """
    if height <= 0 or width <= 0:
        raise UsageError(
            f"cannot tile an empty mosaic ({height} x {width} px)", "check the mosaic grid"
        )
    offset, size = crop_geometry(card)
    stride = crop_stride(size, overlap)
    return [
        Window(
            row=r - offset, col=c - offset, size=card.window_px, crop_offset=offset, crop_size=size
        )
        for r in _starts(height, size, stride)
        for c in _starts(width, size, stride)
    ]


MaskReader = Callable[[int, int, int, int], np.ndarray]
"""``reader(row_off, col_off, height, width)`` → boolean valid mask, False outside the raster."""


def array_mask_reader(valid: np.ndarray) -> MaskReader:
    """A :data:`MaskReader` over an in-memory boolean mask (True = valid data)."""
    valid = np.asarray(valid, dtype=bool)
    h, w = valid.shape

    def read(row: int, col: int, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), dtype=bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, h), min(col + width, w)
        if r1 > r0 and c1 > c0:
            out[r0 - row : r1 - row, c0 - col : c1 - col] = valid[r0:r1, c0:c1]
        return out

    return read


def nodata_fraction(window: Window, valid_mask_reader: MaskReader) -> float:
    """Share of the window's crop (including any part beyond the raster) that is nodata."""
    mask = valid_mask_reader(*window.crop_box)
    return 1.0 - float(np.count_nonzero(mask)) / mask.size


def filter_windows(
    windows: Iterable[Window], valid_mask_reader: MaskReader, max_nodata_fraction: float = 0.5
) -> list[Window]:
    """Windows whose crop is at most ``max_nodata_fraction`` nodata (and not wholly nodata)."""
    if not 0.0 <= max_nodata_fraction <= 1.0:
        raise UsageError(
            f"max_nodata_fraction {max_nodata_fraction} is out of range", "use a value in [0, 1]"
        )
    kept = []
    for w in windows:
        frac = nodata_fraction(w, valid_mask_reader)
        if frac < 1.0 and frac <= max_nodata_fraction:
            kept.append(w)
    return kept
