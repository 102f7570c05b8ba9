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
:mod:`scanner.outputs.gpkg_sql`, and crash safety from :mod:`scanner.outputs.gpkg_tx`: the file is
updated copy-on-write (the mosaic's old rows deleted in the copy, the new rows appended with
pyogrio, the copy checked and renamed over the original) under an advisory writer lock, so a
crash leaves the previous file intact and re-running a mosaic replaces its rows. The copy costs
O(file size) per update, so callers should write all mosaics of a run in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from polarscan.common.errors import ProcessingError, UsageError
from scanner.mosaic.result import MosaicResult, Provenance
from scanner.outputs import gpkg_sql
from scanner.outputs.frames import (
    FEATURE_LAYERS,
    GEOMETRY_TYPES,
    SCHEMAS,
    empty_frame,
    mosaic_frames,
    runs_frame,
)
from scanner.outputs.gpkg_tx import copy_on_write, writer_lock
from scanner.outputs.styles import STYLE_COLUMNS, STYLE_NAME, style_rows

GPKG_VERSION = "1.2"


def write_results(
    gpkg_path: str | Path,
    results: Sequence[MosaicResult],
    provenance: Provenance | None = None,
    run: Mapping[str, Any] | None = None,
    also: Sequence[Callable[[Path, Any], None]] = (),
) -> Path:
    """Add (or replace) the rows of ``results``' mosaics and the ``run`` record, atomically.

    Rows of a mosaic id already in the file are deleted first, so re-running a mosaic never
    duplicates it. The file's CRS is the first writer's; later mosaics are reprojected to it.
    Each step in ``also`` runs on the working copy (with the file's CRS) inside the same
    transaction, e.g. :func:`scanner.outputs.gpkg_forecast.forecast_update`.
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
            with copy_on_write(path) as tmp:
                present = gpkg_sql.tables(tmp) if exists else set()
                # a file this version wrote before (its index is there) had every datetime
                # normalised: only the rows written now need it, not the whole archive
                after = (
                    gpkg_sql.rowid_marks(tmp) if exists and gpkg_sql.has_index(tmp, MARK) else None
                )
                if exists:
                    ids = [r.mosaic_id for r in results]
                    where = [(layer, "mosaic_id", ids) for layer in FEATURE_LAYERS]
                    if run is not None:
                        where.append(("runs", "run_id", [str(run["run_id"])]))
                    where.append(("layer_styles", "styleName", [STYLE_NAME]))
                    gpkg_sql.delete_rows(tmp, where)
                    add_missing_columns(tmp, [lay for lay in FEATURE_LAYERS if lay in present])
                for layer in FEATURE_LAYERS:
                    frame = _concat(frames[layer], layer, crs)
                    if layer in present:
                        frame = in_file_order(tmp, layer, frame)
                    if len(frame) or layer not in present:
                        _append(tmp, frame, layer, GEOMETRY_TYPES[layer], create=not tmp.exists())
                # rows are replaced by mosaic id: indexed, a publish does not scan the archive
                gpkg_sql.create_indexes(tmp, [(layer, "mosaic_id") for layer in FEATURE_LAYERS])
                if run is not None:
                    _append(tmp, runs_frame(run), "runs", None, create=False)
                for step in also:
                    step(tmp, crs)
                _append(tmp, _styles_frame(), "layer_styles", None, create=False)
                gpkg_sql.normalise_datetimes(tmp, after=after)
                gpkg_sql.quick_check(tmp)
        except (UsageError, ProcessingError):
            raise
        except Exception as err:
            raise ProcessingError(
                f"could not update {path}: {err}", "the previous file is intact; re-run the scan"
            ) from err
    return path


#: the index a publish by this version creates (with every datetime of the file normalised)
MARK = gpkg_sql.index_name("windows", "mosaic_id")

#: SQL column type of each frame dtype (GeoPackage 1.2 data types)
_SQL_TYPES = {"object": "TEXT", "float64": "DOUBLE", "int64": "INTEGER", "bool": "BOOLEAN"}


def add_missing_columns(path: Path, layers: Sequence[str]) -> list[str]:
    """Add to each of ``layers`` of a file written by an older version the columns of its
    schema (:data:`SCHEMAS`) it lacks (e.g. ``scenes.mode``): appends must find every column
    of the new rows, and old rows keep NULL there. Returns ``layer.column`` of those added."""
    added = []
    for layer in layers:
        have = set(gpkg_sql.columns(path, layer))
        if not have:
            continue
        new = [
            (column, "DATETIME" if dtype.startswith("datetime64") else _SQL_TYPES[dtype])
            for column, dtype in SCHEMAS[layer].items()
            if column not in have
        ]
        gpkg_sql.add_columns(path, layer, new)
        added += [f"{layer}.{column}" for column, _ in new]
    return added


def in_file_order(path: Path, layer: str, frame):
    """``frame`` with its columns in the order of the layer's fields in the file: an append
    writes values by position, so a file whose columns were added later
    (:func:`add_missing_columns`) must get them in its own order."""
    order = gpkg_sql.columns(path, layer)
    cols = [c for c in order if c in frame.columns]
    rest = [c for c in frame.columns if c not in cols]  # the geometry column, under its name
    return frame[cols + rest]


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


def append_layer(path: Path, frame, layer: str, geometry_type: str | None) -> None:
    """Append ``frame`` to ``layer`` of an existing file (creating the layer if absent)."""
    _append(path, frame, layer, geometry_type, create=False)


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
