"""A tiny scan output written with rasterio and geopandas in the scan's layout (seeded, no model).

    OUT/mosaics/<id>/<id>_{rgb,probability,gradcam[,ig]}.tif   (EPSG:3413, 2 km, NaN nodata)
    OUT/detections.gpkg   layers windows, detections, scenes, runs
    OUT/stac/catalog.json

Probability values encode their place: at the pixel of global row R, column C of the 2 km
lattice whose corner is (X0, Y0), in mosaic number t, ``p = (C + 1000 R + 100000 t) / 1e6``
(float32; ``decode`` gives (t, R, C) back). Each swath has a diagonal NaN edge. Grad-CAM is
``0.5`` over one detection's crop and NaN elsewhere; the third mosaic also has an ``ig`` map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RES = 2000.0
X0, Y0 = 0.0, 100_000.0
CRS = "EPSG:3413"


@dataclass(frozen=True)
class Mosaic:
    mosaic_id: str
    start: str  # ISO UTC
    stop: str
    row0: int  # global row/col of its top-left pixel on the lattice
    col0: int
    height: int
    width: int
    windows: tuple[tuple[int, int, int, float], ...]  # (row, col, size, probability), local px
    ig: bool = False


MOSAICS = (
    Mosaic(
        "S1A_051001_06A001_20240110T050000",
        "2024-01-10T05:00:00",
        "2024-01-10T05:02:10",
        0,
        0,
        20,
        30,
        ((2, 8, 8, 0.91), (2, 16, 8, 0.62), (10, 16, 8, 0.08)),
    ),
    Mosaic(
        "S1B_040002_04B002_20240110T180000",
        "2024-01-10T18:00:00",
        "2024-01-10T18:01:05",
        10,
        20,
        25,
        20,
        ((4, 4, 8, 0.75), (12, 4, 8, 0.49)),
    ),
    Mosaic(
        "S1A_051010_06A00A_20240111T050000",
        "2024-01-11T05:00:00",
        "2024-01-11T05:01:00",
        5,
        5,
        10,
        10,
        ((1, 1, 8, 0.5),),
        ig=True,
    ),
)
THRESHOLD = 0.5
PER_DAY = {"2024-01-10": 3, "2024-01-11": 1}  # windows at or above THRESHOLD


def decode(p: float) -> tuple[int, int, int]:
    """(t, R, C) of a probability value written by :func:`write_scan`."""
    n = round(float(p) * 1e6)
    return n // 100_000, (n % 100_000) // 1000, n % 1000


def probability(m: Mosaic, t: int) -> np.ndarray:
    rows = np.arange(m.height)[:, None] + m.row0
    cols = np.arange(m.width)[None, :] + m.col0
    p = ((cols + 1000 * rows + 100_000 * t) / 1e6).astype(np.float32)
    local_r = np.arange(m.height)[:, None]
    local_c = np.arange(m.width)[None, :]
    p[local_c < local_r // 2] = np.nan  # the swath's slanted western edge
    return p


def _transform(m: Mosaic):
    from rasterio.transform import from_origin

    return from_origin(X0 + m.col0 * RES, Y0 - m.row0 * RES, RES, RES)


def _write(path: Path, data: np.ndarray, m: Mosaic, nodata, tags: dict[str, str]) -> None:
    import rasterio

    arr = data[np.newaxis] if data.ndim == 2 else data
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=m.height,
        width=m.width,
        count=arr.shape[0],
        dtype=arr.dtype,
        crs=CRS,
        transform=_transform(m),
        nodata=nodata,
        tiled=True,
        blockxsize=16,
        blockysize=16,
        compress="deflate",
    ) as dst:
        dst.write(arr)
        dst.update_tags(**tags)


def write_scan(out: Path, mosaics: tuple[Mosaic, ...] = MOSAICS) -> Path:
    """Write the scan output into ``out`` (created) and return it."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    rng = np.random.default_rng(12)
    windows = []
    scenes = []
    for t, m in enumerate(mosaics):
        folder = out / "mosaics" / m.mosaic_id
        folder.mkdir(parents=True, exist_ok=True)
        base = {"mosaic_id": m.mosaic_id, "model": "synthetic", "run_id": "run-1"}
        p = probability(m, t)
        rgb = rng.integers(1, 256, size=(3, m.height, m.width), dtype=np.uint8)
        rgb[:, np.isnan(p)] = 0
        rgb_tags = {
            "start": m.start + "+00:00",
            "stop": m.stop + "+00:00",
            "crs": CRS,
            "resolution_m": "2000",
        }
        _write(folder / f"{m.mosaic_id}_rgb.tif", rgb, m, 0, rgb_tags)
        _write(folder / f"{m.mosaic_id}_probability.tif", p, m, np.nan, base)
        cam = np.full((m.height, m.width), np.nan, np.float32)
        r, c, s, _ = max(m.windows, key=lambda w: w[3])
        cam[r : r + s, c : c + s] = 0.5
        _write(folder / f"{m.mosaic_id}_gradcam.tif", cam, m, np.nan, base)
        if m.ig:
            _write(folder / f"{m.mosaic_id}_ig.tif", cam * 0.5, m, np.nan, base)
        tr = _transform(m)
        for r, c, s, prob in m.windows:
            x0, y0 = tr @ (c, r)
            windows.append(
                dict(
                    mosaic_id=m.mosaic_id,
                    window_id=f"r{r}_c{c}",
                    crop_row=r,
                    crop_col=c,
                    crop_px=s,
                    probability=prob,
                    threshold=THRESHOLD,
                    detected=prob >= THRESHOLD,
                    scenes=f"{m.mosaic_id}_scene",
                    start=pd.Timestamp(m.start, tz="UTC"),
                    stop=pd.Timestamp(m.stop, tz="UTC"),
                    model_id="synthetic.keras",
                    run_id="run-1",
                    geometry=box(x0, y0 - s * RES, x0 + s * RES, y0),
                )
            )
        x0, y0 = tr @ (0, 0)
        scenes.append(
            dict(
                scene_name=f"{m.mosaic_id}_scene",
                mosaic_id=m.mosaic_id,
                start=pd.Timestamp(m.start, tz="UTC"),
                stop=pd.Timestamp(m.stop, tz="UTC"),
                max_probability=max(w[3] for w in m.windows),
                n_windows=len(m.windows),
                n_detections=sum(w[3] >= THRESHOLD for w in m.windows),
                model_id="synthetic.keras",
                run_id="run-1",
                geometry=box(x0, y0 - m.height * RES, x0 + m.width * RES, y0),
            )
        )
    gpkg = out / "detections.gpkg"
    win = gpd.GeoDataFrame(windows, crs=CRS)
    win.to_file(gpkg, layer="windows", driver="GPKG", engine="pyogrio")
    det = win[win["detected"]].drop(columns="detected")
    det.to_file(gpkg, layer="detections", driver="GPKG", engine="pyogrio")
    gpd.GeoDataFrame(scenes, crs=CRS).to_file(gpkg, layer="scenes", driver="GPKG", engine="pyogrio")
    runs = pd.DataFrame([dict(run_id="run-1", status="ok", n_mosaics=len(mosaics))])
    import pyogrio

    pyogrio.write_dataframe(runs, gpkg, layer="runs", driver="GPKG")
    (out / "stac").mkdir(exist_ok=True)
    (out / "stac" / "catalog.json").write_text(json.dumps({"type": "Catalog", "id": "synthetic"}))
    return out
