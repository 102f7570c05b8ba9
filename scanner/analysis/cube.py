"""``open_scan``: a scan archive as one lazy, dask-backed xarray Dataset on a common grid.

Opening reads headers and the GeoPackage's scene times only. Every chunk of the cube — one time
step (mosaic) by one spatial block — is one task that opens that mosaic's COG and reads (or warps)
just that block, so computing holds a few blocks in memory at a time, however many nights the
archive spans. Blocks a mosaic does not reach are NaN without a task that reads anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polarscan.common.errors import UsageError
from scanner.analysis.archive import (
    VARIABLES,
    MosaicEntry,
    RasterRef,
    check_scan_folder,
    list_mosaics,
    not_a_scan_output,
    read_block,
)
from scanner.analysis.grid import (
    Bounds,
    Grid,
    block_starts,
    check_bounds,
    check_resolution,
    intersects,
    snap_grid,
    union_bounds,
)

log = logging.getLogger(__name__)

ATTRS: dict[str, dict[str, object]] = {
    "probability": {
        "long_name": "polar-low probability of the window(s) covering the pixel (maximum)",
        "units": "1",
        "valid_range": (0.0, 1.0),
    },
    "gradcam": {
        "long_name": "Grad-CAM of the detections covering the pixel (maximum); NaN elsewhere",
        "units": "1",
    },
    "ig": {
        "long_name": "Integrated Gradients magnitude of the detections covering the pixel",
        "units": "1",
    },
}


def _import_xarray():
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray as xr
    except ImportError as err:  # pragma: no cover - both are dependencies
        raise UsageError(
            f"the data cube needs xarray and rioxarray ({err.name} is missing)",
            "pip install 'xarray>=2024.7' 'rioxarray>=0.17'",
        ) from None
    return xr


def _cube_crs(entries: list[MosaicEntry], crs) -> str:
    """The cube's CRS as WKT: ``crs`` if given, else the one CRS all mosaics share."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if crs is not None:
        try:
            return CRS.from_user_input(crs).to_wkt()
        except CRSError as err:
            raise UsageError(
                f"crs {crs!r} is not a coordinate reference system ({err})",
                "pass e.g. crs='EPSG:3413', or None for the mosaics' own CRS",
            ) from None
    found: dict[str, list[str]] = {}
    for e in entries:
        for _, ref in e.rasters:
            found.setdefault(ref.crs_wkt, []).append(Path(ref.path).name)
    if len(found) > 1:
        names = "; ".join(
            f"{CRS.from_wkt(w).to_string()}: {', '.join(sorted(set(ps))[:2])}"
            for w, ps in found.items()
        )
        raise UsageError(
            f"the mosaics are in {len(found)} different CRSs ({names})",
            "pass crs='EPSG:3413' (or another) to warp them all onto one grid",
        )
    return next(iter(found))


def _ref_bounds(ref: RasterRef, crs_wkt: str) -> Bounds:
    """The raster's bounds in the cube's CRS (densified edges when it must be transformed)."""
    if ref.crs_wkt == crs_wkt:
        return ref.bounds
    from rasterio.warp import transform_bounds

    return tuple(transform_bounds(ref.crs_wkt, crs_wkt, *ref.bounds, densify_pts=21))


def _default_resolution(entries: list[MosaicEntry]) -> float:
    spacings = {round(abs(ref.transform[0]), 6) for e in entries for _, ref in e.rasters}
    spacings |= {round(abs(ref.transform[4]), 6) for e in entries for _, ref in e.rasters}
    if len(spacings) > 1:
        raise UsageError(
            f"the mosaics have different pixel spacings ({', '.join(map(str, sorted(spacings)))})",
            "pass resolution= (CRS units) for the cube's common grid",
        )
    return float(next(iter(spacings)))


def _variable(
    xr,
    name: str,
    entries: list[MosaicEntry],
    grid: Grid,
    crs_wkt: str,
    chunks: int,
    resampling: str,
):
    """One lazy (time, y, x) dask array: a read task per chunk a mosaic reaches, NaN elsewhere."""
    import dask
    import dask.array as da
    from dask.base import tokenize

    rows, cols = block_starts(grid.height, chunks), block_starts(grid.width, chunks)
    steps = []
    for e in entries:
        ref = e.raster(name)
        where = _ref_bounds(ref, crs_wkt) if ref is not None else None
        plane = []
        for r0, h in rows:
            line = []
            for c0, w in cols:
                block = grid.block(r0, c0, h, w)
                if where is None or not intersects(where, block.bounds):
                    key = f"nan-{name}-{tokenize(e.mosaic_id, r0, c0, h, w)}"
                    task = dask.delayed(_nan_step, pure=True)(h, w, dask_key_name=key)
                    line.append(da.from_delayed(task, (1, h, w), dtype=np.float32))
                    continue
                key = f"read-{name}-{tokenize(ref, block, crs_wkt, resampling)}"
                task = dask.delayed(_read_step, pure=True)(
                    ref, block, crs_wkt, resampling, dask_key_name=key
                )
                line.append(da.from_delayed(task, (1, h, w), dtype=np.float32))
            plane.append(line)
        steps.append(plane)
    data = da.block(steps)
    return xr.Variable(("time", "y", "x"), data, attrs=dict(ATTRS[name]))


