"""Channel means of an RGB mosaic, to compare a recipe with the training dataset's images.

The RGB recipe is inferred (domain brief §2): the only published anchor is the dataset's mean
colour, about (0.287, 0.287, 0.460) of 255. Means over sea pixels of a mosaic made with the
current recipe should land near it; if they do not, the stretch windows need adjusting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polarscan.common.errors import UsageError

REFERENCE_MEANS = (0.287, 0.287, 0.460)


@dataclass(frozen=True)
class ChannelMeans:
    means: tuple[float, float, float]  # R, G, B as fractions of 255, over the counted pixels
    pixels: int  # valid (and sea, if masked) pixels counted
    reference: tuple[float, float, float] = REFERENCE_MEANS

    def report(self) -> str:
        r, g, b = self.means
        rr, rg, rb = self.reference
        return (
            f"pixels {self.pixels}\n"
            f"channel  mosaic  dataset\n"
            f"R        {r:.3f}   {rr:.3f}\n"
            f"G        {g:.3f}   {rg:.3f}\n"
            f"B        {b:.3f}   {rb:.3f}"
        )


def channel_means(
    mosaic_path: str | Path, sea_mask: np.ndarray | str | Path | None = None
) -> ChannelMeans:
    """Mean R, G, B (fractions of 255) over valid pixels (any band ≠ 0) of a 3-band mosaic.

    ``sea_mask``: a boolean array of the mosaic's shape, or a single-band raster on the same grid
    (non-zero = sea); only those pixels count. Read block by block: memory stays small.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    path = Path(mosaic_path)
    if not path.exists():
        raise UsageError(f"mosaic not found: {path}", "pass the path of an RGB mosaic GeoTIFF")
    try:
        ds = rasterio.open(path)
    except RasterioIOError as err:
        raise UsageError(
            f"{path} is not a readable raster ({err})", "pass an RGB GeoTIFF"
        ) from None
    mask_ds = None
    with ds:
        if ds.count < 3:
            raise UsageError(
                f"{path} has {ds.count} band(s), not 3", "pass an RGB mosaic made by 'mosaic'"
            )
        mask_arr = None
        if isinstance(sea_mask, np.ndarray):
            if sea_mask.shape != (ds.height, ds.width):
                raise UsageError(
                    f"sea mask is {sea_mask.shape}, the mosaic {(ds.height, ds.width)}",
                    "pass a mask on the mosaic's grid",
                )
            mask_arr = sea_mask.astype(bool)
        elif sea_mask is not None:
            mask_ds = _open_mask(Path(sea_mask), ds)
        sums = np.zeros(3, dtype=np.float64)
        count = 0
        try:
            for _, win in ds.block_windows(1):
                rgb = ds.read([1, 2, 3], window=win)
                valid = (rgb != 0).any(axis=0)
                if mask_arr is not None:
                    valid &= mask_arr[win.toslices()]
                elif mask_ds is not None:
                    valid &= mask_ds.read(1, window=win) != 0
                sums += rgb[:, valid].sum(axis=1, dtype=np.float64)
                count += int(valid.sum())
        finally:
            if mask_ds is not None:
                mask_ds.close()
    if count == 0:
        raise UsageError(
            f"{path} has no valid pixels{' over sea' if sea_mask is not None else ''}",
            "check the mosaic (and the sea mask)",
        )
    means = tuple(float(v) for v in sums / count / 255.0)
    return ChannelMeans(means=means, pixels=count)  # type: ignore[arg-type]


def _open_mask(path: Path, ref):
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        m = rasterio.open(path)
    except RasterioIOError as err:
        raise UsageError(f"sea mask {path} is not readable ({err})", "pass a raster") from None
    if (m.height, m.width) != (ref.height, ref.width) or not m.transform.almost_equals(
        ref.transform
    ):
        m.close()
        raise UsageError(
            f"sea mask {path} is not on the mosaic's grid",
            "resample the mask onto the mosaic's grid (same size and transform)",
        )
    return m
