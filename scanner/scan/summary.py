"""What a scan did, as one value: counts, top detections, failures, outputs, timings.

The publisher adds each finished (or failed) mosaic with :meth:`ScanSummary.add_mosaic` /
:meth:`ScanSummary.add_failure`; summaries of several runs merge with :meth:`merge`. Rendering
(text, JSON) belongs to the command line: :meth:`to_dict` gives the JSON-ready structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

TOP_N = 5


@dataclass(frozen=True)
class Detection:
    """One window at or above the threshold, for the summary (centre in lon/lat)."""

    mosaic: str
    window: str
    probability: float
    lon: float
    lat: float


@dataclass(frozen=True)
class Failure:
    mosaic: str
    scenes: tuple[str, ...]
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"mosaic": self.mosaic, "scenes": list(self.scenes), "error": self.error}


@dataclass(frozen=True)
class Counts:
    found: int = 0
    new: int = 0
    processed: int = 0
    failed: int = 0
    skipped: int = 0  # found, but already done, held by another run, or of a mode not accepted
    unaccepted: int = 0  # of those, skipped for a mode the model card does not accept
    deferred: int = 0  # left pending for a later run: the month's data quota is spent
    mosaics: int = 0
    windows: int = 0
    detections: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{k: getattr(self, k) + getattr(other, k) for k in Counts.__dataclass_fields__})

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in Counts.__dataclass_fields__}


@dataclass(frozen=True)
class ScanSummary:
    run_id: str
    source: str
    model: str
    threshold: float
    aoi: str = ""  # WKT
    window: dict[str, datetime | None] = field(default_factory=dict)
    counts: Counts = Counts()
    top_detections: tuple[Detection, ...] = ()
    failures: tuple[Failure, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)
    mosaic_dirs: frozenset[str] = frozenset()
    cluster: dict[str, Any] = field(default_factory=dict)
    placement: dict[str, dict[str, str]] = field(default_factory=dict)  # mosaic → stage → host
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds, all mosaics
    skipped_by_source: dict[str, int] = field(default_factory=dict)  # reason → count
    quota: dict[str, Any] = field(default_factory=dict)  # the month's bytes and budget
    notices: tuple[str, ...] = ()  # what an operator should know that is not a failure
    seconds: float = 0.0
    started: datetime | None = None
    finished: datetime | None = None

    @property
    def status(self) -> str:
        return "partial" if self.counts.failed else "ok"

    def add_mosaic(
        self,
        mosaic_id: str,
        n_scenes: int,
        n_windows: int,
        detections: list[Detection],
        mosaic_dir: str,
        ran_on: dict[str, str],
        timings: dict[str, float],
    ) -> ScanSummary:
        """This summary with one more published mosaic."""
        more = Counts(processed=n_scenes, windows=n_windows, detections=len(detections))
        return replace(
            self,
            counts=self.counts + more,
            top_detections=_top(self.top_detections + tuple(detections)),
            mosaic_dirs=self.mosaic_dirs | {mosaic_dir},
            placement={**self.placement, mosaic_id: dict(ran_on)},
            timings=_add_up(self.timings, timings),
        )

    def add_failure(self, failure: Failure) -> ScanSummary:
        return replace(
            self,
            counts=self.counts + Counts(failed=len(failure.scenes)),
            failures=self.failures + (failure,),
        )

    def add_deferred(self, n_scenes: int) -> ScanSummary:
        """This summary with ``n_scenes`` more scenes left for a later run (quota)."""
        return replace(self, counts=self.counts + Counts(deferred=n_scenes))

    def add_notice(self, text: str) -> ScanSummary:
        return replace(self, notices=(*self.notices, text))

    def merge(self, other: ScanSummary) -> ScanSummary:
        """Two runs' summaries as one (e.g. a night scanned in two areas): counts and timings
        add up, detections and failures join; identity fields are this one's."""
        return replace(
            self,
            counts=self.counts + other.counts,
            top_detections=_top(self.top_detections + other.top_detections),
            failures=self.failures + other.failures,
            mosaic_dirs=self.mosaic_dirs | other.mosaic_dirs,
            placement={**self.placement, **other.placement},
            timings=_add_up(self.timings, other.timings),
            skipped_by_source=_add_up(self.skipped_by_source, other.skipped_by_source),
            notices=self.notices + tuple(n for n in other.notices if n not in self.notices),
            seconds=round(self.seconds + other.seconds, 2),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready structure printed by ``scan --json`` (datetimes stay datetimes)."""
        return {
            "run_id": self.run_id,
            "source": self.source,
            "aoi": self.aoi,
            "window": dict(self.window),
            "model": self.model,
            "threshold": self.threshold,
            "status": self.status,
            "counts": self.counts.to_dict(),
            "skipped_by_source": dict(self.skipped_by_source),
            "quota": dict(self.quota),
            "notices": list(self.notices),
            "top_detections": [d.__dict__.copy() for d in self.top_detections],
            "failures": [f.to_dict() for f in self.failures],
            "outputs": {**self.outputs, "mosaics": sorted(self.mosaic_dirs)},
            "cluster": {**self.cluster, "placement": self.placement},
            "timings": dict(self.timings),
            "seconds": self.seconds,
            "started": self.started,
            "finished": self.finished,
        }


class Progress:
    """Mosaics and scenes done out of those planned, and an ETA from the pace so far — the line
    a cron log shows as a backfill goes (the progress bar only draws on a terminal)."""

    def __init__(self, mosaics: int, scenes: int, start: float) -> None:
        self.mosaics, self.scenes, self.start = mosaics, scenes, start
        self.mosaics_done = self.scenes_done = 0

    def drop(self, n_scenes: int) -> None:
        """A planned mosaic of ``n_scenes`` that this run will not do (deferred)."""
        self.mosaics -= 1
        self.scenes -= n_scenes

    def update(self, n_scenes: int, now: float) -> str:
        self.mosaics_done += 1
        self.scenes_done += n_scenes
        left = self.mosaics - self.mosaics_done
        pace = (now - self.start) / self.mosaics_done
        eta = f"ETA {_duration(pace * left)}" if left else "done"
        return (
            f"{self.mosaics_done}/{self.mosaics} mosaics, {self.scenes_done}/{self.scenes} "
            f"scenes done; {eta}"
        )


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def _top(detections: tuple[Detection, ...]) -> tuple[Detection, ...]:
    return tuple(sorted(detections, key=lambda d: -d.probability)[:TOP_N])


def _add_up(a: dict, b: dict) -> dict:
    """Per-key sums (seconds per stage, scenes per skip reason)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = round(out.get(k, 0) + v, 3)
    return out
