"""``OUT/polarscan.qgz``: one QGIS project over everything the scanner wrote, rewritten per run.

Hand-written project XML (no PyQGIS at run time), zipped as QGIS does (``polarscan.qgs`` inside
``polarscan.qgz``) and renamed into place atomically. Paths are relative, so the output folder
can be moved or shared. Layer order, top to bottom: tracks, polar lows, footprints, detections,
then one group per night (newest first) with its probability, Grad-CAM and RGB mosaics. Vector
layers are time-aware from their fields (``time``; ``first_time``…``last_time``; ``start``…
``stop``) and rasters from their mosaic's sensing time, so QGIS' temporal controller steps
through the nights. Styles are the same QML the GeoPackage and the sidecars carry.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from polarscan.common.atomic import atomic_path

PROJECT_NAME = "polarscan.qgz"
QGIS_VERSION = "3.22.16-Białowieża"
RASTER_SHOWN = timedelta(hours=6)  # a mosaic stays on the time slider this long after sensing

#: (layer, title, temporal (mode, start field, end field)) top to bottom
VECTOR_LAYERS = (
    ("tracks", "tracks", (2, "first_time", "last_time")),
    ("polar_lows", "polar lows", (1, "time", "")),
    ("polar_low_footprints", "polar low footprints", (1, "time", "")),
    ("detections", "detections", (2, "start", "stop")),
)
RASTER_KINDS = (("probability", "probability"), ("gradcam", "Grad-CAM"), ("rgb", "RGB"))


@dataclass(frozen=True)
class MosaicEntry:
    mosaic_id: str
    start: datetime
    stop: datetime
    folder: Path  # relative to the output folder

    @property
    def night(self) -> str:
        return f"{self.start:%Y-%m-%d}"


def list_mosaics(out_dir: Path, gpkg: Path, nights: int) -> list[MosaicEntry]:
    """Mosaics of the last ``nights`` nights with their sensing times (``scenes`` layer) and a
    folder under ``mosaics/``, newest first."""
    import pandas as pd
    import pyogrio

    if not gpkg.exists():
        return []
    df = pyogrio.read_dataframe(gpkg, layer="scenes", read_geometry=False)
    if df.empty:
        return []
    df["start"] = pd.to_datetime(df["start"], utc=True)
    df["stop"] = pd.to_datetime(df["stop"], utc=True)
    spans = df.groupby("mosaic_id").agg(start=("start", "min"), stop=("stop", "max"))
    entries = [
        MosaicEntry(mid, r.start.to_pydatetime(), r.stop.to_pydatetime(), Path("mosaics") / mid)
        for mid, r in spans.sort_values("start", ascending=False).iterrows()
        if (out_dir / "mosaics" / mid).is_dir()
    ]
    keep = sorted({e.night for e in entries}, reverse=True)[:nights]
    return [e for e in entries if e.night in keep]


def _srs(parent: ET.Element, authid: str) -> None:
    from pyproj import CRS

    ref = ET.SubElement(parent, "spatialrefsys")
    ET.SubElement(ref, "wkt").text = CRS(authid).to_wkt()
    ET.SubElement(ref, "authid").text = authid


def _style_children(qml: str) -> list[ET.Element]:
    root = ET.fromstring(qml.split("\n", 1)[1] if qml.startswith("<!DOCTYPE") else qml)
    return [c for c in root if c.tag not in ("layerGeometryType",)]


def _layer_id(name: str, source: str) -> str:
    return f"{name}_{hashlib.blake2s(source.encode(), digest_size=6).hexdigest()}"


def _maplayer(kind: str, lid: str, title: str, source: str, provider: str, crs: str):
    ml = ET.Element("maplayer", type=kind)
    ET.SubElement(ml, "id").text = lid
    ET.SubElement(ml, "datasource").text = source
    ET.SubElement(ml, "layername").text = title
    _srs(ET.SubElement(ml, "srs"), crs)
    ET.SubElement(ml, "provider", encoding="UTF-8").text = provider
    return ml


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def project_xml(out_dir: Path, mosaics: list[MosaicEntry], crs: str = "EPSG:3413") -> str:
    """The .qgs document (paths relative to ``out_dir``)."""
    from scanner.outputs.styles import layer_qml
    from scanner.outputs.styles_forecast import raster_qml

    root = ET.Element("qgis", projectname="polarscan", version=QGIS_VERSION)
    ET.SubElement(root, "title").text = "polarscan"
    _srs(ET.SubElement(root, "projectCrs"), crs)
    tree = ET.SubElement(root, "layer-tree-group")
    layers = ET.SubElement(root, "projectlayers")

    def tree_layer(parent, lid, title, source, provider):
        ET.SubElement(parent, "layer-tree-layer", id=lid, name=title, source=source,
                      providerKey=provider, checked="Qt::Checked", expanded="0")  # fmt: skip

    for table, title, (mode, start, end) in VECTOR_LAYERS:
        source = f"./detections.gpkg|layername={table}"
        lid = _layer_id(table, source)
        tree_layer(tree, lid, title, source, "ogr")
        ml = _maplayer("vector", lid, title, source, "ogr", crs)
        ET.SubElement(ml, "temporal", enabled="1", mode=str(mode), startField=start,
                      endField=end, accumulate="0", durationUnit="min", fixedDuration="0",
                      durationField="", startExpression="", endExpression="")  # fmt: skip
        ml.extend(_style_children(layer_qml(table)))
        layers.append(ml)
    for night in sorted({m.night for m in mosaics}, reverse=True):
        group = ET.SubElement(tree, "layer-tree-group", name=f"night {night}",
                              checked="Qt::Checked", expanded="1")  # fmt: skip
        tonight = [m for m in mosaics if m.night == night]
        for kind, label in RASTER_KINDS:
            for m in tonight:
                path = out_dir / m.folder / f"{m.mosaic_id}_{kind}.tif"
                if not path.exists():
                    continue
                source = f"./{(m.folder / path.name).as_posix()}"
                lid = _layer_id(f"{kind}_{m.mosaic_id}", source)
                title = f"{label} {m.start:%H:%M} {m.mosaic_id}"
                tree_layer(group, lid, title, source, "gdal")
                ml = _maplayer("raster", lid, title, source, "gdal", crs)
                temporal = ET.SubElement(ml, "temporal", enabled="1", mode="0", fetchMode="0")
                rng = ET.SubElement(temporal, "fixedRange")
                ET.SubElement(rng, "start").text = _iso(m.start)
                ET.SubElement(rng, "end").text = _iso(m.stop + RASTER_SHOWN)
                if kind != "rgb":
                    ml.extend(_style_children(raster_qml(kind)))
                layers.append(ml)
    props = ET.SubElement(root, "properties")
    paths = ET.SubElement(props, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        root, encoding="unicode"
    )


def write_project(out_dir: str | Path, nights: int = 7) -> Path:
    """Write ``OUT/polarscan.qgz`` atomically; returns its path."""
    out = Path(out_dir)
    xml = project_xml(out, list_mosaics(out, out / "detections.gpkg", nights))
    dest = out / PROJECT_NAME
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("polarscan.qgs", xml)
    return dest
