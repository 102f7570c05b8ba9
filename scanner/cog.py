"""Cloud-Optimized GeoTIFF writing: tiled, compressed, with overviews, written atomically."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import as_disk_full


def write_cog(
    path: str | Path,
    data: np.ndarray,
    *,
    transform,
    crs,
    nodata: float | int | None = None,
    tags: Mapping[str, str] | None = None,
    band_names: list[str] | None = None,
    compress: str = "DEFLATE",
    resampling: str = "AVERAGE",
    colorinterp: list[str] | None = None,
) -> Path:
    """Write ``data`` (bands, H, W) or (H, W) as a COG at ``path`` (temp name, then rename).

    ``resampling`` is the overview resampling (``NEAREST`` for classes, ``AVERAGE`` otherwise).
    """
    import rasterio.shutil
    from rasterio.enums import ColorInterp
    from rasterio.io import MemoryFile

    arr = data[np.newaxis] if data.ndim == 2 else data
    count, height, width = arr.shape
    profile = dict(
        driver="GTiff",
        height=height,
        width=width,
        count=count,
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    )
    path = Path(path)
    with MemoryFile() as mem, mem.open(**profile) as src:
        src.write(arr)
        if tags:
            src.update_tags(**{k: str(v) for k, v in tags.items()})
        if band_names:
            for i, name in enumerate(band_names, start=1):
                src.set_band_description(i, name)
        if colorinterp:
            src.colorinterp = [ColorInterp[c] for c in colorinterp]
        with atomic_path(path) as tmp:
            try:
                rasterio.shutil.copy(
                    src,
                    tmp,
                    driver="COG",
                    compress=compress,
                    overview_resampling=resampling,
                    blocksize=512,
                    BIGTIFF="IF_SAFER",
                )
            except Exception as err:
                # GDAL reports a failed read-back or write, not why: judge by what it wrote
                # and what it had to write (its overview side file is gone by now)
                written = [tmp, *tmp.parent.glob(f"{tmp.name}*")]
                full = as_disk_full(err, path, files=written, need=arr.nbytes)
                if full is not None:
                    raise full from err
                raise
    return path
