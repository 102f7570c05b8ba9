"""``detections.gpkg``: the layers a forecaster opens in QGIS, accumulating night after night.

Layers (all in the output CRS, by default the mosaics' EPSG:3413):
- ``detections``: crop footprints of windows at or above the threshold, with probability,
  threshold, mosaic id, scene names, sensing start/stop, model id, run id;
- ``windows``: every scored window (same columns plus ``detected``);
- ``scenes``: scene footprints with the mosaic they went into, its mode and polarisations and
  its highest probability;
- ``runs``: one row per run (parameters, versions, counts, timings as JSON), no geometry;
- ``layer_styles``: default QGIS styles (:mod:`scanner.outputs.styles`).

Written as GeoPackage 1.2 (GDAL ``VERSION=1.2``): QGIS 3.22 (GDAL 3.6) warns about the 1.4 that
recent GDAL writes by default.

Frames come from :mod:`scanner.outputs.frames` (pure), SQL on the file from
:mod:`scanner.outputs.gpkg_sql` and :mod:`scanner.outputs.gpkg_rows`, and crash safety from
:mod:`scanner.outputs.gpkg_tx`: under an advisory writer lock, GDAL creates the layers a file
lacks (copy-on-write: a new file, or once after an upgrade), then one SQLite transaction on the
file in place deletes the mosaics' old rows and inserts the new ones, so a crash leaves the
previous content and re-running a mosaic replaces its rows. A publish costs what it writes
(and the indexes it updates), not the size of the archive.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from polarscan.common.errors import ProcessingError, UsageError
from scanner.mosaic.result import MosaicResult, Provenance
from scanner.outputs import gpkg_rows, gpkg_sql
from scanner.outputs.frames import (
    FEATURE_LAYERS,
    FORECAST_GEOMETRY_TYPES,
    GEOMETRY_TYPES,
    SCHEMAS,
    empty_frame,
    mosaic_frames,
    runs_frame,
)
from scanner.outputs.gpkg_tx import Step, copy_on_write, transaction, writer_lock
from scanner.outputs.styles import STYLE_COLUMNS, STYLE_NAME, style_rows

GPKG_VERSION = "1.2"


def write_results(
    gpkg_path: str | Path,
    results: Sequence[MosaicResult],
    provenance: Provenance | None = None,
    run: Mapping[str, Any] | None = None,
    also: Sequence[Step] = (),
) -> Path:
    """Add (or replace) the rows of ``results``' mosaics and the ``run`` record, atomically.

    Rows of a mosaic id already in the file are deleted first, so re-running a mosaic never
    duplicates it. The file's CRS is the first writer's; later mosaics are reprojected to it.
    Each step in ``also`` runs inside the same transaction, e.g.
    :func:`scanner.outputs.gpkg_forecast.forecast_update`.
    """
    if results and provenance is None:
        raise ValueError("write_results needs the provenance of the mosaics it writes")
    path = Path(gpkg_path)
    _check_writable(path)
    frames: dict[str, list] = {layer: [] for layer in FEATURE_LAYERS}
    for res in results:
        assert provenance is not None  # checked above; for the type checker
        for layer, frame in mosaic_frames(res, provenance).items():
            frames[layer].append(frame)
    with writer_lock(path):
        exists = path.exists()
        crs = (_layer_crs(path) if exists else None) or (results[0].crs if results else "EPSG:3413")
        try:
            needed = [*FEATURE_LAYERS, *(lay for step in also for lay in step.layers)]
            _create_layers(path, crs, needed, run)
            with transaction(path) as con:
                # a file this version wrote before (its index is there) had every datetime
                # normalised: only the rows written now could need it, not the whole archive
                after = gpkg_sql.rowid_marks(con) if gpkg_sql.has_index(con, MARK) else None
                ids = [r.mosaic_id for r in results]
                where = [(layer, "mosaic_id", ids) for layer in FEATURE_LAYERS]
                if run is not None:
                    where.append(("runs", "run_id", [str(run["run_id"])]))
                where.append(("layer_styles", "styleName", [STYLE_NAME]))
                gpkg_sql.delete_rows(con, where)
                add_missing_columns(con, FEATURE_LAYERS)
                for layer in FEATURE_LAYERS:
                    gpkg_rows.insert(con, layer, _concat(frames[layer], layer, crs))
                # rows are replaced by mosaic id: indexed, a publish does not scan the archive
                gpkg_sql.create_indexes(con, [(layer, "mosaic_id") for layer in FEATURE_LAYERS])
                if run is not None:
                    gpkg_rows.insert(con, "runs", runs_frame(run))
                for step in also:
                    step.apply(con, crs)
                gpkg_rows.insert(con, "layer_styles", _styles_frame())
                gpkg_sql.normalise_datetimes(con, after=after)
        except (UsageError, ProcessingError):
            raise
        except Exception as err:
            raise ProcessingError(
                f"could not update {path}: {err}", "the previous file is intact; re-run the scan"
            ) from err
    return path


def _create_layers(
    path: Path, crs: Any, layers: Sequence[str], run: Mapping[str, Any] | None
) -> None:
    """Create, empty, the ``layers`` (and ``runs`` if a ``run`` is written, and
    ``layer_styles``) that the file lacks, with GDAL, copy-on-write: a new file, or a file of
    an older version, once."""
    present = gpkg_sql.tables(path) if path.exists() else set()
    wanted = [*layers, *(["runs"] if run is not None else []), "layer_styles"]
    missing = [layer for layer in dict.fromkeys(wanted) if layer not in present]
    if not missing:
        return
    with copy_on_write(path) as work:
        for layer in missing:
            if layer == "runs":
                assert run is not None
                frame, geometry_type = runs_frame(run).iloc[:0], None
            elif layer == "layer_styles":
                frame, geometry_type = _styles_frame().iloc[:0], None
            else:
                frame = empty_frame(layer, crs)
                geometry_type = GEOMETRY_TYPES.get(layer) or FORECAST_GEOMETRY_TYPES[layer]
            _append(work, frame, layer, geometry_type, create=not work.exists())


#: the index a publish by this version creates (with every datetime of the file normalised)
MARK = gpkg_sql.index_name("windows", "mosaic_id")

#: SQL column type of each frame dtype (GeoPackage 1.2 data types)
_SQL_TYPES = {"object": "TEXT", "float64": "DOUBLE", "int64": "INTEGER", "bool": "BOOLEAN"}


def add_missing_columns(con: sqlite3.Connection, layers: Sequence[str]) -> list[str]:
    """Add to each of ``layers`` of a file written by an older version the columns of its
    schema (:data:`SCHEMAS`) it lacks (e.g. ``scenes.mode``): inserts must find every column
    of the new rows, and old rows keep NULL there. Returns ``layer.column`` of those added."""
    added = []
    for layer in layers:
        have = set(gpkg_sql.columns(con, layer))
        if not have:
            continue
        new = [
            (column, "DATETIME" if dtype.startswith("datetime64") else _SQL_TYPES[dtype])
            for column, dtype in SCHEMAS[layer].items()
            if column not in have
        ]
        gpkg_sql.add_columns(con, layer, new)
        added += [f"{layer}.{column}" for column, _ in new]
    return added


def read_layer(gpkg_path: str | Path, layer: str):
    """A layer as a (Geo)DataFrame (for tests, reports and the STAC summary)."""
    import pyogrio

    return pyogrio.read_dataframe(gpkg_path, layer=layer)


def _concat(parts: list, layer: str, crs):
    import pandas as pd

    if not parts:
        return empty_frame(layer, crs)
    return pd.concat([p.to_crs(crs) for p in parts], ignore_index=True)


def _styles_frame():
    import pandas as pd

    styles = pd.DataFrame(style_rows(), columns=list(STYLE_COLUMNS))
    styles["update_time"] = pd.to_datetime(styles["update_time"], utc=True)
    return styles


def _append(path: Path, frame, layer: str, geometry_type: str | None, create: bool) -> None:
    import pyogrio

    # the GeoPackage version is fixed when the file is created; appends keep it
    kwargs: dict = {"dataset_options": {"VERSION": GPKG_VERSION}} if create else {"append": True}
    if geometry_type:
        kwargs["geometry_type"] = geometry_type
    if layer == "layer_styles":
        kwargs["layer_options"] = {"FID": "id"}
    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", **kwargs)


def _layer_crs(path: Path) -> Any:
    import pyogrio

    for layer, _ in pyogrio.list_layers(path):
        if layer in FEATURE_LAYERS:
            return pyogrio.read_info(path, layer=layer)["crs"]
    return None


def _check_writable(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{path.name}.probe"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise UsageError(
            f"output folder {parent} is not writable ({err.strerror})",
            "choose another output folder or fix its permissions",
            key="out",
        ) from None
    if path.exists() and not gpkg_sql.is_geopackage(path):
        raise UsageError(
            f"{path} exists but is not a GeoPackage",
            "move it away or choose another output folder",
            key="out",
        )
