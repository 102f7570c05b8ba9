"""Scenes as the record stores them: a row type, and a Scene's column values."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scanner.record.db import from_iso, iso

if TYPE_CHECKING:
    from scanner.sources.base import Scene


@dataclass(frozen=True)
class SceneRow:
    """One scene as recorded (times are timezone-aware UTC)."""

    source: str
    id: str
    name: str
    start: datetime
    stop: datetime
    status: str
    attempts: int
    footprint_wkt: str | None = None
    published: datetime | None = None
    size: int | None = None
    checksum: tuple[str, str] | None = None
    url: str | None = None
    datatake: str | None = None
    mode: str | None = None  # acquisition mode: EW, IW
    polarisations: str | None = None  # co-pol first: HH+HV, VV+VH
    reason: str | None = None
    last_error: str | None = None
    local_path: str | None = None
    outputs: dict | None = None
    run_id: str | None = None
    found_at: datetime | None = None
    updated_at: datetime | None = None
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> SceneRow:
        return cls(
            source=r["source"],
            id=r["id"],
            name=r["name"],
            start=from_iso(r["start"]),
            stop=from_iso(r["stop"]),
            status=r["status"],
            attempts=r["attempts"],
            footprint_wkt=r["footprint"],
            published=from_iso(r["published"]),
            size=r["size"],
            checksum=(r["checksum_algorithm"], r["checksum"]) if r["checksum"] else None,
            url=r["url"],
            datatake=r["datatake"],
            mode=r["mode"],
            polarisations=r["polarisations"],
            reason=r["reason"],
            last_error=r["last_error"],
            local_path=r["local_path"],
            outputs=json.loads(r["outputs"]) if r["outputs"] else None,
            run_id=r["run_id"],
            found_at=from_iso(r["found_at"]),
            updated_at=from_iso(r["updated_at"]),
            attrs=json.loads(r["attrs"] or "{}"),
        )

    def to_scene(self) -> Scene:
        """The :class:`Scene` a source would give (for download and processing)."""
        import shapely

        from scanner.sources.base import Scene

        return Scene(
            id=self.id,
            name=self.name,
            source=self.source,
            start=self.start,
            stop=self.stop,
            footprint=shapely.from_wkt(self.footprint_wkt) if self.footprint_wkt else None,
            size=self.size,
            checksum=self.checksum,
            published=self.published,
            url=self.url,
            attrs=self.attrs,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``catalog --json``)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if isinstance(v, datetime):
                v = iso(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[k] = v
        return out


def scene_params(scene: Scene, now: str) -> dict[str, Any]:
    import shapely

    dk = scene.datatake_key
    pols = scene.polarisations
    return {
        "source": scene.source,
        "id": scene.id,
        "name": scene.name,
        "footprint": (
            shapely.to_wkt(scene.footprint, rounding_precision=6, trim=True)
            if scene.footprint is not None
            else None
        ),
        "start": iso(scene.start),
        "stop": iso(scene.stop),
        "published": iso(scene.published),
        "size": scene.size,
        "checksum_algorithm": scene.checksum[0] if scene.checksum else None,
        "checksum": scene.checksum[1] if scene.checksum else None,
        "url": scene.url,
        "attrs": json.dumps(scene.attrs or {}, sort_keys=True, default=str),
        "datatake": f"{dk[0]}_{dk[1]:06d}_{dk[2]}" if dk else None,
        "mode": scene.mode,
        "polarisations": "+".join(pols) if pols else None,
        "now": now,
    }
