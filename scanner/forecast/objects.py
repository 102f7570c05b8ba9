"""Polar lows as objects: the detected windows of a mosaic that overlap or touch, merged.

Pure arithmetic (:func:`group_windows`, :func:`peak_centre`, :func:`weighted_centroid`) and one
reader (:func:`read_saliency_box`) of the mosaic's probability-weighted Grad-CAM COG; the
composed :func:`find_polar_lows` returns one :class:`PolarLow` per group.

The centre estimate is the peak of the probability-weighted Grad-CAM inside the group's crops
(the centroid of the pixels at the peak value, so a flat map gives the middle of its plateau);
without a usable map (no Grad-CAM raster, all NaN or zero) it falls back to the
probability-weighted centroid of the crop centres. ``centre_method`` says which was used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scanner.mosaic.result import MosaicResult, Provenance
    from scanner.tiling import Window

PEAK_RTOL = 1e-4  # pixels within this fraction of the peak value count as the peak


@dataclass(frozen=True)
class PolarLow:
    """One polar low seen in one mosaic (positions in the mosaic CRS and in lon/lat)."""

    id: str
    mosaic_id: str
    run_id: str
    model_id: str
    time: datetime  # sensing time at the centre (mid-time of the slice that holds it)
    x: float
    y: float
    lon: float
    lat: float
    crs: Any
    footprint: Any  # shapely (Multi)Polygon in the mosaic CRS: the union of the group's crops
    max_probability: float
    mean_probability: float
    n_windows: int
    window_ids: tuple[str, ...]
    centre_method: str  # "gradcam" | "centroid"
    track_id: str | None = None


def _touch(a: Window, b: Window) -> bool:
    """Crops overlap or share an edge or corner (closed pixel boxes)."""
    return (
        a.crop_row <= b.crop_row + b.crop_size
        and b.crop_row <= a.crop_row + a.crop_size
        and a.crop_col <= b.crop_col + b.crop_size
        and b.crop_col <= a.crop_col + a.crop_size
    )


def group_windows(windows: Sequence[Window]) -> list[list[int]]:
    """Indices of ``windows`` in connected groups (crops overlapping or touching, transitively),
    each group sorted, groups ordered by their first index."""
    parent = list(range(len(windows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(windows)):
        for j in range(i + 1, len(windows)):
            if _touch(windows[i], windows[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(windows)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def union_box(windows: Sequence[Window]) -> tuple[int, int, int, int]:
    """(row0, col0, row1, col1) bounding the crops (end exclusive)."""
    return (
        min(w.crop_row for w in windows),
        min(w.crop_col for w in windows),
        max(w.crop_row + w.crop_size for w in windows),
        max(w.crop_col + w.crop_size for w in windows),
    )


def crops_mask(windows: Sequence[Window], box: tuple[int, int, int, int]) -> np.ndarray:
    """Boolean (rows, cols) of ``box``: True inside any of the crops."""
    r0, c0, r1, c1 = box
    mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    for w in windows:
        mask[w.crop_row - r0 : w.crop_row - r0 + w.crop_size,
             w.crop_col - c0 : w.crop_col - c0 + w.crop_size] = True  # fmt: skip
    return mask


def peak_centre(values: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
    """(row, col) pixel-centre coordinates, relative to the array, of the centroid of the
    pixels at the masked maximum; None when nothing finite and positive is inside the mask."""
    v = np.where(mask & np.isfinite(values), values, np.nan)
    if not np.isfinite(v).any():
        return None
    peak = np.nanmax(v)
    if not peak > 0:
        return None
    rows, cols = np.nonzero(v >= peak * (1 - PEAK_RTOL))
    return float(rows.mean() + 0.5), float(cols.mean() + 0.5)


def weighted_centroid(windows: Sequence[Window], probs: Sequence[float]) -> tuple[float, float]:
    """(row, col) mosaic pixel coordinates of the probability-weighted mean of crop centres."""
    p = np.asarray(probs, dtype=np.float64)
    rows = np.array([w.crop_row + w.crop_size / 2 for w in windows])
    cols = np.array([w.crop_col + w.crop_size / 2 for w in windows])
    if p.sum() <= 0:
        return float(rows.mean()), float(cols.mean())
    return float((rows * p).sum() / p.sum()), float((cols * p).sum() / p.sum())


def read_saliency_box(path: str, box: tuple[int, int, int, int]) -> np.ndarray:
    """The (rows, cols) block ``box`` of a single-band COG, read windowed; NaN outside it."""
    import rasterio
    from rasterio.windows import Window as RWindow

    r0, c0, r1, c1 = box
    with rasterio.open(path) as ds:
        win = RWindow(c0, r0, c1 - c0, r1 - r0)
        return ds.read(1, window=win, boundless=True, fill_value=np.nan).astype(np.float32)


def find_polar_lows(mosaic: MosaicResult, prov: Provenance) -> list[PolarLow]:
    """The mosaic's polar lows: groups of windows at or above the threshold, ordered by
    descending peak probability (ids ``<mosaic>-PL01``, ``-PL02``…)."""
    import shapely
    from affine import Affine
    from pyproj import Transformer

    hits = mosaic.detected(prov.threshold)
    if len(hits) == 0:
        return []
    windows = [mosaic.windows[int(i)] for i in hits]
    probs = np.asarray(mosaic.probabilities, dtype=np.float64)[hits]
    transform = Affine(*tuple(mosaic.transform)[:6])
    to_lonlat = Transformer.from_crs(mosaic.crs, "EPSG:4326", always_xy=True)
    saliency = mosaic.rasters.get("gradcam")
    found = []
    for group in group_windows(windows):
        ws, ps = [windows[i] for i in group], probs[group]
        box = union_box(ws)
        centre, method = None, "centroid"
        if saliency:
            rc = peak_centre(read_saliency_box(saliency, box), crops_mask(ws, box))
            if rc is not None:
                centre, method = (rc[0] + box[0], rc[1] + box[1]), "gradcam"
        if centre is None:
            centre = weighted_centroid(ws, ps)
        x, y = transform @ (centre[1], centre[0])
        lon, lat = to_lonlat.transform(x, y)
        footprint = shapely.union_all([w.crop_footprint(transform) for w in ws])
        found.append((float(ps.max()), ws, ps, x, y, lon, lat, footprint, method))
    found.sort(key=lambda f: (-f[0], -f[6], f[5]))
    lows = []
    for k, (pmax, ws, ps, x, y, lon, lat, footprint, method) in enumerate(found, 1):
        lows.append(
            PolarLow(
                id=f"{mosaic.mosaic_id}-PL{k:02d}",
                mosaic_id=mosaic.mosaic_id,
                run_id=prov.run_id,
                model_id=prov.model_id,
                time=sensing_time(mosaic, lon, lat),
                x=float(x),
                y=float(y),
                lon=float(lon),
                lat=float(lat),
                crs=mosaic.crs,
                footprint=footprint,
                max_probability=pmax,
                mean_probability=float(ps.mean()),
                n_windows=len(ws),
                window_ids=tuple(w.id for w in ws),
                centre_method=method,
            )  # fmt: skip
        )
    return lows


def sensing_time(mosaic: MosaicResult, lon: float, lat: float) -> datetime:
    """Mid-time of the slice whose footprint holds (lon, lat); else of the whole mosaic."""
    from shapely.geometry import Point

    pt = Point(lon, lat)
    for s in mosaic.scenes:
        if s.footprint is not None and s.footprint.covers(pt):
            return s.start + (s.stop - s.start) / 2
    start, stop = mosaic.sensing_start, mosaic.sensing_stop
    if start is None or stop is None:
        raise ValueError(f"mosaic {mosaic.mosaic_id} has no sensing time")
    return start + (stop - start) / 2
