"""The per-mosaic stages of a scan, as plain functions: fetch → mosaic → score → explain.

Each stage takes the previous stage's small, frozen result plus the run's :class:`RunContext` and
returns the next result; none knows dask (``scanner.orchestrate`` chains them into tasks, or calls
them in a loop in sequential mode). Pixels never cross between stages: they go through files
(the mosaic COG, the raster COGs) and only paths, windows and probabilities travel.

The model is loaded once per process and cached by path (+ mtime), so a dask worker loads it on
its first task and reuses it for every later mosaic.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine

from polarscan.common.errors import ProcessingError

if TYPE_CHECKING:
    from scanner.scan_config import ScanConfig
    from scanner.sources.base import Scene
    from scanner.tiling import Window
    from training.card import ModelCard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every task needs to know about the run (small and picklable)."""

    run_id: str
    out_dir: str
    source: str
    model_path: str
    config: ScanConfig
    card: ModelCard  # the model card with the run's threshold

    @property
    def downloads_dir(self) -> Path:
        return Path(self.out_dir) / "downloads"

    def mosaic_dir(self, mosaic_id: str) -> Path:
        return Path(self.out_dir) / "mosaics" / mosaic_id


@dataclass(frozen=True)
class GroupJob:
    """One mosaic to make: consecutive slices of one datatake."""

    mosaic_id: str
    scenes: tuple[Scene, ...]

    @property
    def scene_ids(self) -> list[str]:
        return [s.id for s in self.scenes]


@dataclass(frozen=True)
class MosaicInfo:
    path: str
    transform: tuple[float, ...]  # affine coefficients (a, b, c, d, e, f)
    crs: str  # WKT
    shape: tuple[int, int]
    start: datetime
    stop: datetime
    footprint: Any  # shapely lon/lat polygon
    products: tuple[str, ...]


@dataclass(frozen=True)
class StageResult:
    """Grows stage by stage; each stage fills its part and adds its wall time."""

    job: GroupJob
    paths: tuple[str, ...] = ()
    mosaic: MosaicInfo | None = None
    windows: tuple[Window, ...] = ()
    probabilities: np.ndarray | None = None
    rasters: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    ran_on: dict[str, str] = field(default_factory=dict)  # stage → "host:pid" that ran it

    def timed(self, stage: str, t0: float, **changes) -> StageResult:
        timings = dict(self.timings)
        timings[stage] = round(time.perf_counter() - t0, 3)
        ran_on = {**self.ran_on, stage: f"{socket.gethostname()}:{os.getpid()}"}
        return replace(self, timings=timings, ran_on=ran_on, **changes)


def start(job: GroupJob) -> StageResult:
    return StageResult(job=job)


# --- stage 1: download -------------------------------------------------------------------------


def fetch(res: StageResult, ctx: RunContext) -> StageResult:
    """Download (or locate) every product of the group."""
    from scanner.sources import get_source as make_source

    t0 = time.perf_counter()
    source = make_source(ctx.source)
    if not ctx.source.startswith(("demo", "local:")):  # those serve files where they lie
        ctx.downloads_dir.mkdir(parents=True, exist_ok=True)
    paths = tuple(str(source.download(scene, ctx.downloads_dir)) for scene in res.job.scenes)
    return res.timed("download", t0, paths=paths)


# --- stage 2: mosaic ---------------------------------------------------------------------------


def mosaic(res: StageResult, ctx: RunContext) -> StageResult:
    """The group's RGB mosaic COG at ``<out>/mosaics/<id>/<id>_rgb.tif`` (written atomically)."""
    from scanner.mosaic import build_mosaic

    t0 = time.perf_counter()
    out = ctx.mosaic_dir(res.job.mosaic_id) / f"{res.job.mosaic_id}_rgb.tif"
    result = build_mosaic([Path(p) for p in res.paths], out, ctx.config.mosaic)
    crs = result.crs
    info = MosaicInfo(
        path=str(result.path),
        transform=tuple(result.transform)[:6],
        crs=crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs),
        shape=tuple(int(v) for v in result.shape[-2:]),
        start=result.start,
        stop=result.stop,
        footprint=result.footprint,
        products=tuple(_product_name(p) for p in result.products),
    )
    return res.timed("mosaic", t0, mosaic=info)


def _product_name(p: Any) -> str:
    return str(getattr(p, "name", p))


# --- stage 3: windows + inference --------------------------------------------------------------

_MODELS: dict[tuple[str, float], Any] = {}
_MODEL_LOCK = threading.Lock()


