"""The per-mosaic stages of a scan, as plain functions: fetch → mosaic → score → explain.

Each stage takes the previous stage's small, frozen :class:`StageResult` plus the run's
:class:`RunContext` and returns the next; none knows dask (:mod:`scanner.scan.runner` chains them
into tasks, or calls them in a loop in sequential mode). Pixels never cross between stages: they
go through files (the mosaic COG, the raster COGs) and only paths, windows and probabilities
travel, inside the one :class:`~scanner.mosaic.result.MosaicResult` of the mosaic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from polarscan.common.errors import ProcessingError
from polarscan.common.meter import ByteMeter, metered
from scanner.mosaic.result import MosaicResult, Provenance, scene_records
from scanner.record.fetches import FetchRow
from scanner.scan.quota import counts_bytes
from scanner.scan.runner import Stage

if TYPE_CHECKING:
    from scanner.scan.config import ScanConfig
    from scanner.sources.base import Scene
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

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.run_id, Path(self.model_path).name, self.card.threshold)


@dataclass(frozen=True)
class MosaicJob:
    """One mosaic to make: consecutive slices of one datatake."""

    mosaic_id: str
    scenes: tuple[Scene, ...]


@dataclass(frozen=True)
class StageResult:
    """A job's progress: the downloaded paths, then the mosaic (scored, then explained), and
    the bytes each stage fetched from a remote source, per scene (``fetched``)."""

    job: MosaicJob
    paths: tuple[str, ...] = ()
    mosaic: MosaicResult | None = None
    timings: dict[str, float] = field(default_factory=dict)
    ran_on: dict[str, str] = field(default_factory=dict)  # stage → "host:pid" that ran it
    fetched: tuple[FetchRow, ...] = ()

    @property
    def fetched_bytes(self) -> int:
        return sum(f.bytes for f in self.fetched)

    def timed(self, stage: str, t0: float, **changes) -> StageResult:
        timings = {**self.timings, stage: round(time.perf_counter() - t0, 3)}
        ran_on = {**self.ran_on, stage: f"{socket.gethostname()}:{os.getpid()}"}
        return replace(self, timings=timings, ran_on=ran_on, **changes)

    @property
    def result(self) -> MosaicResult:
        if self.mosaic is None:
            raise RuntimeError(f"{self.job.mosaic_id}: the mosaic stage has not run")
        return self.mosaic


def start(job: MosaicJob) -> StageResult:
    return StageResult(job=job)


# --- download ----------------------------------------------------------------------------------


def fetch(res: StageResult, ctx: RunContext) -> StageResult:
    """Download (or locate) every product of the job; with ``access`` s3 or mount, locate it in
    CDSE's archive (``/vsis3/eodata/<key>`` or ``<mount>/<key>``), read in place later."""
    from scanner.access.eodata import configure_access
    from scanner.sources import get_source

    t0 = time.perf_counter()
    source = get_source(ctx.source)
    access = ctx.config.access
    configure_access(source, access, ctx.config.twin)  # s3/mount: a place to read, no copy
    copies = access == "download" and not ctx.source.startswith(("demo", "local:"))
    if copies:
        ctx.downloads_dir.mkdir(parents=True, exist_ok=True)  # demo/local serve files in place
    paths: list[str] = []
    rows: list[FetchRow] = []
    with spending(rows):  # a failure after some bytes still spent them
        for scene in res.job.scenes:
            if copies:
                check_free_disk(ctx.downloads_dir, scene.size, ctx.config.min_free_disk_gb)
            began, path = time.time(), None
            with metered() as meter:
                try:
                    path = source.download(scene, ctx.downloads_dir)
                finally:
                    rows += fetch_rows(ctx, "download", [scene], [path], meter, began)
            paths.append(str(path))
    return res.timed("download", t0, paths=tuple(paths), fetched=res.fetched + tuple(rows))


# --- bytes fetched (the provider's monthly quota: scanner/scan/quota.py) ----------------------


