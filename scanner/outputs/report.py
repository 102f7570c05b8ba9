"""The morning report: ``OUT/report/<run-id>/index.html`` and ``OUT/report/index.html`` (latest).

Self-contained and offline: plain HTML with inline CSS, no script, no web font, no remote
image; the pictures are PNG files beside the page (:mod:`scanner.outputs.report_plots`). What
it shows comes from the files the run wrote (``detections.gpkg``, the mosaic COGs) and the run's
summary: counts and failures, a map of the night (mosaic footprints, polar lows, tracks on a
graticule) and, per polar low, a quick-look of its window of the RGB mosaic with the Grad-CAM
contours and the crops' outline, its probability, time, position and track.

**The latest page** (``report/index.html``, the one forecasters bookmark) shows the newest
*substantive* run: one that processed at least one scene or had failures (operators must see
those). A run that processed nothing (a cron run with no new pass since the last) still gets its
own ``report/<run-id>/``, but the latest page keeps showing the last substantive run, under a
banner "Last checked <time> (run <id>): no new scenes since." so the forecaster knows the scanner
is alive. Until a substantive run has happened, the latest page is the empty run's, as before.

How: each run's folder keeps ``page.json``, what its page was rendered from (the run's summary,
as ``scan --json`` gives it, and the names of the pictures beside it), and a substantive run
points ``report/latest.json`` (``{"run_id": ...}``, written atomically) at itself. An empty run
re-renders that run's page from its ``page.json`` and :func:`read_night` (``detections.gpkg``
still holds its rows; tracks extended since show their newest state), reusing the pictures in
``report/<that-run>/`` (no plot drawn again, no HTML copied and patched). Not chosen: finding
the run in the GeoPackage's ``runs`` layer (it lacks the model path, threshold and scene counts
the page shows) or scanning the report folders (run ids need not sort by time). Anything
missing (folder, ``page.json``, the map picture) falls back to the empty run's page.

**Without ``latest.json``** (a folder written before it existed, or the file lost), the latest
page itself says which run it shows (``<title>polarscan <run></title>``, in every version). If
that run's folder has a ``page.json`` (this version drew it) and the run is substantive, it is
re-rendered as above. If it has none, an older version drew the page: it is kept as it is, with
only the banner put in at the top of ``<body>`` (replacing the banner an earlier empty run put
there), until the next substantive run writes ``latest.json``. Its run's summary cannot be had
again (not chosen: rebuilding it from the record's ``runs`` table, which lacks the failures,
notices and pictures), and the old page already shows what it should.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape, unescape
from pathlib import Path
from typing import Any

from polarscan.common.atomic import atomic_path
from scanner.outputs import gpkg_sql

log = logging.getLogger(__name__)

PAGE = "page.json"  # in each run's folder: what its page was rendered from
LATEST = "latest.json"  # in report/: the substantive run report/index.html shows
#: the run a page shows, in every version's latest page
TITLE = re.compile(r"<title>polarscan ([^<]+)</title>")
#: the "Last checked" banner an empty run put into an older version's page
OLD_BANNER = re.compile(r'<p class="banner" id="last-checked"[^>]*>.*?</p>\n', re.DOTALL)


@dataclass(frozen=True)
class Night:
    """What the run found, read back from ``detections.gpkg`` (GeoDataFrames, file CRS)."""

    crs: Any
    footprints: Any  # scenes of the run
    lows: Any  # polar lows of the run (+ column ``label``)
    tracks: Any  # tracks through them


def read_night(gpkg: Path, run_id: str) -> Night:
    """The run's scenes, polar lows and their tracks."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    present = gpkg_sql.tables(gpkg) if gpkg.exists() else set()

    def layer(name: str, where: str | None):
        if name not in present:  # no run has written it yet: empty, with its columns
            from scanner.outputs.frames import SCHEMAS

            cols: dict[str, list] = {c: [] for c in SCHEMAS.get(name, {})}
            return gpd.GeoDataFrame(cols, geometry=[], crs="EPSG:3413")
        return pyogrio.read_dataframe(gpkg, layer=name, where=where)

    safe = run_id.replace("'", "''")
    scenes = layer("scenes", f"run_id = '{safe}'")
    lows = layer("polar_lows", f"run_id = '{safe}'")
    if len(lows):
        lows["time"] = pd.to_datetime(lows["time"], utc=True)
        lows = lows.sort_values(["time", "polar_low_id"]).reset_index(drop=True)
    lows["label"] = [f"PL{i + 1}" for i in range(len(lows))]
    tracks = layer("tracks", None)
    if len(tracks):
        tracks = tracks[tracks["track_id"].isin(set(lows.get("track_id", [])))]
    crs = scenes.crs or lows.crs or "EPSG:3413"
    return Night(crs, scenes, lows.reset_index(drop=True), tracks.reset_index(drop=True))


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in pairs)