def cached_model(model_path: str):
    """The model at ``model_path``, loaded once per process (keyed by path and mtime)."""
    key = (str(Path(model_path).resolve()), Path(model_path).stat().st_mtime)
    with _MODEL_LOCK:
        if key not in _MODELS:
            from training.io import load_model

            # The client and every LocalCluster worker load the model: on a shared GPU each
            # TensorFlow would otherwise reserve nearly all its memory at first use.
            os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
            from polarscan.common.tfquiet import import_tensorflow_quietly

            import_tensorflow_quietly()
            _configure_threads()
            log.info("loading model %s", model_path)
            _MODELS.clear()  # one model per process: a new mtime replaces the old one
            _MODELS[key] = load_model(model_path)
        return _MODELS[key]


def _configure_threads() -> None:
    """Honour TF_NUM_INTRAOP_THREADS set by the orchestrator for its worker processes."""
    n = os.environ.get("TF_NUM_INTRAOP_THREADS")
    if not n:
        return
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(n))
    except (ImportError, RuntimeError, ValueError):  # already initialised or another backend
        pass


def windows_for(res: StageResult, ctx: RunContext) -> tuple[Window, ...]:
    from scanner.infer import open_valid_mask_reader
    from scanner.tiling import filter_windows, window_grid

    h, w = res.mosaic.shape
    grid = window_grid(h, w, ctx.card, overlap=ctx.config.tiling.overlap)
    reader = open_valid_mask_reader(res.mosaic.path)
    return tuple(filter_windows(grid, reader, ctx.config.tiling.max_nodata_fraction))


def score(res: StageResult, ctx: RunContext) -> StageResult:
    """Cut the mosaic into the model's windows and score every one (positive-class probability)."""
    from scanner.infer import score_windows

    t0 = time.perf_counter()
    windows = windows_for(res, ctx)
    model = cached_model(ctx.model_path)
    if windows:
        probs = np.asarray(
            score_windows(model, res.mosaic.path, list(windows), ctx.card, ctx.config.batch_size),
            dtype=np.float32,
        )
    else:
        probs = np.zeros(0, np.float32)
    log.info("%s: %d windows scored", res.job.mosaic_id, len(windows))
    return res.timed("inference", t0, windows=windows, probabilities=probs)


# --- stage 4: saliency + rasters ---------------------------------------------------------------


def explain(res: StageResult, ctx: RunContext) -> StageResult:
    """The probability raster, and saliency rasters (Grad-CAM / IG) of the windows at or above
    the threshold, as COGs beside the mosaic: ``<id>_probability.tif``, ``<id>_gradcam.tif``…"""
    from scanner.infer import read_valid_mask
    from scanner.outputs.rasters import probability_raster, saliency_raster, write_float_cog
    from scanner.saliency import explain_windows, select_for_explanation

    t0 = time.perf_counter()
    m, sal = res.mosaic, ctx.config.saliency
    h, w = m.shape
    folder = ctx.mosaic_dir(res.job.mosaic_id)
    valid = read_valid_mask(m.path)
    transform = Affine(*m.transform)
    tags = {"mosaic_id": res.job.mosaic_id, "run_id": ctx.run_id, "model": ctx.card.name}
    windows, probs = list(res.windows), res.probabilities
    rasters = {"rgb": m.path}
    prob = probability_raster(windows, probs, h, w, valid)
    path = folder / f"{res.job.mosaic_id}_probability.tif"
    write_float_cog(path, prob, transform=transform, crs=m.crs, name="probability", tags=tags)
    rasters["probability"] = str(path)
    del prob
    if sal.methods:
        floor = ctx.card.threshold if sal.min_probability is None else sal.min_probability
        chosen, weights = select_for_explanation(windows, probs, floor)
        model = cached_model(ctx.model_path)
        maps = explain_windows(
            model,
            m.path,
            chosen,
            ctx.card,
            sal.methods,
            batch_size=sal.batch_size,
            ig_steps=sal.ig_steps,
        )
        for method in sal.methods:
            raster = saliency_raster(
                chosen,
                maps[method],
                h,
                w,
                weights=weights if sal.weight == "probability" else None,
                valid=valid,
            )
            path = folder / f"{res.job.mosaic_id}_{method}.tif"
            write_float_cog(path, raster, transform=transform, crs=m.crs, name=method, tags=tags)
            rasters[method] = str(path)
    return res.timed("saliency", t0, rasters=rasters)


#: (name, function, wants a GPU, cluster-wide concurrency limit). Downloads are capped at the
#: CDSE quota of 4 connections, whatever the number of worker processes.
STAGES = (
    ("download", fetch, False, 4),
    ("mosaic", mosaic, False, None),
    ("inference", score, True, None),
    ("saliency", explain, True, None),
)


