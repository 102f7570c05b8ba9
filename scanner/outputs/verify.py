"""``catalog --check``: does a scan folder hold what its record says it processed?

A scene is marked ``processed`` only after its mosaic's rows are committed to
``detections.gpkg``, its STAC item written and its COGs renamed into place
(:mod:`scanner.scan.publish`), so for every processed scene these must exist, whatever runs
meanwhile; anything else is found here, with the command that repairs it (re-queueing the
scenes, whose next scan rewrites every output of their mosaic). Checked:

- ``record.sqlite`` and ``detections.gpkg``: SQLite's full ``integrity_check``; an update a
  killed scan left unfinished in the GeoPackage is rolled back first (and said);
- each processed scene has its row in the GeoPackage's ``scenes`` layer;
- each of their mosaics has its COGs (the ones the record lists: RGB, probability, saliency) in
  ``mosaics/<id>/``, and each opens (GDAL reads its header);
- each of their mosaics has its STAC item.

Read-only except for that rollback; the folder may have been moved since (paths are taken
relative to it).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scanner.outputs import gpkg_sql
from scanner.outputs.gpkg_tx import recover
from scanner.record import Record, record_path

GPKG = "detections.gpkg"
#: the keys of a processed scene's recorded outputs that are the mosaic's COGs
RASTER_KEYS = ("rgb", "probability", "gradcam", "ig")


@dataclass(frozen=True)
class Finding:
    """One kind of problem, the mosaics or scenes it concerns and the fix."""

    part: str  # record.sqlite | detections.gpkg | mosaics | stac
    problem: str
    fix: str
    details: tuple[str, ...] = ()  # e.g. "<mosaic id>: probability"
    scenes: tuple[str, ...] = ()  # record ids the fix re-queues


@dataclass
class CheckReport:
    out: str
    checked: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_folder(out: Path) -> CheckReport:
    """Check the scan folder ``out`` (it must hold ``record.sqlite``)."""
    report = CheckReport(str(out))
    bad = _integrity(record_path(out))
    if bad:
        report.findings.append(Finding("record.sqlite", f"SQLite integrity check: {bad}",
                                        "move record.sqlite aside (or restore a backup) and run "
                                        "the scan: it finds the scenes again"))  # fmt: skip
        return report  # nothing else can be trusted
    with Record(record_path(out), create=False) as rec:
        processed = rec.scenes(status=["processed"])
    report.checked["processed scenes"] = len(processed)
    gpkg = out / GPKG
    rows = _gpkg_scenes(gpkg, report) if gpkg.exists() else {}
    if not gpkg.exists() and processed:
        report.findings.append(_requeue("detections.gpkg", f"{GPKG} is missing", processed))
        return report
    if rows is None:
        return report
    report.checked["GeoPackage scene rows"] = len(rows)
    missing = [s for s in processed if s.name not in rows]
    if missing:
        report.findings.append(
            _requeue(
                "detections.gpkg",
                "processed scenes without their row in the `scenes` layer",
                missing,
                [s.name for s in missing],
            )  # fmt: skip
        )
    by_mosaic: dict[str, list] = defaultdict(list)
    for s in processed:
        mid = rows.get(s.name) or _mosaic_of(s.outputs or {})
        if mid:
            by_mosaic[mid].append(s)
    report.checked["mosaics"] = len(by_mosaic)
    _check_files(out, by_mosaic, report)
    _check_items(out, by_mosaic, report)
    return report


def _integrity(path: Path) -> str | None:
    """None if SQLite's ``integrity_check`` of ``path`` says ok, else what it says."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as con:
            said = [r[0] for r in con.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as err:
        return str(err)
    return None if said == ["ok"] else "; ".join(said[:5])


def _gpkg_scenes(gpkg: Path, report: CheckReport) -> dict[str, str] | None:
    """scene name → mosaic id of the GeoPackage's ``scenes`` layer (None if unusable)."""
    if recover(gpkg):
        report.notes.append(f"rolled back an unfinished update of {GPKG} (a killed scan's)")
    fix = f"move {GPKG} aside and re-queue every processed scene (catalog --requeue …)"
    if not gpkg_sql.is_geopackage(gpkg):
        report.findings.append(Finding("detections.gpkg", "not a GeoPackage", fix))
        return None
    bad = _integrity(gpkg)
    if bad:
        report.findings.append(Finding("detections.gpkg", f"SQLite integrity check: {bad}", fix))
        return None
    if "scenes" not in gpkg_sql.tables(gpkg):
        return {}
    with contextlib.closing(sqlite3.connect(gpkg)) as con:
        return dict(con.execute('SELECT "scene_name", "mosaic_id" FROM "scenes"').fetchall())


def _mosaic_of(outputs: dict) -> str | None:
    for key in RASTER_KEYS:
        if key in outputs:
            return Path(outputs[key]).parent.name
    return None


def _check_files(out: Path, by_mosaic: dict[str, list], report: CheckReport) -> None:
    import rasterio
    from rasterio.errors import RasterioIOError

    absent, unreadable, scenes_absent, scenes_unreadable = [], [], [], []
    n = 0
    for mid, scenes in sorted(by_mosaic.items()):
        expected = {k: Path(v).name for s in scenes for k, v in (s.outputs or {}).items()
                    if k in RASTER_KEYS}  # fmt: skip
        expected.setdefault("rgb", f"{mid}_rgb.tif")
        for key, name in sorted(expected.items()):
            path = out / "mosaics" / mid / name
            n += 1
            if not path.is_file():
                absent.append(f"{mid}: {key} ({name})")
                scenes_absent += scenes
                continue
            try:
                with rasterio.open(path):
                    pass
            except RasterioIOError as err:
                unreadable.append(f"{mid}: {key} ({err})")
                scenes_unreadable += scenes
    report.checked["mosaic files"] = n
    if absent:
        report.findings.append(_requeue("mosaics", "mosaic files missing", scenes_absent, absent))
    if unreadable:
        report.findings.append(
            _requeue("mosaics", "mosaic files GDAL cannot open", scenes_unreadable, unreadable)
        )


def _check_items(out: Path, by_mosaic: dict[str, list], report: CheckReport) -> None:
    root = out / "stac"
    items = (
        {p.stem for p in root.rglob("*.json") if p.parent.name == p.stem}
        if root.is_dir()
        else set()
    )
    report.checked["STAC items"] = len(items)
    lacking = sorted(mid for mid in by_mosaic if mid not in items)
    if lacking:
        scenes = [s for mid in lacking for s in by_mosaic[mid]]
        report.findings.append(_requeue("stac", "mosaics without their STAC item", scenes, lacking))


def _requeue(part: str, problem: str, scenes: list, details: list[str] | None = None) -> Finding:
    ids = tuple(dict.fromkeys(s.id for s in scenes))
    fix = ("re-queue the scenes (python cli.py catalog --out OUT --requeue ID …, the ids under "
           "--json): the next scan rewrites their mosaics' outputs")  # fmt: skip
    return Finding(part, f"{problem}: {len(details or ids)}", fix, tuple(details or ()), ids)
