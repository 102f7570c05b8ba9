"""``open_detections``: the vector layers of a scan output's GeoPackage as GeoDataFrames."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from polarscan.common.errors import UsageError
from scanner.analysis.archive import GPKG, check_scan_folder, not_a_scan_output
from scanner.outputs.gpkg_tx import recover

if TYPE_CHECKING:
    import geopandas
    import pandas

REQUIRED = ("detections", "windows", "scenes")
OPTIONAL = ("polar_lows", "tracks")


@dataclass(frozen=True)
class ScanDetections:
    """The layers of ``detections.gpkg``: every scored window, the windows at or above the
    threshold (``detections``), the scenes (with their mosaic id and times), the ``runs`` table,
    and the ``polar_lows``/``tracks`` layers where a later stage has written them (else None).
    Times are timezone-aware UTC; geometries are in the mosaics' CRS."""

    detections: geopandas.GeoDataFrame
    windows: geopandas.GeoDataFrame
    scenes: geopandas.GeoDataFrame
    runs: pandas.DataFrame | None = None
    polar_lows: geopandas.GeoDataFrame | None = None
    tracks: geopandas.GeoDataFrame | None = None


#: the time columns each layer is filtered on: (start, end) of what a row covers
TIME_COLUMNS = {
    "detections": ("start", "stop"),
    "windows": ("start", "stop"),
    "scenes": ("start", "stop"),
    "polar_lows": ("time", "time"),
    "tracks": ("first_time", "last_time"),
}


def open_detections(
    out: str | Path,
    bbox: tuple[float, float, float, float] | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> ScanDetections:
    """Read the GeoPackage of the scan output ``out``.

    ``bbox`` (W, S, E, N in lon/lat degrees; W > E crosses 180°) keeps the rows whose geometry
    meets that area (judged in the layers' polar grid, through the GeoPackage's spatial index);
    ``since``/``until`` (UTC, ``YYYY-MM-DD[THH:MM]`` or datetimes) keep the rows whose time
    span meets ``[since, until)``: a winter over one sea without reading the whole archive.
    The ``runs`` table is read whole."""
    import geopandas as gpd
    import pyogrio
    from pyogrio.errors import DataSourceError

    path = check_scan_folder(out)
    gpkg = path / GPKG
    if not gpkg.is_file():
        raise not_a_scan_output(path, f"no {GPKG} in it")
    recover(gpkg)  # an update a killed scan left unfinished fails GDAL's read-only open
    try:
        layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    except DataSourceError as err:
        raise UsageError(
            f"{gpkg} is not a GeoPackage ({err})",
            "rerun the scan (it rebuilds the GeoPackage), or restore it from a backup",
        ) from None
    missing = [name for name in REQUIRED if name not in layers]
    if missing:
        raise UsageError(
            f"{gpkg} lacks the layer(s) {', '.join(missing)}",
            "pass the folder of a scan output (its GeoPackage has detections, windows, scenes)",
        )
    begin, end = _time_bounds(since, until)
    mask = _mask(gpkg, bbox) if bbox is not None else None

    def read(name: str):
        first, last = TIME_COLUMNS[name]
        where = []
        if begin is not None:
            where.append(f"\"{last}\" >= '{begin}'")
        if end is not None:
            where.append(f"\"{first}\" < '{end}'")
        return gpd.read_file(gpkg, layer=name, engine="pyogrio", mask=mask,
                             where=" AND ".join(where) or None)  # fmt: skip

    return ScanDetections(
        detections=read("detections"),
        windows=read("windows"),
        scenes=read("scenes"),
        runs=pyogrio.read_dataframe(gpkg, layer="runs") if "runs" in layers else None,
        polar_lows=read("polar_lows") if "polar_lows" in layers else None,
        tracks=read("tracks") if "tracks" in layers else None,
    )


def _time_bounds(since, until) -> tuple[str | None, str | None]:
    """``since``/``until`` as the GeoPackage's DATETIME text (text order is time order)."""
    from polarscan.common.dates import parse_date
    from scanner.outputs.gpkg_rows import datetime_text

    def text(value, name: str) -> str | None:
        t = parse_date(value, name)  # naive: UTC
        return None if t is None else datetime_text(t)

    begin, end = text(since, "since"), text(until, "until")
    if begin is not None and end is not None and begin >= end:
        raise UsageError(f"since ({begin}) is not before until ({end})", "swap or widen them")
    return begin, end


def _mask(gpkg: Path, bbox: tuple[float, float, float, float]):
    """The lon/lat ``bbox`` as a polygon in the CRS of the file's layers."""
    import pyogrio
    import shapely
    from pyproj import CRS, Transformer

    from scanner.aoi import AOI, ARCTIC_CRS

    area = AOI.from_bbox(*bbox).arctic_geometry  # the pole and 180° handled there
    crs = CRS.from_user_input(pyogrio.read_info(gpkg, layer="windows")["crs"])
    if crs.equals(CRS.from_user_input(ARCTIC_CRS)):
        return area
    t = Transformer.from_crs(ARCTIC_CRS, crs, always_xy=True)
    return shapely.transform(area, lambda xy: np.column_stack(t.transform(*xy.T)))
