"""``open_detections``: the vector layers of a scan output's GeoPackage as GeoDataFrames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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


def open_detections(out: str | Path) -> ScanDetections:
    """Read the GeoPackage of the scan output ``out`` (small tables: read at once)."""
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

    def read(name: str):
        return gpd.read_file(gpkg, layer=name, engine="pyogrio")

    return ScanDetections(
        detections=read("detections"),
        windows=read("windows"),
        scenes=read("scenes"),
        runs=pyogrio.read_dataframe(gpkg, layer="runs") if "runs" in layers else None,
        polar_lows=read("polar_lows") if "polar_lows" in layers else None,
        tracks=read("tracks") if "tracks" in layers else None,
    )