def fetch_rows(
    ctx: RunContext,
    stage: str,
    scenes: Sequence[Scene],
    paths: Sequence[str | Path | None],
    meter: ByteMeter,
    began: float,
) -> list[FetchRow]:
    """The record's rows of what ``meter`` counted for ``scenes`` (read from ``paths``) in
    ``stage``: per product path, and bytes under no path to the first scene. A download whose
    client the meter cannot see (sentinelsat) counts the size of the file it wrote since
    ``began`` (an estimate: a resume may have fetched less). Nothing for local/demo sources."""
    if not counts_bytes(ctx.source):
        return []
    access = ctx.config.access
    now = datetime.now(UTC)
    rows = []
    for i, (scene, path) in enumerate(zip(scenes, paths, strict=True)):
        measured, estimated = meter.of(str(Path(path))) if path is not None else (0, 0)
        if i == 0:
            loose = meter.of(None)
            measured, estimated = measured + loose[0], estimated + loose[1]
        if stage == "download" and access == "download" and measured + estimated == 0:
            estimated = _written_since(path, began)
        if measured + estimated:
            rows.append(FetchRow(scene.id, scene.source, stage, access, measured + estimated, now,
                                 estimated, ctx.run_id, scene.size))  # fmt: skip
    return rows


def _written_since(path: str | Path | None, began: float) -> int:
    if path is None:
        return 0
    try:
        st = Path(path).stat()
    except OSError:
        return 0
    return st.st_size if Path(path).is_file() and st.st_mtime >= began - 1 else 0


@contextlib.contextmanager
def spending(rows: list[FetchRow]) -> Iterator[None]:
    """A stage that fails takes the bytes it fetched so far to the publisher on its error
    (``err.fetched``), so the record counts them too."""
    try:
        yield
    except Exception as err:
        with contextlib.suppress(AttributeError, TypeError):
            err.fetched = (*getattr(err, "fetched", ()), *rows)  # type: ignore[attr-defined]
        raise


def check_free_disk(folder: Path, size: int | None, floor_gb: float) -> None:
    """Refuse a download of ``size`` bytes that would leave less than ``floor_gb`` free in
    ``folder`` (an unknown size counts as 1 GB, about the largest GRD product)."""
    import shutil

    free = shutil.disk_usage(folder).free
    need = size if size is not None else 10**9
    if free - need < floor_gb * 1e9:
        raise ProcessingError(
            f"downloading {need / 1e9:.2f} GB into {folder} would leave "
            f"{max(free - need, 0) / 1e9:.1f} GB free, under the floor of {floor_gb:g} GB",
            "free disk space there (old downloads, mosaics) or lower min_free_disk_gb in the "
            "scan config; the scene is retried by the next run",
        )


def remove_downloads(paths: Sequence[str], downloads_dir: Path) -> None:
    """Delete downloaded products (only those inside ``downloads_dir``; local and demo
    products, and products read in place, are never touched)."""
    import shutil

    root = downloads_dir.resolve()
    for p in map(Path, paths):
        try:
            if root in p.resolve().parents:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        except OSError as err:
            log.warning("could not remove %s: %s", p, err)


#: CDSE allows 4 connections per user, whatever the number of worker processes
FETCH = Stage("download", fetch, gpu=False, max_concurrent=4)


# --- mosaic ------------------------------------------------------------------------------------


def make_mosaic(res: StageResult, ctx: RunContext) -> StageResult:
    """The job's RGB mosaic COG at ``<out>/mosaics/<id>/<id>_rgb.tif`` (written atomically)."""
    from scanner.mosaic import build_mosaic

    t0 = time.perf_counter()
    mid = res.job.mosaic_id
    # reading in place fetches the bytes here: the S3 client's and GDAL's, per product
    in_place = ctx.config.access != "download" and counts_bytes(ctx.source)
    rows: list[FetchRow] = []
    meter = ByteMeter()
    with spending(rows), metered(meter) if in_place else contextlib.nullcontext():
        began = time.time()
        try:
            built = build_mosaic([Path(p) for p in res.paths],
                                 ctx.mosaic_dir(mid) / f"{mid}_rgb.tif", ctx.config.mosaic)  # fmt: skip
        finally:
            if in_place:
                rows += fetch_rows(ctx, "mosaic", res.job.scenes, res.paths, meter, began)
    crs = built.crs.to_wkt() if hasattr(built.crs, "to_wkt") else str(built.crs)
    mosaic = replace(
        built,
        mosaic_id=mid,
        crs=crs,
        shape=(int(built.shape[-2]), int(built.shape[-1])),
        scenes=scene_records(res.job.scenes),
        rasters={"rgb": str(built.path)},
    )
    if not ctx.config.keep_downloads:
        remove_downloads(res.paths, ctx.downloads_dir)  # the mosaic holds what the model needs
    return res.timed("mosaic", t0, mosaic=mosaic, fetched=res.fetched + tuple(rows))


