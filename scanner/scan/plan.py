"""What a run will do with the scenes it found: claim the pending ones, set aside those of a
mode the model card does not accept, and group the rest into mosaic jobs (consecutive slices of
a datatake, :func:`scanner.mosaic.group_products`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from scanner.scan.config import ScanConfig
from scanner.scan.stages import MosaicJob

log = logging.getLogger(__name__)


def _datatake(scene):
    return scene.datatake_key


def plan_jobs(scenes, max_gap_s: float, refused: list | None = None) -> list[MosaicJob]:
    """Consecutive slices of one datatake form one mosaic (:func:`scanner.mosaic.group_products`,
    the project's one grouping and id scheme); anything else stands alone. A slice whose mode
    or polarisations differ from the rest of its datatake is left out, and appended to
    ``refused`` as a :class:`~scanner.mosaic.mosaic.Refusal` (scene and error) when given."""
    from scanner.mosaic import group_id, group_products

    groups = group_products(scenes, max_gap_s, key=_datatake, refused=refused)
    return [MosaicJob(mosaic_id=group_id(g, _datatake), scenes=tuple(g)) for g in groups]


@dataclass(frozen=True)
class Plan:
    """What a run does with the scenes it claimed: ``jobs`` (mosaics to make); ``refused``
    slices left out of their strip, each as a one-scene job and the error (they fail); and
    ``unaccepted`` scenes of a mode the model card does not accept, with the reason (they
    are skipped)."""

    jobs: list[MosaicJob]
    refused: list[tuple[MosaicJob, Exception]] = field(default_factory=list)
    unaccepted: list[tuple[Any, str]] = field(default_factory=list)


def plan_work(scenes, max_gap_s: float, card) -> Plan:
    """Split claimed scenes into a :class:`Plan`: scenes whose mode (from the name)
    ``card.accepts`` not are set aside first, the rest grouped by :func:`plan_jobs`."""
    from scanner.mosaic import group_id

    accepted, unaccepted = [], []
    for scene in scenes:
        mode = scene.mode
        if mode is None or card.accepts(mode):
            accepted.append(scene)
        else:
            why = (f"mode {mode}: the model card ({card.name}) accepts "
                   f"{', '.join(card.modes)} only")  # fmt: skip
            unaccepted.append((scene, why))
    refusals: list = []
    jobs = plan_jobs(accepted, max_gap_s, refusals)
    refused = [(MosaicJob(group_id([r.item], _datatake), (r.item,)), r.error) for r in refusals]
    return Plan(jobs, refused, unaccepted)


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


def skip_unaccepted(rec, plan: Plan, run_id: str) -> None:
    """Mark the plan's scenes of a mode the model card does not accept SKIPPED with the
    reason (final: no later run claims them until the operator re-queues them)."""
    from scanner.record import SceneStatus

    for scene, why in plan.unaccepted:
        rec.mark(scene.id, SceneStatus.SKIPPED, reason=why, run_id=run_id, source=scene.source)
    if plan.unaccepted:
        log.warning("%d scene(s) skipped: %s", len(plan.unaccepted), plan.unaccepted[0][1])
