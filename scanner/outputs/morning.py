"""After a run: the forecaster's products, from the files the run wrote.

Raster style sidecars for the run's mosaics, ``OUT/polarscan.qgz``, the night's polar lows as
GeoJSON (``OUT/report/<run>/polar_lows.geojson``), the morning report, then notifications. Each
step is informative: its failure is logged and recorded in the returned dict (which the
publisher puts into the summary's ``outputs``), never raised.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def write_morning(out_dir: str | Path, summary: Any, config: Any) -> dict[str, Any]:
    """``summary``: the run's :class:`~scanner.scan.summary.ScanSummary`; ``config``: its
    :class:`~scanner.scan.config.ScanConfig`. Returns what was written (paths) and what failed."""
    from scanner.outputs.notify import lows_geojson, notify, write_geojson
    from scanner.outputs.qgis_project import write_project
    from scanner.outputs.report import read_night, write_report
    from scanner.outputs.styles_forecast import write_raster_styles

    out = Path(out_dir)
    run_id = summary.run_id
    done: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def attempt(name: str, func, *args):
        try:
            return func(*args)
        except Exception as err:  # noqa: BLE001 - informative outputs never fail the run
            log.warning("could not write the %s: %s", name, err)
            errors[name] = f"{type(err).__name__}: {err}"
            return None

    for folder in sorted(summary.mosaic_dirs):
        attempt("raster styles", write_raster_styles, folder, Path(folder).name)
    project = attempt("QGIS project", write_project, out)
    if project is not None:
        done["qgis_project"] = str(project)
    night = attempt("polar lows", read_night, out / "detections.gpkg", run_id)
    n_lows = 0 if night is None else len(night.lows)
    done["polar_lows"] = n_lows
    geojson = None
    if night is not None:
        path = out / "report" / f"{run_id}.geojson"
        geojson = attempt("GeoJSON", write_geojson, path, lows_geojson(night.lows, run_id))
        if geojson is not None:
            done["geojson"] = str(geojson)
    report = attempt("report", write_report, out, summary.to_dict())
    if report is not None:
        done["report"] = str(report)
    if geojson is not None and (config.notify.url or config.notify.command):
        sent = attempt("notifications", notify, config.notify, geojson, n_lows)
        if sent:
            done["notify"] = sent
    if errors:
        done["forecast_errors"] = errors
    return done