MOSAIC = Stage("mosaic", make_mosaic)


# --- windows + inference -----------------------------------------------------------------------


def score(res: StageResult, ctx: RunContext) -> StageResult:
    """Cut the mosaic into the model's windows and score every one (positive-class probability)."""
    from scanner.infer import cached_model, open_valid_mask_reader, score_windows
    from scanner.tiling import filter_windows, window_grid

    t0 = time.perf_counter()
    m = res.result
    grid = window_grid(*m.shape, ctx.card, overlap=ctx.config.tiling.overlap)
    mask = open_valid_mask_reader(m.rgb_path)
    windows = tuple(filter_windows(grid, mask, ctx.config.tiling.max_nodata_fraction))
    probs = np.zeros(0, np.float32)
    if windows:
        model = cached_model(ctx.model_path, ctx.config.mixed_precision)
        probs = np.asarray(
            score_windows(model, m.rgb_path, list(windows), ctx.card, ctx.config.batch_size),
            dtype=np.float32,
        )
    log.info("%s: %d windows scored", m.mosaic_id, len(windows))
    return res.timed("inference", t0, mosaic=replace(m, windows=windows, probabilities=probs))


SCORE = Stage("inference", score, gpu=True)


# --- saliency + rasters ------------------------------------------------------------------------


def explain(res: StageResult, ctx: RunContext) -> StageResult:
    """The probability raster, and saliency rasters (Grad-CAM / IG) of the windows at or above
    the threshold, as COGs beside the mosaic: ``<id>_probability.tif``, ``<id>_gradcam.tif``…"""
    from scanner.infer import cached_model, read_valid_mask
    from scanner.outputs.rasters import probability_raster, saliency_raster, write_float_cog
    from scanner.saliency import explain_windows, select_for_explanation

    t0 = time.perf_counter()
    m, sal = res.result, ctx.config.saliency
    h, w = m.shape
    folder = ctx.mosaic_dir(m.mosaic_id)
    valid = read_valid_mask(m.rgb_path)
    transform = Affine(*tuple(m.transform)[:6])
    tags = {"mosaic_id": m.mosaic_id, "run_id": ctx.run_id, "model": ctx.card.name}
    windows, probs = list(m.windows), [float(p) for p in m.probabilities]
    rasters = dict(m.rasters)
    prob = probability_raster(windows, probs, h, w, valid)
    path = folder / f"{m.mosaic_id}_probability.tif"
    write_float_cog(path, prob, transform=transform, crs=m.crs, name="probability", tags=tags)
    rasters["probability"] = str(path)
    del prob
    if sal.methods:
        floor = ctx.card.threshold if sal.min_probability is None else sal.min_probability
        chosen, weights = select_for_explanation(windows, probs, floor)
        maps = explain_windows(cached_model(ctx.model_path), m.rgb_path, chosen, ctx.card,
                               sal.methods, batch_size=sal.batch_size, ig_steps=sal.ig_steps)  # fmt: skip
        for method in sal.methods:
            weighted = [float(x) for x in weights] if sal.weight == "probability" else None
            raster = saliency_raster(chosen, maps[method], h, w, weights=weighted, valid=valid)
            path = folder / f"{m.mosaic_id}_{method}.tif"
            write_float_cog(path, raster, transform=transform, crs=m.crs, name=method, tags=tags)
            rasters[method] = str(path)
    return res.timed("saliency", t0, mosaic=replace(m, rasters=rasters))


EXPLAIN = Stage("saliency", explain, gpu=True)

#: the chain every mosaic goes through, in order
STAGES: tuple[Stage, ...] = (FETCH, MOSAIC, SCORE, EXPLAIN)


def run_stages(job: MosaicJob, ctx: RunContext) -> StageResult:
    """All stages of one job in this process, without a runner (benchmarks, debugging)."""
    res = start(job)
    for stage in STAGES:
        res = stage.func(res, ctx)
    return res
