"""``detections.gpkg``: the layers a forecaster opens in QGIS, accumulating night after night.

Layers (all in the output CRS, by default the mosaics' EPSG:3413):
- ``detections``: crop footprints of windows at or above the threshold, with probability,
  threshold, mosaic id, scene names, sensing start/stop, model id, run id;
- ``windows``: every scored window (same columns plus ``detected``);
- ``scenes``: scene footprints with the mosaic they went into and its highest probability;
- ``runs``: one row per run (parameters, versions, counts, timings as JSON), no geometry;
- ``layer_styles``: default QGIS styles (:mod:`scanner.outputs.styles`).

Written as GeoPackage 1.2 (GDAL ``VERSION=1.2``): QGIS 3.22 (GDAL 3.6) warns about the 1.4 that
recent GDAL writes by default.

Updates are crash-safe by copy-on-write: the file is copied to a temporary name beside it, the
mosaic's old rows are deleted there (plain SQL: the GeoPackage delete triggers need no spatial
functions), the new rows appended with pyogrio, the copy checked with ``PRAGMA quick_check`` and
renamed over the original. A crash at any point leaves the previous file intact, and re-running a
mosaic replaces its rows instead of duplicating them. The copy costs O(file size) per update, so
callers should write all mosaics of a run in one call. An advisory lock (``<gpkg>.lock``)
serialises writers across processes; readers (QGIS) are never blocked and always see a complete
file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import ProcessingError, UsageError
from scanner.outputs.styles import STYLE_COLUMNS, STYLE_NAME, style_rows
from scanner.tiling import Window

GPKG_VERSION = "1.2"
FEATURE_LAYERS = ("detections", "windows", "scenes")
GEOMETRY_TYPES = {"detections": "Polygon", "windows": "Polygon", "scenes": "MultiPolygon"}
RUN_COLUMNS = (
    "run_id",
    "started",
    "finished",
    "status",
    "model_id",
    "n_scenes",
    "n_mosaics",
    "n_windows",
    "n_detections",
    "n_failed",
    "parameters",
    "versions",
    "timings",
    "errors",
    "extra",
)


@dataclass(frozen=True)
class SceneRecord:
    """A scene as the outputs describe it (``footprint`` in lon/lat, times UTC)."""

    name: str
    start: datetime
    stop: datetime
    footprint: Any  # shapely geometry, EPSG:4326


@dataclass
class MosaicResult:
    """Everything one scored mosaic contributes to the GeoPackage."""

    mosaic_id: str
    crs: Any  # anything pyproj understands ("EPSG:3413", rasterio CRS, WKT)
    transform: Any  # affine of the mosaic grid
    windows: Sequence[Window]
    probabilities: Sequence[float]
    threshold: float
    model_id: str
    run_id: str
    scenes: Sequence[SceneRecord] = field(default_factory=list)

    @property
    def start(self) -> datetime | None:
        return min((s.start for s in self.scenes), default=None)

    @property
    def stop(self) -> datetime | None:
        return max((s.stop for s in self.scenes), default=None)


# ------------------------------------------------------------------------- frames (pure)


def _utc(values) -> Any:
    import pandas as pd

    return pd.to_datetime(pd.Series(list(values), dtype="object"), utc=True)


def windows_frame(result: MosaicResult):
    """GeoDataFrame of every scored window of one mosaic (crop footprints, mosaic CRS)."""
    import geopandas as gpd
    import pandas as pd

    if len(result.windows) != len(result.probabilities):
        raise UsageError(
            f"mosaic {result.mosaic_id}: {len(result.windows)} windows but "
            f"{len(result.probabilities)} probabilities",
            "pass one probability per window",
        )
    n = len(result.windows)
    probs = np.asarray(result.probabilities, dtype=np.float64)
    names = ",".join(s.name for s in result.scenes)
    data = {
        "mosaic_id": pd.Series([result.mosaic_id] * n, dtype="object"),
        "window_id": pd.Series([w.id for w in result.windows], dtype="object"),
        "crop_row": pd.Series([w.crop_row for w in result.windows], dtype="int64"),
        "crop_col": pd.Series([w.crop_col for w in result.windows], dtype="int64"),
        "crop_px": pd.Series([w.crop_size for w in result.windows], dtype="int64"),
        "probability": pd.Series(probs, dtype="float64"),
        "threshold": pd.Series([float(result.threshold)] * n, dtype="float64"),
        "detected": pd.Series(probs >= result.threshold, dtype="bool"),
        "scenes": pd.Series([names] * n, dtype="object"),
        "start": _utc([result.start] * n),
        "stop": _utc([result.stop] * n),
        "model_id": pd.Series([result.model_id] * n, dtype="object"),
        "run_id": pd.Series([result.run_id] * n, dtype="object"),
    }
    geoms = [w.crop_footprint(result.transform) for w in result.windows]
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=result.crs), crs=result.crs)


def detections_frame(result: MosaicResult):
    """The windows at or above the threshold."""
    frame = windows_frame(result)
    return frame[frame["detected"]].drop(columns="detected").reset_index(drop=True)


def scenes_frame(result: MosaicResult):
    """Scene footprints (reprojected to the mosaic CRS) with their mosaic's results."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    probs = np.asarray(result.probabilities, dtype=np.float64)
    n = len(result.scenes)
    data = {
        "scene_name": pd.Series([s.name for s in result.scenes], dtype="object"),
        "mosaic_id": pd.Series([result.mosaic_id] * n, dtype="object"),
        "start": _utc([s.start for s in result.scenes]),
        "stop": _utc([s.stop for s in result.scenes]),
        "max_probability": pd.Series(
            [float(probs.max()) if probs.size else float("nan")] * n, dtype="float64"
        ),
        "n_windows": pd.Series([len(probs)] * n, dtype="int64"),
        "n_detections": pd.Series([int((probs >= result.threshold).sum())] * n, dtype="int64"),
        "model_id": pd.Series([result.model_id] * n, dtype="object"),
        "run_id": pd.Series([result.run_id] * n, dtype="object"),
    }
    # densify first: straight lon/lat edges are curves in a polar stereographic grid
    lonlat = [shapely.segmentize(s.footprint, 0.1) for s in result.scenes]
    geoms = gpd.GeoSeries(lonlat, crs="EPSG:4326").to_crs(result.crs)
    # parts split at the antimeridian touch again in a polar grid: merge them
    geoms = geoms.apply(lambda g: _multi(shapely.make_valid(shapely.union_all([g]))))
    return gpd.GeoDataFrame(data, geometry=geoms, crs=result.crs)


