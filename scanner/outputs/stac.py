"""A STAC catalog of the scan outputs (``<out>/stac/catalog.json``), one item per mosaic.

Self-contained with relative hrefs, so the output folder can be moved, synced or served as is.
Re-running a mosaic replaces its item. The catalog folder is rebuilt in a temporary copy and
swapped in whole (``polarscan.common.atomic.atomic_path``), so a crash never leaves a half-written catalog.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import UsageError
from scanner.mosaic.result import MosaicResult, Provenance

SAR_EXT = "https://stac-extensions.github.io/sar/v1.0.0/schema.json"
PROJ_EXT = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
GPKG_MEDIA_TYPE = "application/geopackage+sqlite3"

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


def write_stac(out_dir: str | Path, mosaics: Sequence[MosaicResult], prov: Provenance) -> Path:
    """Add or replace the items of ``mosaics`` in ``<out_dir>/stac/catalog.json``; return the
    catalog path."""
    import pystac

    root = Path(out_dir) / "stac"
    with atomic_path(root) as tmp:
        if (root / "catalog.json").is_file():
            shutil.copytree(root, tmp)
            catalog = pystac.Catalog.from_file(str(tmp / "catalog.json"))
        else:
            tmp.mkdir(parents=True)
            catalog = pystac.Catalog(
                id="polarscan",
                description="Polar-low scan results: mosaics, probabilities, saliency, detections",
                title="polarscan outputs",
            )
        for m in mosaics:
            if next(catalog.get_items(m.mosaic_id), None) is not None:
                catalog.remove_item(m.mosaic_id)
                shutil.rmtree(tmp / m.mosaic_id, ignore_errors=True)
            # the item will live at <root>/<id>/<id>.json: hrefs relative to that folder
            catalog.add_item(build_item(m, prov, root / m.mosaic_id))
        catalog.normalize_hrefs(str(tmp) + os.sep)  # a folder (its ".tmp" looks like a file)
        catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def read_catalog(out_dir: str | Path):
    import pystac

    return pystac.Catalog.from_file(str(Path(out_dir) / "stac" / "catalog.json"))
