"""The single writer of shared state: the record, ``detections.gpkg`` and the STAC catalog.

Runs in the scan's own process only (the runner calls :meth:`Publisher.done` /
:meth:`Publisher.failed` / :meth:`Publisher.stage_done` on the client as mosaics finish). A
single writer needs no cross-process locking, works on any cluster whose workers share the
output filesystem, and keeps workers stateless: a killed worker never leaves a half-written
shared file behind. Workers write only per-mosaic files under unique names.

Finished mosaics are written in batches: ``publish_batch`` of them, or fewer once the oldest
has waited ``publish_interval_s``, go into ``detections.gpkg`` and the STAC catalog in one
transaction, and only then are their scenes marked processed in the record. The writer spends
at most a fifth of the time writing (:func:`batch_due`), so batches grow as the archive does.
Every GeoPackage transaction copies the file (crash safety), so one per mosaic would make a
backfill into a large archive quadratic (``benchmarks/bench_publish.py``). A mosaic that has finished but is
not yet written is simply redone by the next run if this one is killed; :meth:`flush` writes
what is pending when the run ends or stops. If a batch cannot be written, its mosaics are
written one by one, so a bad mosaic fails only itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from polarscan.common.errors import FileLockedError, as_disk_full
from polarscan.common.versions import package_versions
from scanner.mosaic.result import MosaicResult
from scanner.record import SceneStatus
from scanner.record.fetches import FetchRow
from scanner.scan.quota import QuotaGuard
from scanner.scan.stages import MosaicJob, RunContext, StageResult
from scanner.scan.summary import Detection, Failure, Progress, ScanSummary

log = logging.getLogger(__name__)


def gpkg_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / "detections.gpkg"


class Publisher:
    """Writes each finished mosaic's rows and marks, and keeps the run's summary."""

    def __init__(
        self,
        ctx: RunContext,
        record: Any,
        summary: ScanSummary,
        planned: list[MosaicJob],
        lock: Any = None,
        quota: QuotaGuard | None = None,
    ) -> None:
        self.ctx = ctx
        self.record = record
        self.summary = summary
        self.lock = lock  # the run lock, refreshed as mosaics finish (long backfills)
        self.quota = quota  # the monthly budget, checked before each mosaic is submitted
        self.fetched_bytes = 0  # recorded by this run
        # mosaic id → stages whose bytes are recorded (kept to the end: a stage's result may
        # reach the client after its chain's last)
        self._recorded: dict[str, set[str]] = {}
        # the progress lines count every planned mosaic, whether it is published or fails
        scenes = sum(len(j.scenes) for j in planned)
        self.progress = Progress(len(planned), scenes, time.monotonic())
        self.pending: list[tuple[MosaicJob, StageResult]] = []  # finished, not yet written
        self._oldest = 0.0  # time.monotonic() when the oldest pending mosaic arrived
        self._last_write_s = 0.0  # how long the last batch took to write
        self._last_write_end = 0.0  # time.monotonic() when it was written

    # --- runner hooks ---------------------------------------------------------------------

    def admit(self, job: MosaicJob) -> bool:
        """Whether ``job`` may start: it fits in the month's budget (:class:`QuotaGuard`), else
        it is deferred to a later run (released, still pending) and the runner submits no
        more of it."""
        if self.quota is None or self.quota.admit(job):
            return True
        self.defer([job])
        self.progress.drop(len(job.scenes))  # planned, but no longer this run's to finish
        return False

    def defer(self, jobs: list[MosaicJob]) -> None:
        """Leave ``jobs`` to a later run: their claims released at once, their scenes still
        pending (no attempt spent), counted as deferred in the summary."""
        ids = [s.id for job in jobs for s in job.scenes]
        if not ids:
            return
        self.record.release(self.ctx.run_id, ids)
        self.summary = self.summary.add_deferred(len(ids))
        log.warning("monthly quota: %d mosaic(s) of %d scene(s) deferred to a later run",
                    len(jobs), len(ids))  # fmt: skip

    def _spent(self, job: MosaicJob, rows: tuple[FetchRow, ...]) -> None:
        """Record the bytes of ``rows`` not recorded yet (per stage: a result carries its
        earlier stages' rows too)."""
        done = self._recorded.setdefault(job.mosaic_id, set())
        new = [r for r in rows if r.stage not in done]
        if not new:
            return
        self.record.add_fetches(new)
        done.update(r.stage for r in new)
        n = sum(r.bytes for r in new)
        self.fetched_bytes += n
        if self.quota is not None:
            self.quota.spent(job, n)

    def _finished(self, job: MosaicJob) -> None:
        if self.quota is not None:
            self.quota.finished(job)

    def stage_done(self, job: MosaicJob, stage: str, res: StageResult) -> None:
        """The bytes a stage fetched go to the record at once; after the download stage, the
        record says where each product lies."""
        self._spent(job, res.fetched)
        if stage != "download":
            return
        for scene, path in zip(job.scenes, res.paths, strict=False):
            self.record.mark(scene.id, SceneStatus.DOWNLOADED, local_path=path,
                             run_id=self.ctx.run_id, source=scene.source)  # fmt: skip

    def done(self, job: MosaicJob, res: StageResult) -> None:
        """A mosaic finished its stages: queue it, and write the batch when it is due."""
        self._spent(job, res.fetched)
        self._finished(job)
        if not self.pending:
            self._oldest = time.monotonic()
        self.pending.append((job, res))
        self._heartbeat(job)
        config = self.ctx.config
        now = time.monotonic()
        if batch_due(len(self.pending), now - self._oldest, self._last_write_s,
                     now - self._last_write_end, config.publish_batch,
                     config.publish_interval_s):  # fmt: skip
            self.flush()

    def flush(self) -> None:
        """Write every pending mosaic (one transaction; one by one if that fails)."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        t0 = time.monotonic()
        try:
            written = self.publish_mosaics([res.result for _, res in batch])
            self._last_write_end = time.monotonic()
            self._last_write_s = self._last_write_end - t0
        except Exception as err:  # noqa: BLE001 - decided per mosaic below
            # a full disk (it stops the run) or a file another process holds: writing mosaic
            # by mosaic would meet it again, each one
            again = isinstance(err, FileLockedError) or as_disk_full(err, self.ctx.out_dir)
            if len(batch) == 1 or again:
                for job, _ in batch:
                    self.failed(job, "publish", err)
                return
            log.warning("writing %d mosaics at once failed (%s: %s); writing them one by one",
                        len(batch), type(err).__name__, err)  # fmt: skip
            for job, res in batch:
                try:
                    written = self.publish_mosaics([res.result])
                except Exception as one:  # noqa: BLE001 - a failed publish fails only this mosaic
                    self.failed(job, "publish", one)
                else:
                    self._processed(job, res, written)
            return
        for job, res in batch:
            self._processed(job, res, written)

    def _processed(self, job: MosaicJob, res: StageResult, written: dict[str, str]) -> None:
        mosaic = res.result
        hits = mosaic.detected(self.ctx.card.threshold)
        outputs = {**mosaic.rasters, **written}
        for scene, path in zip(job.scenes, res.paths, strict=False):
            self.record.mark(scene.id, SceneStatus.PROCESSED, outputs=outputs, local_path=path,
                             run_id=self.ctx.run_id, source=scene.source)  # fmt: skip
        self.summary = self.summary.add_mosaic(
            job.mosaic_id,
            n_scenes=len(job.scenes),
            n_windows=len(mosaic.probabilities),
            detections=detection_summaries(mosaic, hits),
            mosaic_dir=str(self.ctx.mosaic_dir(job.mosaic_id)),
            ran_on=res.ran_on,
            timings=res.timings,
        )

    def failed(self, job: MosaicJob, stage: str, err: BaseException) -> None:
        """Record the mosaic's scenes as failed. A file another process kept locked is not the
        scenes' fault: no attempt is counted. Nor is a full disk (or file-size limit), the
        machine's fault, and the run stops here with a
        :class:`~polarscan.common.errors.DiskFullError` (every later write would fail too)."""
        try:
            self._spent(job, tuple(getattr(err, "fetched", ())))  # a failure still spent them
        except Exception as why:  # noqa: BLE001 - the failure itself must still be recorded
            log.warning("could not record the bytes %s fetched: %s", job.mosaic_id, why)
        self._finished(job)
        full = as_disk_full(err, self.ctx.out_dir)
        message = f"{stage}: {type(err).__name__}: {err}" if full is None else f"{stage}: {full}"
        log.error("mosaic %s failed at %s", job.mosaic_id, message)
        ours = full is None and not isinstance(err, FileLockedError)  # else the machine's fault
        for scene in job.scenes:
            self.record.mark(scene.id, SceneStatus.FAILED, error=message, attempt=ours,
                             run_id=self.ctx.run_id, source=scene.source)  # fmt: skip
        failure = Failure(job.mosaic_id, tuple(s.name for s in job.scenes), message)
        self.summary = self.summary.add_failure(failure)
        if stage != "publish":  # a publish failure's mosaic was counted when it finished
            self._heartbeat(job)
        if full is not None:
            raise full

    def _heartbeat(self, job: MosaicJob) -> None:
        log.info("%s", self.progress.update(len(job.scenes), time.monotonic()))
        if self.lock is not None:
            self.lock.refresh()

    # --- the shared files -----------------------------------------------------------------

    def publish_mosaics(self, mosaics: list[MosaicResult]) -> dict[str, str]:
        """Add the mosaics' rows to ``detections.gpkg`` (replacing a previous run's) in one
        transaction, then their items to the STAC catalog."""
        from scanner.forecast import find_polar_lows
        from scanner.outputs.gpkg import write_results
        from scanner.outputs.gpkg_forecast import forecast_update
        from scanner.outputs.stac import write_stac

        prov = self.ctx.provenance
        # polar lows (merged detections) and their tracks, in the same GeoPackage transaction
        found = [low for m in mosaics for low in find_polar_lows(m, prov)]
        lows = forecast_update(found, [m.mosaic_id for m in mosaics], self.ctx.config.tracking)
        gpkg = write_results(gpkg_path(self.ctx.out_dir), mosaics, prov, also=[lows])
        items = [replace(m, rasters={**m.rasters, "detections": str(gpkg)}) for m in mosaics]
        stac = write_stac(self.ctx.out_dir, items, prov)
        log.info("wrote %d mosaic(s) to detections.gpkg and the STAC catalog", len(mosaics))
        return {"gpkg": str(gpkg), "stac": str(stac)}

    def publish_run(self) -> None:
        """The run's row in the GeoPackage's ``runs`` layer (informative: never fails the run)."""
        from scanner.outputs.gpkg import write_results

        s, c = self.summary, self.summary.counts
        run = {
            "run_id": s.run_id,
            "started": s.started,
            "finished": s.finished,
            "status": s.status,
            "model_id": self.ctx.provenance.model_id,
            "n_scenes": c.processed + c.failed,
            "n_mosaics": c.mosaics,
            "n_windows": c.windows,
            "n_detections": c.detections,
            "n_failed": c.failed,
            "parameters": {"source": s.source, "aoi": s.aoi, **s.window},
            "versions": package_versions(),
            "timings": s.timings,
            "errors": [f.to_dict() for f in s.failures],
        }
        try:
            write_results(gpkg_path(self.ctx.out_dir), [], self.ctx.provenance, run=run)
        except Exception as err:  # noqa: BLE001 - the run row is informative only
            log.warning("could not write the run to the GeoPackage: %s", err)
        self.publish_morning()

    def publish_morning(self) -> None:
        """The forecaster's products of the run: QGIS project, report, notifications (each
        informative: a failure is logged and recorded in the summary, never fails the run)."""
        from scanner.outputs.morning import write_morning

        done = write_morning(self.ctx.out_dir, self.summary, self.ctx.config)
        self.summary = replace(self.summary, outputs={**self.summary.outputs, **done})


#: the largest share of the run's wall time the single writer spends writing batches: after a
#: write of T seconds the next batch waits at least T * (1 - share) / share
WRITE_SHARE = 0.2


def batch_due(
    pending: int,
    waited_s: float,
    last_write_s: float,
    since_write_s: float,
    batch: int,
    interval_s: float,
) -> bool:
    """Whether the pending mosaics are written now: ``batch`` of them, or the oldest has waited
    ``interval_s`` — and not before the writer has rested ``last_write_s * 4`` (at most a fifth
    of the time writing). Each write copies the GeoPackage, so on a large archive the batches
    grow by themselves instead of the writer falling behind the workers. ``batch`` 1 asks for
    each mosaic as it finishes: no rest then."""
    if pending == 0 or (pending < batch and waited_s < interval_s):
        return False
    return batch == 1 or since_write_s >= last_write_s * (1 - WRITE_SHARE) / WRITE_SHARE


def detection_summaries(mosaic: MosaicResult, indices) -> list[Detection]:
    """Centre (lon, lat) and probability of the given windows, for the run summary."""
    from affine import Affine
    from pyproj import Transformer

    if len(indices) == 0:
        return []
    to_lonlat = Transformer.from_crs(mosaic.crs, "EPSG:4326", always_xy=True)
    transform = Affine(*tuple(mosaic.transform)[:6])
    out = []
    for i in indices:
        w = mosaic.windows[int(i)]
        c = w.crop_footprint(transform).centroid
        lon, lat = to_lonlat.transform(c.x, c.y)
        p = float(mosaic.probabilities[int(i)])
        out.append(Detection(mosaic.mosaic_id, w.id, p, float(lon), float(lat)))
    return out