def _multi(geom):
    """Scene footprints may be split at the antimeridian: store every one as a MultiPolygon."""
    from shapely.geometry import MultiPolygon

    if geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    if geom.geom_type == "MultiPolygon":
        return geom
    return MultiPolygon([g for g in getattr(geom, "geoms", []) if g.geom_type == "Polygon"])


def runs_frame(run: Mapping[str, Any]):
    """One-row DataFrame (no geometry) of a run record; nested values become JSON text and
    keys outside :data:`RUN_COLUMNS` go into ``extra``."""
    import pandas as pd

    if not run.get("run_id"):
        raise UsageError("run record has no run_id", "pass {'run_id': ..., ...}")
    extra = {k: v for k, v in run.items() if k not in RUN_COLUMNS}
    row: dict[str, Any] = {}
    for col in RUN_COLUMNS:
        v = extra if col == "extra" else run.get(col)
        if col in ("started", "finished"):
            row[col] = _utc([v])
        elif col.startswith("n_"):
            row[col] = pd.Series([int(v) if v is not None else -1], dtype="int64")
        elif isinstance(v, (dict, list, tuple)):
            row[col] = pd.Series([json.dumps(v, default=str, sort_keys=True)], dtype="object")
        else:
            row[col] = pd.Series([None if v is None else str(v)], dtype="object")
    return pd.DataFrame(row)


# --------------------------------------------------------------------------------- IO


@contextlib.contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    lock = path.with_name(f".{path.name}.lock")  # hidden: not a layer users should see
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}


def _delete(path: Path, where: Sequence[tuple[str, str, Sequence[str]]]) -> None:
    """``DELETE FROM table WHERE column IN (...)`` for each (table, column, values), one
    transaction."""
    present = _tables(path)
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        for table, column, values in where:
            if table in present and values:
                marks = ",".join("?" * len(values))
                con.execute(f'DELETE FROM "{table}" WHERE "{column}" IN ({marks})', list(values))


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
            "choose another --out or fix its permissions",
        ) from None
    if path.exists():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
                app = con.execute("PRAGMA application_id").fetchone()[0]
        except sqlite3.DatabaseError:
            app = None
        if app != 0x47504B47:  # "GPKG"
            raise UsageError(
                f"{path} exists but is not a GeoPackage",
                "move it away or choose another --out",
            )


