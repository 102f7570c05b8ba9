"""A STAC catalog of the scan outputs, one item per mosaic, in sub-catalogs by month.

Layout (every href relative, so the output folder can be moved, synced or served as is)::

    stac/catalog.json                          root: one child link per month
    stac/<YYYY>/<MM>/catalog.json              month of the mosaics' start (UTC): one item link each
    stac/<YYYY>/<MM>/<id>/<id>.json            the item; asset hrefs relative to its folder

A publish costs the same on the first mosaic and on the 100,000th: it writes each new or changed
item file, the month catalog(s) whose item links changed, and the root catalog only when a new
month appears; it reads the root catalog and those month catalogs, nothing else. Each file is
written under a temporary name and renamed (``polarscan.common.atomic.atomic_path``), items
before the month catalog, month catalogs before the root, so a crash leaves at worst an item no
catalog links yet (the rerun links it), never a half-written file or a link to a missing one.
Re-running a mosaic replaces its item: its path is a function of its id and its start month, and
the mosaic id encodes the start (``scanner.mosaic.result.mosaic_id``).

An output folder of the earlier flat layout (``stac/catalog.json`` linking ``./<id>/<id>.json``)
is migrated once, on the first write into it: the new tree is built in a temporary folder and
swapped in whole, so a crash during the migration leaves the flat catalog to migrate again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polarscan.common.atomic import atomic_path, recover_swapped_dir
from polarscan.common.errors import UsageError
from scanner.mosaic.result import MosaicResult, Provenance

SAR_EXT = "https://stac-extensions.github.io/sar/v1.0.0/schema.json"
PROJ_EXT = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
GPKG_MEDIA_TYPE = "application/geopackage+sqlite3"
JSON_MEDIA_TYPE = "application/json"
GEOJSON_MEDIA_TYPE = "application/geo+json"
CATALOG = "catalog.json"
ROOT_ID = "polarscan"
ROOT_TITLE = "polarscan outputs"
ROOT_DESCRIPTION = "Polar-low scan results: mosaics, probabilities, saliency, detections"

log = logging.getLogger(__name__)

# asset key → (title, roles); files not listed get role "data"
ASSET_KINDS: dict[str, tuple[str, list[str]]] = {
    "rgb": ("RGB mosaic (R=G=HV dB, B=HH dB; 0 = nodata)", ["visual"]),
    "probability": ("Polar-low probability (max over covering crops)", ["data"]),
    "gradcam": ("Grad-CAM saliency, probability-weighted", ["data", "overlay"]),
    "ig": ("Integrated Gradients magnitude, probability-weighted", ["data", "overlay"]),
    "detections": ("Detections, windows, scenes and runs (GeoPackage 1.2)", ["metadata"]),
}


def _platforms(names: Sequence[str]) -> list[str]:
    out = []
    for n in names:
        if len(n) >= 3 and n[:2].upper() == "S1":
            out.append(f"sentinel-1{n[2].lower()}")
    return sorted(set(out))


def acquisition(m: MosaicResult) -> tuple[str, tuple[str, ...]] | None:
    """(mode, polarisations) of a mosaic: its own, else read from its product names when they
    all agree; ``None`` when unknown."""
    if m.mode and m.polarisations:
        return m.mode.upper(), tuple(m.polarisations)
    from scanner.sources.base import name_acquisition

    names = [s.name for s in m.scenes] or list(m.products)
    found = {name_acquisition(n) for n in names}
    return found.pop() if len(found) == 1 and None not in found else None


def _epsg(crs: Any) -> int | None:
    from pyproj import CRS

    return CRS.from_user_input(crs).to_epsg() if crs else None


def build_item(m: MosaicResult, prov: Provenance, item_dir: Path):
    """A :class:`pystac.Item` for the mosaic ``m`` (its ``rasters`` are the assets); asset
    hrefs relative to ``item_dir``."""
    import pystac
    from shapely.geometry import mapping

    if m.footprint is None or m.footprint.is_empty:
        raise UsageError(f"mosaic {m.mosaic_id} has no footprint", "pass its lon/lat footprint")
    names = [s.name for s in m.scenes] or list(m.products)
    platforms = _platforms(names)
    acq = acquisition(m)
    props: dict[str, Any] = {
        "constellation": "sentinel-1",
        "instruments": ["c-sar"],
    }
    extensions = []
    if acq is not None:  # the SAR extension requires the mode and polarisations
        props |= {
            "sar:instrument_mode": acq[0],
            "sar:frequency_band": "C",
            "sar:polarizations": list(acq[1]),
            "sar:product_type": "GRD",
        }
        extensions.append(SAR_EXT)
    props |= {
        "polarscan:model_id": prov.model_id,
        "polarscan:max_probability": m.max_probability,
        "polarscan:scenes": names,
        "polarscan:run_id": prov.run_id,
        "polarscan:threshold": prov.threshold,
    }
    if len(platforms) == 1:
        props["platform"] = platforms[0]
    elif platforms:
        props["platform"] = ",".join(platforms)
    epsg = _epsg(m.crs)
    if epsg:
        props["proj:code"] = f"EPSG:{epsg}"
        extensions.append(PROJ_EXT)
    item = pystac.Item(
        id=m.mosaic_id,
        geometry=mapping(m.footprint),
        bbox=list(m.footprint.bounds),
        datetime=None,
        start_datetime=m.sensing_start,
        end_datetime=m.sensing_stop,
        properties=props,
        stac_extensions=extensions,
    )
    for key, value in m.rasters.items():
        p = Path(value)
        if not p.exists():
            raise UsageError(f"asset '{key}' of {m.mosaic_id} not found: {p}", "write it first")
        title, roles = ASSET_KINDS.get(key, (key, ["data"]))
        if key == "rgb" and acq is not None and len(acq[1]) == 2:
            co, cross = acq[1]
            title = f"RGB mosaic (R=G={cross} dB, B={co} dB; 0 = nodata)"
        media = GPKG_MEDIA_TYPE if p.suffix == ".gpkg" else pystac.MediaType.COG
        href = os.path.relpath(p.resolve(), item_dir.resolve())
        item.add_asset(key, pystac.Asset(href=href, media_type=media, roles=roles, title=title))
    return item


def month_of(start: datetime) -> str:
    """The month folder of a mosaic starting at ``start``: ``"<YYYY>/<MM>"`` (UTC; a naive
    time is taken as UTC)."""
    if start.tzinfo is not None:
        start = start.astimezone(UTC)
    return f"{start.year:04d}/{start.month:02d}"


def item_path(out_dir: str | Path, m: MosaicResult) -> Path:
    """Where the item of ``m`` lives: ``<out_dir>/stac/<YYYY>/<MM>/<id>/<id>.json``."""
    return Path(out_dir) / "stac" / _item_href(_month(m), m.mosaic_id)


def write_stac(out_dir: str | Path, mosaics: Sequence[MosaicResult], prov: Provenance) -> Path:
    """Add or replace the items of ``mosaics`` in the catalog ``<out_dir>/stac/catalog.json``
    (see the module's docstring for what is written); return the root catalog's path."""
    root = Path(out_dir) / "stac"
    if not root.exists():
        recover_swapped_dir(root)  # a crash in the middle of a migration's swap
    root_doc = _read(root / CATALOG)
    if root_doc is not None and any(ln.get("rel") == "item" for ln in root_doc.get("links", [])):
        root_doc = _migrate_flat(root, root_doc)
    if root_doc is None:
        root_doc = _catalog(ROOT_ID, ROOT_TITLE, ROOT_DESCRIPTION, [_link("root", "./" + CATALOG)])
    title = root_doc.get("title")
    # every item is built (and checked) before anything is written
    by_month: dict[str, dict[str, dict[str, Any]]] = {}
    for m in mosaics:
        month = _month(m)
        item = build_item(m, prov, root / month / m.mosaic_id)
        by_month.setdefault(month, {})[m.mosaic_id] = _item_doc(item.to_dict(
            include_self_link=False, transform_hrefs=False), month, title)  # fmt: skip
    for month, items in by_month.items():
        _write_month(root, month, items, title)
    new_month = _add_links(root_doc, "child", _child_hrefs(by_month))  # root: only on a new month
    if new_month or not (root / CATALOG).is_file():
        _write(root / CATALOG, root_doc)
    return root / CATALOG


def read_catalog(out_dir: str | Path):
    """The root :class:`pystac.Catalog` of ``<out_dir>/stac``; its items are one level down
    (``get_items(recursive=True)``)."""
    import pystac

    return pystac.Catalog.from_file(str(Path(out_dir) / "stac" / CATALOG))


# --- the JSON documents -----------------------------------------------------------------------


def _month(m: MosaicResult) -> str:
    start = m.sensing_start
    if start is None:
        raise UsageError(f"mosaic {m.mosaic_id} has no start time", "pass its scenes or start")
    return month_of(start)


def _name(month: str) -> str:
    """``"2022/11"`` → ``"2022-11"`` (the month catalog's title)."""
    return month.replace("/", "-")


def _child_hrefs(months: dict[str, Any]) -> dict[str, str | None]:
    """The root's child links (href → title) of the month catalogs of ``months``."""
    return {f"./{month}/{CATALOG}": _name(month) for month in months}


def _item_href(month: str, mosaic_id: str) -> str:
    return f"{month}/{mosaic_id}/{mosaic_id}.json"


def _write_month(root: Path, month: str, items: dict[str, dict[str, Any]], title: str | None):
    """Write the ``items`` (id → item dict) of ``month`` under ``root``, then link them from
    the month's catalog (made if absent; rewritten only when a link is new): a crash in between
    leaves an unlinked item, never a link to a missing one."""
    for mid, doc in items.items():
        _write(root / _item_href(month, mid), doc)
    path = root / month / CATALOG
    doc = _read(path) or _month_catalog(month, title)
    if _add_links(doc, "item", {f"./{mid}/{mid}.json": None for mid in items}):
        _write(path, doc)


def _link(rel: str, href: str, title: str | None = None, media: str = JSON_MEDIA_TYPE) -> dict:
    link = {"rel": rel, "href": href, "type": media}
    if title:
        link["title"] = title
    return link


def _catalog(cid: str, title: str, description: str, links: list[dict]) -> dict[str, Any]:
    import pystac

    return {"type": "Catalog", "id": cid, "stac_version": pystac.get_stac_version(),
            "description": description, "links": links, "title": title}  # fmt: skip


def _month_catalog(month: str, root_title: str | None) -> dict[str, Any]:
    name = _name(month)
    up = "../../" + CATALOG
    return _catalog(f"{ROOT_ID}-{name}", name, f"Mosaics whose sensing started in {name} (UTC)",
                    [_link("root", up, root_title), _link("parent", up, root_title)])  # fmt: skip


def _item_doc(doc: dict[str, Any], month: str, root_title: str | None) -> dict[str, Any]:
    """``doc`` (an item's dict) with the links of an item at ``<month>/<id>/<id>.json``."""
    doc["links"] = [_link("root", "../../../" + CATALOG, root_title),
                    _link("parent", "../" + CATALOG, _name(month))]  # fmt: skip
    return doc


def _add_links(doc: dict[str, Any], rel: str, hrefs: dict[str, str | None]) -> bool:
    """Add a ``rel`` link to ``doc`` for each of ``hrefs`` (href → title) it lacks, keeping
    those links sorted by href; whether anything was added."""
    links = doc.setdefault("links", [])
    have = {ln.get("href") for ln in links if ln.get("rel") == rel}
    new = [h for h in hrefs if h not in have]
    if not new:
        return False
    media = GEOJSON_MEDIA_TYPE if rel == "item" else JSON_MEDIA_TYPE
    links += [_link(rel, h, hrefs[h], media) for h in new]
    ours = sorted((ln for ln in links if ln.get("rel") == rel), key=lambda ln: ln["href"])
    doc["links"] = [ln for ln in links if ln.get("rel") != rel] + ours
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _write(path: Path, doc: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False))


# --- the one-off migration from the flat layout -----------------------------------------------


def _migrate_flat(root: Path, root_doc: dict[str, Any]) -> dict[str, Any]:
    """Move the items of a flat catalog (root linking ``./<id>/<id>.json``) into month
    sub-catalogs: the new tree is built in a temporary folder and swapped in whole. Returns the
    new root document."""
    from pystac.utils import str_to_datetime

    title = root_doc.get("title")
    by_month: dict[str, dict[str, dict[str, Any]]] = {}
    for link in root_doc.get("links", []):
        if link.get("rel") != "item":
            continue
        old = root / link["href"]
        doc = _read(old)
        if doc is None:
            log.warning("STAC migration: %s is linked but missing; dropped", old)
            continue
        props = doc.get("properties", {})
        month = month_of(str_to_datetime(props.get("start_datetime") or props["datetime"]))
        new_dir = os.path.join(month, doc["id"])
        for asset in doc.get("assets", {}).values():  # relative to the item's folder: re-base
            href = asset.get("href", "")
            if href and "://" not in href and not os.path.isabs(href):
                target = os.path.normpath(os.path.join(os.path.dirname(link["href"]), href))
                asset["href"] = os.path.relpath(target, new_dir).replace(os.sep, "/")
        by_month.setdefault(month, {})[doc["id"]] = _item_doc(doc, month, title)
    keep = [ln for ln in root_doc.get("links", []) if ln.get("rel") not in ("item", "child")]
    new_root = {**root_doc, "links": keep}
    with atomic_path(root) as tmp:
        for month, items in by_month.items():
            _write_month(tmp, month, items, title)
        _add_links(new_root, "child", _child_hrefs(by_month))
        _write(tmp / CATALOG, new_root)
    n = sum(map(len, by_month.values()))
    log.info("STAC catalog migrated to monthly sub-catalogs: %d items, %d months", n, len(by_month))
    return new_root
