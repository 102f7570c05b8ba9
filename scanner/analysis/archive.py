"""What a scan output folder holds: its mosaics, their rasters' grids and their sensing times.

Reads metadata only (COG headers and tags, the GeoPackage's ``scenes`` table without geometry);
pixels are read by :func:`read_block`, one block at a time, when a cube is computed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polarscan.common.errors import UsageError
from scanner.analysis.grid import Bounds, Grid, aligned_offset, overlap

log = logging.getLogger(__name__)

VARIABLES = ("probability", "gradcam", "ig")  # the per-mosaic float rasters, in cube order
GPKG = "detections.gpkg"
MOSAICS = "mosaics"


@dataclass(frozen=True)
class RasterRef:
    """One single-band COG: path, CRS (WKT), affine transform (6 numbers), shape, bounds."""

    path: str
    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    height: int
    width: int
    bounds: Bounds


@dataclass(frozen=True)
class MosaicEntry:
    """One mosaic of the archive: its id, sensing start/stop (UTC, naive) and its rasters."""

    mosaic_id: str
    start: np.datetime64
    stop: np.datetime64
    rasters: tuple[tuple[str, RasterRef], ...]  # (variable, raster), variables in VARIABLES order

    def raster(self, variable: str) -> RasterRef | None:
        return dict(self.rasters).get(variable)


def not_a_scan_output(out: Path, why: str) -> UsageError:
    return UsageError(
        f"{out} is not a scan output ({why})",
        "pass the folder a scan wrote with --out: it holds detections.gpkg and "
        "mosaics/<id>/<id>_probability.tif",
    )


def check_scan_folder(out: str | Path) -> Path:
    """``out`` as a Path, or a UsageError if it cannot be a scan output folder."""
    try:
        path = Path(out)
    except TypeError:
        raise UsageError(
            f"{out!r} is not a path", "pass the scan output folder as a str or pathlib.Path"
        ) from None
    if not path.exists():
        raise not_a_scan_output(path, "it does not exist")
    if not path.is_dir():
        raise not_a_scan_output(path, "it is a file, not a folder")
    if not (path / GPKG).is_file() and not (path / MOSAICS).is_dir():
        raise not_a_scan_output(path, f"neither {GPKG} nor {MOSAICS}/ is in it")
    return path


def read_raster_ref(path: Path) -> RasterRef:
    """The header of one COG (no pixels read)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise UsageError(
                    f"{path} has no CRS",
                    "rerun the scan for its mosaic (it writes every raster with its CRS)",
                )
            return RasterRef(
                str(path),
                src.crs.to_wkt(),
                tuple(src.transform)[:6],
                src.height,
                src.width,
                tuple(src.bounds),
            )
    except RasterioIOError as err:
        raise UsageError(
            f"{path} cannot be read as a raster ({err})",
            "rerun the scan for its mosaic, or move its folder out of mosaics/",
        ) from None


def _times_from_gpkg(out: Path) -> dict[str, tuple[np.datetime64, np.datetime64]]:
    """mosaic_id → (earliest start, latest stop) of its scenes, from the GeoPackage."""
    gpkg = out / GPKG
    if not gpkg.is_file():
        return {}
    import pyogrio

    from scanner.outputs.gpkg_tx import recover

    recover(gpkg)  # an update a killed scan left unfinished fails GDAL's read-only open
    if "scenes" not in {name for name, _ in pyogrio.list_layers(gpkg)}:
        return {}
    df = pyogrio.read_dataframe(
        gpkg, layer="scenes", columns=["mosaic_id", "start", "stop"], read_geometry=False
    )
    if df.empty:
        return {}
    grouped = df.groupby("mosaic_id").agg(start=("start", "min"), stop=("stop", "max"))
    return {
        str(mid): (_naive_utc(row.start), _naive_utc(row.stop)) for mid, row in grouped.iterrows()
    }


def _naive_utc(value) -> np.datetime64:
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.to_datetime64()).astype("datetime64[ns]")


def _times_from_rgb(folder: Path, mosaic_id: str) -> tuple[np.datetime64, np.datetime64] | None:
    """(start, stop) from the RGB mosaic COG's ``start``/``stop`` tags, if it has them."""
    rgb = folder / f"{mosaic_id}_rgb.tif"
    if not rgb.is_file():
        return None
    import rasterio

    with rasterio.open(rgb) as src:
        tags = src.tags()
    if "start" not in tags:
        return None
    start = _naive_utc(tags["start"])
    return start, _naive_utc(tags.get("stop", tags["start"]))


def list_mosaics(out: Path) -> list[MosaicEntry]:
    """Every mosaic of ``out`` with a probability raster, sorted by sensing start then id.

    A mosaic folder without ``<id>_probability.tif`` (a scan still writing it) is skipped with a
    warning; a mosaic with no sensing time anywhere is a UsageError.
    """
    root = out / MOSAICS
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    times = _times_from_gpkg(out) if folders else {}
    entries: list[MosaicEntry] = []
    for folder in folders:
        mid = folder.name
        if not (folder / f"{mid}_probability.tif").is_file():
            log.warning("skipping %s: no %s_probability.tif in it", folder, mid)
            continue
        rasters = tuple(
            (var, read_raster_ref(folder / f"{mid}_{var}.tif"))
            for var in VARIABLES
            if (folder / f"{mid}_{var}.tif").is_file()
        )
        when = times.get(mid) or _times_from_rgb(folder, mid)
        if when is None:
            raise UsageError(
                f"mosaic {mid} has no sensing time: no row in {out / GPKG}'s scenes layer and "
                f"no start tag in {folder / (mid + '_rgb.tif')}",
                "rerun the scan for its scenes, or move its folder out of mosaics/",
            )
        entries.append(MosaicEntry(mid, when[0], when[1], rasters))
    entries.sort(key=lambda e: (e.start, e.mosaic_id))
    return entries


def read_block(
    ref: RasterRef, block: Grid, crs_wkt: str, resampling: str = "nearest"
) -> np.ndarray:
    """The raster's band 1 on ``block`` (a piece of the cube's grid in ``crs_wkt``), float32,
    NaN where the raster has no data or does not reach.

    Same CRS and pixel edges: a plain windowed read (exact values). Otherwise the raster is
    warped onto the block with GDAL (``resampling``: a ``rasterio.enums.Resampling`` name).
    """
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    out = np.full((block.height, block.width), np.nan, dtype=np.float32)
    dst_crs = CRS.from_wkt(crs_wkt)
    with rasterio.open(ref.path) as src:
        offset = aligned_offset(block, Affine(*ref.transform)) if src.crs == dst_crs else None
        if offset is not None:
            part = overlap(*offset, block.height, block.width, src.height, src.width)
            if part is None:
                return out
            (sr, sc), (dr, dc), (h, w) = part
            data = src.read(1, window=Window(sc, sr, w, h), masked=True)
            out[dr : dr + h, dc : dc + w] = data.astype(np.float32).filled(np.nan)
            return out
        with WarpedVRT(
            src,
            crs=dst_crs,
            transform=block.transform,
            width=block.width,
            height=block.height,
            resampling=Resampling[resampling],
            src_nodata=src.nodata if src.nodata is not None else np.nan,
            nodata=np.nan,
            dtype="float32",
        ) as vrt:
            data = vrt.read(1, masked=True)
    return data.astype(np.float32).filled(np.nan)