# --- client side: publish a finished mosaic -----------------------------------------------------


def model_id(ctx: RunContext) -> str:
    return Path(ctx.model_path).name


def gpkg_path(ctx: RunContext) -> Path:
    return Path(ctx.out_dir) / "detections.gpkg"


def publish_mosaic(res: StageResult, ctx: RunContext) -> dict[str, str]:
    """Add the mosaic's rows to ``detections.gpkg`` (replacing a previous run's) and its item
    to the STAC catalog. Runs in the client only: the single writer of shared files."""
    from scanner.outputs.gpkg import MosaicResult, SceneRecord, write_results

    m = require(res.mosaic, "the mosaic")
    result = MosaicResult(
        mosaic_id=res.job.mosaic_id,
        crs=m.crs,
        transform=Affine(*m.transform),
        windows=list(res.windows),
        probabilities=np.asarray(res.probabilities, dtype=np.float64),
        threshold=ctx.card.threshold,
        model_id=model_id(ctx),
        run_id=ctx.run_id,
        scenes=[SceneRecord(s.name, s.start, s.stop, s.footprint) for s in res.job.scenes],
    )
    written = {"gpkg": str(write_results(gpkg_path(ctx), [result]))}
    written.update(_publish_stac(res, ctx))
    return written


def _publish_stac(res: StageResult, ctx: RunContext) -> dict[str, str]:
    from pyproj import CRS

    from scanner.outputs.stac import MosaicItem, write_stac

    m = res.mosaic
    probs = res.probabilities if res.probabilities is not None else np.zeros(0)
    item = MosaicItem(
        mosaic_id=res.job.mosaic_id,
        footprint=m.footprint,
        start=m.start,
        stop=m.stop,
        scene_names=[s.name for s in res.job.scenes],
        model_id=model_id(ctx),
        max_probability=float(probs.max()) if probs.size else 0.0,
        assets={**res.rasters, "detections": str(gpkg_path(ctx))},
        epsg=CRS.from_user_input(m.crs).to_epsg(),
        properties={"polarscan:run_id": ctx.run_id, "polarscan:threshold": ctx.card.threshold},
    )
    return {"stac": str(write_stac(ctx.out_dir, [item]))}


def publish_run(summary: dict, ctx: RunContext) -> None:
    """The run's row in the GeoPackage's ``runs`` layer."""
    from scanner.outputs.gpkg import write_results

    c = summary["counts"]
    run = {
        "run_id": ctx.run_id,
        "started": summary.get("started"),
        "finished": summary.get("finished"),
        "status": "partial" if c["failed"] else "ok",
        "model_id": model_id(ctx),
        "n_scenes": c["processed"] + c["failed"],
        "n_mosaics": c["mosaics"],
        "n_windows": c["windows"],
        "n_detections": c["detections"],
        "n_failed": c["failed"],
        "parameters": {"source": ctx.source, "aoi": summary.get("aoi"), **summary["window"]},
        "versions": _versions(),
        "timings": summary.get("timings", {}),
        "errors": summary.get("failures", []),
    }
    write_results(gpkg_path(ctx), [], run=run)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("polarscan", "tensorflow", "keras", "rasterio", "dask", "distributed"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def detection_summaries(res: StageResult, indices) -> list[dict]:
    """Centre (lon, lat) and probability of the given windows, for the run summary."""
    from pyproj import Transformer

    if res.mosaic is None or len(indices) == 0:
        return []
    to_lonlat = Transformer.from_crs(res.mosaic.crs, "EPSG:4326", always_xy=True)
    transform = Affine(*res.mosaic.transform)
    out = []
    for i in indices:
        w = res.windows[int(i)]
        c = w.crop_footprint(transform).centroid
        lon, lat = to_lonlat.transform(c.x, c.y)
        out.append(
            {
                "mosaic": res.job.mosaic_id,
                "window": w.id,
                "probability": float(res.probabilities[int(i)]),
                "lon": float(lon),
                "lat": float(lat),
            }
        )
    return out


def run_sequentially(job: GroupJob, ctx: RunContext) -> StageResult:
    """All stages of one group in this process (tests, benchmarks)."""
    res = start(job)
    for _, func, _gpu, _limit in STAGES:
        res = func(res, ctx)
    return res


def require(value: Any, what: str) -> Any:
    if value is None:
        raise ProcessingError(f"{what} is missing", "this is a bug; rerun with -v and report it")
    return value
