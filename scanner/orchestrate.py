"""One scan run, end to end: validate, search, record, group, run the pipeline, publish, report.

Everything the user can get wrong is checked before any work starts (area, dates, source and its
credentials, model and card, output folder, scheduler) and raises :class:`UsageError` (exit 2).
Then the run takes the record's run lock, searches, claims the scenes that need work, groups them
into mosaics (consecutive slices of a datatake) and hands the groups to the runner
(:mod:`scanner.orchestrate_dask`: dask or sequential). As each group finishes, this process — the
only writer of shared state — publishes its rows to ``detections.gpkg`` and STAC and marks its
scenes in the record; a failed group marks its scenes failed with the error and the rest go on.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from polarscan.common.dates import parse_date
from polarscan.common.errors import UsageError
from scanner import pipeline
from scanner.orchestrate_dask import ClusterSpec, Runner, Stage
from scanner.pipeline import GroupJob, RunContext, StageResult
from scanner.scan_config import DEMO_MODEL, ScanConfig, fit_to_card

log = logging.getLogger(__name__)

FIRST_RUN_LOOKBACK = timedelta(days=1)  # --since last with no watermark yet (network sources)
OFFLINE_SOURCES = ("demo", "local")


# --- the request: area and time window ---------------------------------------------------------


@dataclass(frozen=True)
class ScanRequest:
    """Where and when to look. ``since`` is ``"last"``, a datetime, or None (= last)."""

    bbox: tuple[float, float, float, float] | None = None
    aoi_file: str | None = None
    since: str | datetime | None = None
    until: datetime | None = None

    @classmethod
    def from_args(cls, bbox=None, aoi=None, since=None, until=None) -> ScanRequest:
        since_v: str | datetime | None = None
        if since is not None:
            since_v = (
                "last"
                if since.strip().lower() == "last"
                else parse_date(since, "--since", extra_hint=" (or 'last')")
            )
        until_v = parse_date(until, "--until") if until is not None else None
        if isinstance(since_v, datetime) and until_v is not None and since_v >= until_v:
            raise UsageError(
                f"--since {since} is not before --until {until}", "swap or fix the dates"
            )
        return cls(
            bbox=tuple(float(v) for v in bbox) if bbox is not None else None,
            aoi_file=aoi,
            since=since_v,
            until=until_v,
        )


def resolve_aoi(request: ScanRequest, source: Any, source_kind: str):
    from scanner.aoi import AOI

    if request.bbox is not None:
        return AOI.from_bbox(*request.bbox)
    if request.aoi_file is not None:
        return AOI.from_file(request.aoi_file)
    if source_kind == "demo":
        from shapely.ops import unary_union

        w, s, e, n = unary_union([sc.footprint for sc in source.scenes()]).bounds
        return AOI.from_bbox(w, s, e, n)
    raise UsageError(
        "no area given", "pass --bbox W S E N (degrees) or --aoi FILE (GeoJSON/GeoPackage)"
    )


def time_window(request: ScanRequest, watermark: datetime | None, source_kind: str, now=None):
    """(start, end, published_after) for the search."""
    now = now or datetime.now(UTC)
    end = request.until
    if isinstance(request.since, datetime):
        return request.since, end, None
    # 'last' (explicit or default): what was published since the previous run's watermark
    if watermark is not None:
        return None, end, watermark
    if source_kind in OFFLINE_SOURCES:
        return None, end, None
    return now - FIRST_RUN_LOOKBACK, end, None


# --- validation of the model and output folder -------------------------------------------------


def resolve_model(config: ScanConfig) -> Path:
    if config.model:
        path = Path(config.model).expanduser()
    elif config.source == "demo":
        path = DEMO_MODEL
    else:
        raise UsageError(
            "no model given",
            "pass --model PATH (a .keras model with its card, or the authors' legacy .h5)",
        )
    if not path.is_file():
        raise UsageError(f"model file not found: {path}", "pass an existing file with --model")
    return path.resolve()


def load_card(model_path: Path, config: ScanConfig):
    """Load the model once here (validates the file) and read its card, with the threshold."""
    from training.card import read_card
    from training.model import model_geometry

    model = pipeline.cached_model(str(model_path))
    size, crop = model_geometry(model)
    card = read_card(model_path, size, crop)
    if config.threshold is not None:
        card = card.model_copy(update={"threshold": config.threshold})
    return card


def prepare_out(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UsageError(
            f"output folder {out_dir} is not writable ({err.strerror or err})",
            "pass a writable folder with --out",
        ) from None
    return out_dir


# --- grouping ----------------------------------------------------------------------------------


def mosaic_id(first) -> str:
    key = first.datatake_key
    stamp = first.start.strftime("%Y%m%dT%H%M%S")
    if key is None:
        return f"{first.name}"
    mission, orbit, datatake = key
    return f"{mission}_{orbit:06d}_{datatake}_{stamp}"


def group_scenes(scenes, max_gap_s: float = 5.0) -> list[GroupJob]:
    """Consecutive slices of one datatake (same mission, orbit, datatake id, contiguous times)
    form one group; anything else stands alone. Groups are ordered by sensing time."""
    groups: list[list] = []
    for scene in sorted(scenes, key=lambda s: (s.datatake_key or ("", 0, s.name), s.start)):
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and scene.datatake_key is not None
            and scene.datatake_key == last.datatake_key
            and (scene.start - last.stop).total_seconds() <= max_gap_s
        ):
            groups[-1].append(scene)
        else:
            groups.append([scene])
    groups.sort(key=lambda g: g[0].start)
    return [GroupJob(mosaic_id=mosaic_id(g[0]), scenes=tuple(g)) for g in groups]


# --- the run -----------------------------------------------------------------------------------


def scan(request: ScanRequest, config: ScanConfig, *, progress: bool = True) -> dict:
    """Run one scan; returns the summary (see :func:`format_summary`)."""
    from scanner.record import Record, new_run_id
    from scanner.sources import get_source as make_source

    t0 = time.monotonic()
    started = datetime.now(UTC)
    kind = config.source.split(":", 1)[0]
    aoi = resolve_aoi(request, None, kind) if (request.bbox or request.aoi_file) else None
    source = make_source(config.source)
    check = getattr(source, "check_credentials", None)
    if callable(check):
        check()
    aoi = aoi or resolve_aoi(request, source, kind)
    model_path = resolve_model(config)
    card = load_card(model_path, config)
    config = fit_to_card(config, card)
    spec = ClusterSpec(
        sequential=config.sequential,
        workers=config.workers,
        threads_per_worker=config.threads_per_worker,
        scheduler=config.scheduler,
        connect_timeout_s=config.scheduler_timeout_s,
    )
    run_id = new_run_id()
    with contextlib.ExitStack() as stack:
        runner = stack.enter_context(Runner(spec))  # a --scheduler must answer before work
        out = prepare_out(config.out_dir)
        rec = stack.enter_context(Record.open(out))
        stack.enter_context(rec.lock(run_id, config.claim_ttl_s))
        rec.start_run(run_id, _parameters(request, config, aoi, model_path))
        stack.callback(_close_run, rec, run_id)  # a run that dies says so in the record
        start, end, published_after = time_window(
            request, rec.watermark(source.name, aoi.key), kind
        )
        log.info("searching %s over %r (%s … %s)", config.source, aoi, start, end or "now")
        found = list(source.search(aoi, start, end, published_after=published_after))
        stats = rec.upsert(found)
        todo = claim_work(rec, run_id, source.name, aoi, config)
        jobs = group_scenes(todo, config.mosaic.max_gap_s)
        ctx = RunContext(
            run_id=run_id,
            out_dir=str(out),
            source=config.source,
            model_path=str(model_path),
            config=config,
            card=card,
        )
        pub = Publisher(ctx, rec)
        log.info(
            "%d scene(s) found, %d to process in %d mosaic(s)", len(found), len(todo), len(jobs)
        )
        try:
            facts = runner.run(
                jobs,
                pipeline.start,
                [Stage(name, func, gpu, limit) for name, func, gpu, limit in pipeline.STAGES],
                ctx,
                key=lambda job: f"{job.mosaic_id}-{run_id}",
                on_done=pub.done,
                on_failed=pub.failed,
                progress=progress,
            )
        finally:
            rec.release(run_id)
        if stats.newest_published is not None:
            # Failed scenes stay pending in the record and are retried whatever the
            # watermark, so it may advance even when some scenes failed.
            rec.advance_watermark(source.name, aoi.key, stats.newest_published, run_id)
        todo_ids = {s.id for s in todo}
        summary = {
            "run_id": run_id,
            "source": config.source,
            "aoi": aoi.to_wkt(),
            "window": {"start": start, "end": end, "published_after": published_after},
            "model": str(model_path),
            "threshold": card.threshold,
            "counts": {
                "found": len(found),
                "new": stats.new,
                "processed": pub.processed,
                "failed": pub.failed_scenes,
                "skipped": sum(1 for s in found if s.id not in todo_ids),
                "mosaics": len(jobs),
                "windows": pub.windows,
                "detections": pub.detections,
            },
            "top_detections": pub.top(5),
            "failures": pub.failures,
            "outputs": {
                "folder": str(out),
                "gpkg": str(out / "detections.gpkg"),
                "stac": str(out / "stac" / "catalog.json"),
                "mosaics": sorted(pub.mosaic_dirs),
                "record": str(rec.path),
            },
            "cluster": {**facts, "placement": pub.placement},
            "timings": pub.timings,
            "seconds": round(time.monotonic() - t0, 2),
        }
        summary["started"] = started
        summary["finished"] = datetime.now(UTC)
        pub.write_run(summary)
        rec.finish_run(run_id, summary["counts"], status="partial" if pub.failed_scenes else "ok")
    return summary


def _close_run(rec, run_id: str) -> None:
    """Mark the run failed if it ended without :meth:`finish_run` (an exception, Ctrl-C)."""
    try:
        if any(r["run_id"] == run_id and not r["finished"] for r in rec.runs(limit=5)):
            rec.finish_run(run_id, {}, status="failed")
    except Exception as err:  # noqa: BLE001 - never mask the original error
        log.warning("could not close run %s in the record: %s", run_id, err)


def _parameters(request: ScanRequest, config: ScanConfig, aoi, model_path: Path) -> dict:
    return {
        "bbox": request.bbox,
        "aoi_file": request.aoi_file,
        "aoi_key": aoi.key,
        "since": request.since,
        "until": request.until,
        "model": str(model_path),
        "config": config.model_dump(mode="json"),
    }


def claim_work(rec, run_id: str, source_name: str, aoi, config: ScanConfig) -> list:
    """Pending scenes of this source over this area (new, or failed with attempts left),
    claimed for this run; scenes another live run holds are left to it."""
    pending = [
        row
        for row in rec.pending(config.max_attempts, source=source_name)
        if row.footprint_wkt is None or aoi.intersects(row.to_scene().footprint)
    ]
    held = set(rec.claim([r.id for r in pending], run_id, config.claim_ttl_s))
    if len(held) < len(pending):
        log.warning("%d scene(s) are claimed by another run", len(pending) - len(held))
    return [r.to_scene() for r in pending if r.id in held]


class Publisher:
    """Client-side handling of finished groups: gpkg + STAC rows, record marks, counts."""

    def __init__(self, ctx: RunContext, rec) -> None:
        self.ctx = ctx
        self.rec = rec
        self.processed = 0
        self.failed_scenes = 0
        self.windows = 0
        self.detections = 0
        self.failures: list[dict] = []
        self.mosaic_dirs: set[str] = set()
        self.timings: dict[str, float] = {}
        self.placement: dict[str, dict[str, str]] = {}  # mosaic → stage → host:pid
        self._top: list[dict] = []

    def done(self, job: GroupJob, res: StageResult) -> None:

        try:
            written = pipeline.publish_mosaic(res, self.ctx)
        except Exception as err:  # noqa: BLE001 - a failed publish fails only this group
            self.failed(job, "publish", err)
            return
        probs = res.probabilities if res.probabilities is not None else np.zeros(0)
        self.windows += len(probs)
        hits = np.flatnonzero(probs >= self.ctx.card.threshold)
        self.detections += len(hits)
        self._top.extend(pipeline.detection_summaries(res, hits))
        self.mosaic_dirs.add(str(self.ctx.mosaic_dir(job.mosaic_id)))
        self.placement[job.mosaic_id] = dict(res.ran_on)
        for stage, secs in res.timings.items():
            self.timings[stage] = round(self.timings.get(stage, 0.0) + secs, 3)
        outputs = {**res.rasters, **written}
        for scene, path in zip(job.scenes, res.paths, strict=False):
            self.rec.mark(
                scene.id,
                "processed",
                outputs=outputs,
                local_path=path,
                run_id=self.ctx.run_id,
                source=scene.source,
            )
            self.processed += 1
        if not self.ctx.config.keep_downloads:
            _remove_downloads(res.paths, self.ctx.downloads_dir)

    def failed(self, job: GroupJob, stage: str, err: BaseException) -> None:
        message = f"{stage}: {type(err).__name__}: {err}"
        log.error("mosaic %s failed at %s", job.mosaic_id, message)
        for scene in job.scenes:
            self.rec.mark(
                scene.id, "failed", error=message, run_id=self.ctx.run_id, source=scene.source
            )
            self.failed_scenes += 1
        self.failures.append(
            {"mosaic": job.mosaic_id, "scenes": [s.name for s in job.scenes], "error": message}
        )

    def top(self, n: int) -> list[dict]:
        return sorted(self._top, key=lambda d: -d["probability"])[:n]

    def write_run(self, summary: dict) -> None:

        try:
            pipeline.publish_run(summary, self.ctx)
        except Exception as err:  # noqa: BLE001 - the run row is informative only
            log.warning("could not write the run to the GeoPackage: %s", err)


def _remove_downloads(paths, downloads_dir: Path) -> None:
    import shutil

    root = downloads_dir.resolve()
    for p in map(Path, paths):
        try:
            if root in p.resolve().parents:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        except OSError as err:
            log.warning("could not remove %s: %s", p, err)


def format_summary(s: dict) -> str:
    """The one-screen summary printed by ``cli.py scan``."""
    c = s["counts"]
    lines = [
        f"scan {s['run_id']}  source {s['source']}  model {Path(s['model']).name} "
        f"(threshold {s['threshold']:.2f})",
        f"scenes: {c['found']} found, {c['new']} new, {c['processed']} processed, "
        f"{c['failed']} failed, {c['skipped']} skipped",
        f"mosaics: {c['mosaics']}  windows scored: {c['windows']}  detections: {c['detections']}",
    ]
    for d in s["top_detections"]:
        lines.append(
            f"  p={d['probability']:.3f}  {d['lat']:.2f}°N {d['lon']:.2f}°E  {d['mosaic']}"
        )
    for f in s["failures"]:
        lines.append(f"  FAILED {f['mosaic']}: {f['error']}")
    o = s["outputs"]
    files = "  ".join(p for p in (o["gpkg"], o["stac"]) if Path(p).exists()) or "none yet"
    lines.append(f"outputs: {files}  ({len(o['mosaics'])} mosaic folder(s) this run)")
    cl = s.get("cluster") or {}
    if cl.get("mode"):
        extra = f", dashboard {cl['dashboard']}" if cl.get("dashboard") else ""
        lines.append(f"ran: {cl['mode']} with {cl.get('workers', 0)} worker(s){extra}")
    if s.get("timings"):
        lines.append("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s["timings"].items()))
    lines.append(f"time: {s['seconds']:.1f} s")
    return "\n".join(lines)