def _nan_step(h: int, w: int) -> np.ndarray:
    """A block a mosaic does not reach: NaN. Each such block is its own task (key) on purpose:
    one ``da.full`` block shared by every mosaic becomes a dependency of all the reductions,
    and dask's ordering then runs them all before combining any (a ``max`` over 200 mosaics
    held 22 GB; ``benchmarks/bench_cube.py``)."""
    return np.full((1, h, w), np.nan, dtype=np.float32)


def _read_step(ref: RasterRef, block: Grid, crs_wkt: str, resampling: str) -> np.ndarray:
    return read_block(ref, block, crs_wkt, resampling)[np.newaxis]


def open_scan(
    out: str | Path,
    *,
    crs=None,
    resolution: float | None = None,
    bounds: Bounds | None = None,
    chunks: int = 1024,
    resampling: str = "nearest",
    variables: Sequence[str] | None = None,
):
    """The scan archive ``out`` as a lazy ``xarray.Dataset`` of ``(time, y, x)`` variables.

    * ``probability``, ``gradcam`` and ``ig`` (each present if at least one mosaic has it; a
      mosaic without it is NaN there); one time step per mosaic, sorted by sensing start (UTC,
      naive ``datetime64``), with ``mosaic_id`` and ``stop`` as time coordinates. NaN outside
      each swath (and, for the saliency maps, outside the explained windows).
    * One common grid: ``crs`` (default: the mosaics' CRS, which they must share), ``resolution``
      (default: the mosaics' pixel spacing) and ``bounds`` ``(left, bottom, right, top)`` in that
      CRS (default: the union of the mosaics, snapped outward to multiples of the resolution, as
      the mosaics are). ``x``/``y`` are pixel centres; ``ds.rio.crs``, ``ds.rio.transform()`` and
      the ``spatial_ref`` coordinate follow rioxarray's conventions.
    * Dask chunks are one time step by ``chunks`` x ``chunks`` pixels. A mosaic on the grid's
      pixel edges is read as it is (exact values); otherwise it is warped with ``resampling``
      (a ``rasterio.enums.Resampling`` name). Nothing but headers is read until computed.

    A folder that is not a scan output, or mosaics in different CRSs without ``crs``, or pixel
    spacings that differ without ``resolution``, raise :class:`UsageError` with the fix.
    """
    from rasterio.enums import Resampling

    xr = _import_xarray()
    path = check_scan_folder(out)
    if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 1:
        raise UsageError(
            f"chunks {chunks!r} is not a positive whole number of pixels",
            "pass e.g. chunks=1024 (pixels per side of a spatial block)",
        )
    if resampling not in Resampling.__members__:
        raise UsageError(
            f"resampling {resampling!r} is not a rasterio resampling",
            f"pass one of {', '.join(sorted(Resampling.__members__))}",
        )
    if variables is not None:
        unknown = sorted(set(variables) - set(VARIABLES))
        if unknown:
            raise UsageError(
                f"unknown variable(s) {', '.join(unknown)}",
                f"pick among {', '.join(VARIABLES)}",
            )
    entries = list_mosaics(path)
    if not entries:
        raise not_a_scan_output(path, "no mosaics/<id>/<id>_probability.tif in it yet")
    crs_wkt = _cube_crs(entries, crs)
    res = check_resolution(resolution) if resolution is not None else None
    if res is None:
        if crs is not None and any(ref.crs_wkt != crs_wkt for e in entries for _, ref in e.rasters):
            raise UsageError(
                "the mosaics must be warped to another CRS, but no resolution was given",
                "pass resolution= in the units of that CRS (e.g. 2000.0 metres)",
            )
        res = _default_resolution(entries)
    if bounds is not None:
        grid = snap_grid(check_bounds(bounds), res, snap=False)
    else:
        union = union_bounds([_ref_bounds(ref, crs_wkt) for e in entries for _, ref in e.rasters])
        grid = snap_grid(union, res, snap=True)

    names = [
        v
        for v in VARIABLES
        if (variables is None or v in variables) and any(e.raster(v) for e in entries)
    ]
    data_vars = {n: _variable(xr, n, entries, grid, crs_wkt, chunks, resampling) for n in names}
    coords = {
        "time": ("time", np.array([e.start for e in entries], dtype="datetime64[ns]")),
        "stop": ("time", np.array([e.stop for e in entries], dtype="datetime64[ns]")),
        "mosaic_id": ("time", np.array([e.mosaic_id for e in entries], dtype=object)),
        "y": ("y", np.array(grid.ys())),
        "x": ("x", np.array(grid.xs())),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs={"source": str(path.resolve())})
    ds = ds.rio.write_crs(crs_wkt).rio.write_transform(grid.transform)
    for n in names:
        ds[n].attrs["grid_mapping"] = "spatial_ref"
        ds[n].encoding["_FillValue"] = np.nan
    log.debug("opened %s: %d mosaic(s), grid %s", path, len(entries), grid)
    return ds