BANNER_STYLE = "background:#fff4d6;border:1px solid #d9b44a;padding:.5em 1em;margin:0 0 1em"
CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;margin:.5em 0}th,td{padding:2px 10px;
text-align:left;border-bottom:1px solid #ddd}.lows{display:flex;flex-wrap:wrap;gap:1em}
.low{border:1px solid #ccc;padding:.5em;width:460px;box-sizing:border-box}
.low table{width:100%;table-layout:fixed}.low td{overflow-wrap:anywhere}.low th{width:7em}
.none{color:#666}img{max-width:100%}
"""
# inline too on the banner put into an older version's page, whose CSS lacks it
CSS += ".banner{" + BANNER_STYLE + "}"


def substantive(summary: dict) -> bool:
    """Whether the run processed a scene or had a failure (what the latest page shows)."""
    c = summary.get("counts") or {}
    return bool(c.get("processed") or c.get("failed") or summary.get("failures"))


def render_html(
    summary: dict, night: Night, images: dict[str, str], prefix: str, root: str, banner: str = ""
) -> str:
    """The page; ``prefix`` goes before image names, ``root`` leads back to the output folder;
    ``banner`` (HTML) goes at the top."""
    c = summary["counts"]
    head = [
        ("run", summary["run_id"]),
        ("status", summary["status"]),
        ("source", summary["source"]),
        ("model", Path(summary["model"]).name),
        ("threshold", f"{summary['threshold']:.2f}"),
        ("scenes", f"{c['found']} found, {c['processed']} processed, {c['failed']} failed"),
        ("mosaics", c["mosaics"]),
        ("windows scored / detections", f"{c['windows']} / {c['detections']}"),
        ("polar lows", len(night.lows)),
        ("started", summary.get("started") or ""),
        ("finished", summary.get("finished") or ""),
    ]
    tracks = {r.track_id: r for r in night.tracks.itertuples()}
    cards = []
    for low in night.lows.itertuples():
        t = tracks.get(low.track_id)
        track = "new (first sighting)"
        if t is not None:
            track = (f"{low.track_id}: {t.n_sightings} sightings, {t.mean_speed_ms:.1f} m/s "
                     f"towards {t.heading_deg:.0f}°")  # fmt: skip
        facts = [
            ("probability", f"{low.max_probability:.3f} (mean {low.mean_probability:.3f}, "
                            f"{low.n_windows} window(s))"),
            ("time (UTC)", f"{low.time:%Y-%m-%d %H:%M}"),
            ("position", f"{low.lat:.2f}°N {low.lon:.2f}°E ({low.centre_method})"),
            ("track", track),
            ("id", low.polar_low_id),
        ]  # fmt: skip
        img = images.get(low.polar_low_id)
        pic = f'<img src="{escape(prefix + img)}" alt="quick-look {low.label}">' if img else ""
        cards.append(f'<div class="low"><h3>{escape(low.label)}</h3>{pic}'
                     f"<table>{_rows(facts)}</table></div>")  # fmt: skip
    lows_html = "".join(cards) or '<p class="none">No polar low in this run.</p>'
    fails = "".join(f"<li>{escape(f['mosaic'])}: {escape(f['error'])}</li>"
                    for f in summary.get("failures", []))  # fmt: skip
    notices = "".join(f"<li>{escape(n)}</li>" for n in summary.get("notices", []))
    files = [("QGIS project", "polarscan.qgz"), ("GeoPackage", "detections.gpkg")]
    if (summary.get("outputs") or {}).get("log"):  # the run's log (logs/<run id>.log)
        files.append(("run log", f"logs/{Path(summary['outputs']['log']).name}"))
    links = " · ".join(f'<a href="{escape(root + f)}">{n}</a>' for n, f in files)
    nothing = '<p class="none" id="nothing-new">No scene was processed in this run.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>polarscan {escape(summary["run_id"])}</title>
<style>{CSS}</style></head><body>
{f'<p class="banner" id="last-checked">{banner}</p>' if banner else ""}
<h1>polarscan: the morning of run {escape(summary["run_id"])}</h1>
<table>{_rows(head)}</table>
{"" if substantive(summary) else nothing}
{f"<h2>Failures</h2><ul>{fails}</ul>" if fails else ""}
{f"<h2>Notices</h2><ul>{notices}</ul>" if notices else ""}
<h2>The night</h2>
<img src="{escape(prefix + images["map"])}" alt="map of the night">
<h2>Polar lows</h2><div class="lows">{lows_html}</div>
<p>{links}</p>
</body></html>
"""


def write_report(out_dir: str | Path, summary: dict) -> Path:
    """Write the run's report folder (atomically) and the latest ``report/index.html``: this
    run's page if it is substantive, else the last substantive run's under a banner."""
    from scanner.outputs.report_plots import plot_night, plot_quicklook

    out = Path(out_dir)
    run_id = summary["run_id"]
    night = read_night(out / "detections.gpkg", run_id)
    folder = out / "report" / run_id
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        images = {"map": plot_night(tmp / "map.png", night.crs, night.footprints, night.lows,
                                    night.tracks).name}  # fmt: skip
        fps = _footprints(out / "detections.gpkg", list(night.lows["polar_low_id"]))
        for low in night.lows.itertuples():
            mdir = out / "mosaics" / low.mosaic_id
            rgb = mdir / f"{low.mosaic_id}_rgb.tif"
            if not rgb.exists() or low.polar_low_id not in fps:
                continue
            name = f"{low.label}.png"
            title = f"{low.label}  p={low.max_probability:.2f}  {low.time:%d %b %H:%M} UTC"
            try:
                plot_quicklook(tmp / name, rgb, mdir / f"{low.mosaic_id}_gradcam.tif",
                               fps[low.polar_low_id], (low.geometry.x, low.geometry.y), title)  # fmt: skip
                images[low.polar_low_id] = name
            except Exception as err:  # noqa: BLE001 - one bad picture does not sink the report
                log.warning("no quick-look for %s: %s", low.polar_low_id, err)
        page = {"summary": summary, "images": images}
        (tmp / PAGE).write_text(json.dumps(page, default=str, indent=1), encoding="utf-8")
        (tmp / "index.html").write_text(render_html(summary, night, images, "", "../../"),
                                        encoding="utf-8")  # fmt: skip
    html = None
    if substantive(summary):
        with atomic_path(out / "report" / LATEST) as tmp:
            tmp.write_text(json.dumps({"run_id": run_id}), encoding="utf-8")
    else:
        html = _last_substantive_page(out, summary)
    if html is None:
        html = render_html(summary, night, images, f"{run_id}/", "../")
    with atomic_path(out / "report" / "index.html") as tmp:
        tmp.write_text(html, encoding="utf-8")
    return folder / "index.html"


def _last_substantive_page(out: Path, summary: dict) -> str | None:
    """The latest page after the empty run ``summary``: the run ``report/latest.json`` names
    (without it: the run the latest page shows), re-rendered from its folder under the "Last
    checked" banner, or an older version's page kept under it; None when there is no such run
    (or it cannot be shown: logged)."""
    report, run_id = out / "report", summary["run_id"]
    try:
        other = json.loads((report / LATEST).read_text(encoding="utf-8"))["run_id"]
        pointed = True
    except FileNotFoundError:  # none yet, or a folder from before latest.json
        other, pointed = _shown_run(report), False
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("unreadable %s: %s", report / LATEST, err)
        return None
    if not isinstance(other, str) or not _plain_name(other) or other == run_id:
        return None  # this run's own folder (a rerun under the same id) holds nothing else
    if not pointed and not (report / other / PAGE).exists():
        return _older_page(report, other, _banner(summary))
    try:
        page = json.loads((report / other / PAGE).read_text(encoding="utf-8"))
        shown, images = dict(page["summary"]), dict(page["images"])
        images = {k: v for k, v in images.items()
                  if isinstance(v, str) and _plain_name(v) and (report / other / v).is_file()}  # fmt: skip
        if shown.get("run_id") != other or "map" not in images:
            raise ValueError(f"{PAGE} of run {other} is not that run's page or lacks its map")
        if not pointed and not substantive(shown):
            return None  # the page shows an empty run: no substantive run has happened yet
        night = read_night(out / "detections.gpkg", other)
        return render_html(shown, night, images, f"{other}/", "../", _banner(summary))
    except Exception as err:  # noqa: BLE001 - the latest page then shows this (empty) run
        log.warning("cannot show run %s on the latest page: %s", other, err)
        return None


def _banner(summary: dict) -> str:
    """The "Last checked" line (HTML) of the empty run ``summary``, with its notices."""
    run_id = summary["run_id"]
    link = f'<a href="{escape(run_id)}/index.html">{escape(run_id)}</a>'
    banner = f"Last checked {escape(_when(summary))} (run {link}): no new scenes since."
    for notice in summary.get("notices") or ():  # e.g. scenes deferred by the data quota
        banner += f"<br>{escape(notice)}"
    return banner


def _shown_run(report: Path) -> str | None:
    """The run ``report/index.html`` shows (from its title), or None."""
    try:
        found = TITLE.search((report / "index.html").read_text(encoding="utf-8"))
    except OSError:
        return None
    return unescape(found.group(1)) if found else None


def _older_page(report: Path, other: str, banner: str) -> str | None:
    """``report/index.html`` as an older version drew it for run ``other``, under ``banner``
    (in place of an earlier one); None when its run folder (its pictures) is gone."""
    try:
        html = (report / "index.html").read_text(encoding="utf-8")
    except OSError as err:
        log.warning("cannot keep the latest page of run %s: %s", other, err)
        return None
    if not (report / other / "index.html").is_file() or "<body>" not in html:
        log.warning("cannot keep the latest page of run %s: its folder or <body> is gone", other)
        return None
    html = OLD_BANNER.sub("", html)
    tag = f'<p class="banner" id="last-checked" style="{BANNER_STYLE}">{banner}</p>\n'
    return html.replace("<body>", f"<body>\n{tag}", 1)


def _plain_name(name: str) -> bool:
    """A single file or folder name (nothing read from a JSON file leads outside report/)."""
    return name not in ("", ".", "..") and Path(name).name == name and "\\" not in name


def _when(summary: dict) -> str:
    """When the run finished (or started; now when it says neither), as UTC minutes."""
    t = summary.get("finished") or summary.get("started")
    if isinstance(t, str):  # read back from JSON
        try:
            t = datetime.fromisoformat(t)
        except ValueError:
            return str(t)
    if not isinstance(t, datetime):
        t = datetime.now(UTC)
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _footprints(gpkg: Path, ids: list[str]) -> dict[str, Any]:
    import pyogrio

    if not ids or "polar_low_footprints" not in gpkg_sql.tables(gpkg):
        return {}
    df = pyogrio.read_dataframe(gpkg, layer="polar_low_footprints")
    df = df[df["polar_low_id"].isin(ids)]
    return dict(zip(df["polar_low_id"], df.geometry, strict=True))