def write_results(
    gpkg_path: str | Path,
    results: Sequence[MosaicResult],
    run: Mapping[str, Any] | None = None,
) -> Path:
    """Add (or replace) the rows of ``results``' mosaics and the ``run`` record, atomically.

    Rows of a mosaic id already in the file are deleted first, so re-running a mosaic never
    duplicates it. The file's CRS is the first writer's; later mosaics are reprojected to it.
    """
    import pandas as pd

    path = Path(gpkg_path)
    _check_writable(path)
    with _writer_lock(path):
        exists = path.exists()
        crs = _layer_crs(path) if exists else None
        if crs is None:
            crs = results[0].crs if results else "EPSG:3413"
        frames: dict[str, list] = {layer: [] for layer in FEATURE_LAYERS}
        for res in results:
            frames["detections"].append(detections_frame(res).to_crs(crs))
            frames["windows"].append(windows_frame(res).to_crs(crs))
            frames["scenes"].append(scenes_frame(res).to_crs(crs))
        ids = [r.mosaic_id for r in results]
        try:
            with atomic_path(path) as final_tmp, _gpkg_named(final_tmp) as tmp:
                if exists:
                    shutil.copyfile(path, tmp)
                    present = _tables(tmp)
                    where = [(layer, "mosaic_id", ids) for layer in FEATURE_LAYERS]
                    if run is not None:
                        where.append(("runs", "run_id", [str(run["run_id"])]))
                    where.append(("layer_styles", "styleName", [STYLE_NAME]))
                    _delete(tmp, where)
                else:
                    present = set()
                for layer in FEATURE_LAYERS:
                    frame = _concat(frames[layer], layer, crs)
                    if len(frame) or layer not in present:
                        _append(tmp, frame, layer, GEOMETRY_TYPES[layer], create=not tmp.exists())
                if run is not None:
                    _append(tmp, runs_frame(run), "runs", None, create=False)
                styles = pd.DataFrame(style_rows(), columns=list(STYLE_COLUMNS))
                styles["update_time"] = pd.to_datetime(styles["update_time"], utc=True)
                _append(tmp, styles, "layer_styles", None, create=False)
                _normalise_datetimes(tmp)
                _quick_check(tmp)
        except (UsageError, ProcessingError):
            raise
        except Exception as err:
            raise ProcessingError(
                f"could not update {path}: {err}", "the previous file is intact; re-run the scan"
            ) from err
    return path


def _concat(parts: list, layer: str, crs):
    import geopandas as gpd
    import pandas as pd

    if parts:
        return pd.concat(parts, ignore_index=True)
    # an empty layer still needs its schema: build it from an empty result
    empty = MosaicResult("", crs, None, [], [], 0.5, "", "", [])
    return {"detections": detections_frame, "windows": windows_frame, "scenes": scenes_frame}[
        layer
    ](empty).pipe(lambda f: gpd.GeoDataFrame(f, geometry="geometry", crs=crs))


DATETIME_COLUMNS = {
    "detections": ("start", "stop"),
    "windows": ("start", "stop"),
    "scenes": ("start", "stop"),
    "runs": ("started", "finished"),
    "layer_styles": ("update_time",),
}


def _normalise_datetimes(path: Path) -> None:
    """Write every DATETIME as ``YYYY-MM-DDTHH:MM:SS.SSSZ``, the form the GeoPackage spec
    requires. Recent GDAL drops a zero millisecond part, which GDAL 3.6 (QGIS 3.22 on Debian)
    reads with a "Non-conformant content" warning per row."""
    present = _tables(path)
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        _register_gpkg_functions(con)
        for table, cols in DATETIME_COLUMNS.items():
            if table not in present:
                continue
            for col in cols:
                sql = (
                    'UPDATE "{t}" SET "{c}" = substr("{c}", 1, 19) || \'.000Z\' '
                    "WHERE \"{c}\" GLOB '????-??-??T??:??:??Z'"
                )
                con.execute(sql.format(t=table, c=col))


def _register_gpkg_functions(con: sqlite3.Connection) -> None:
    """The SQL functions GDAL's R-tree triggers mention (``ST_IsEmpty``, ``ST_MinX``…), read
    from the GeoPackage geometry header, so that plain-SQL updates can run. Our updates touch
    no geometry, so the triggers do not fire; the functions only have to exist and be right."""
    import struct

    def header(blob):
        if blob is None or len(blob) < 8 or blob[:2] != b"GP":
            return None, None
        flags = blob[3]
        order = "<" if flags & 1 else ">"
        kind = (flags >> 1) & 0b111
        env = struct.unpack_from(order + "4d", blob, 8) if kind else None
        return flags, env  # env: (minx, maxx, miny, maxy)

    def empty(blob):
        flags, _ = header(blob)
        return None if flags is None else (flags >> 4) & 1

    def bound(i):
        def f(blob):
            _, env = header(blob)
            return None if env is None else env[i]

        return f

    con.create_function("ST_IsEmpty", 1, empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        con.create_function(name, 1, bound(i), deterministic=True)


@contextlib.contextmanager
def _gpkg_named(tmp: Path) -> Iterator[Path]:
    """Work on ``<tmp>.gpkg`` (GDAL warns about other extensions), then move it to ``tmp``."""
    work = tmp.with_name(tmp.name + ".gpkg")
    try:
        yield work
        work.replace(tmp)
    finally:
        work.unlink(missing_ok=True)


def _quick_check(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as con:
        res = con.execute("PRAGMA quick_check").fetchone()[0]
    if res != "ok":
        raise ProcessingError(f"GeoPackage check failed: {res}", "re-run the scan")


def read_layer(gpkg_path: str | Path, layer: str):
    """A layer as a (Geo)DataFrame (for tests, reports and the STAC summary)."""
    import pyogrio

    return pyogrio.read_dataframe(gpkg_path, layer=layer)


def now_utc() -> datetime:
    return datetime.now(UTC)
