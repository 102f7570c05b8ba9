"""Styles that show what matters: outlines without fill, labelled polar lows, arrow tracks,
semi-transparent raster ramps with transparent nodata; loaded by QGIS where installed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

import pytest

from scanner.outputs.styles_forecast import write_raster_styles
from tests.scanner.test_outputs_qgis import QGIS_PYTHON


def _qml(text: str) -> ET.Element:
    return ET.fromstring(text.split("\n", 1)[1])


def styles(gpkg) -> dict[str, ET.Element]:
    with sqlite3.connect(gpkg) as con:
        rows = con.execute("SELECT f_table_name, styleQML FROM layer_styles").fetchall()
    return {t: _qml(q) for t, q in rows}


def test_layer_styles_in_the_geopackage(scanned):
    s = styles(scanned.out / "detections.gpkg")
    for layer in ("detections", "windows", "scenes", "polar_low_footprints"):
        fills = s[layer].findall(".//layer[@class='SimpleFill']/Option/Option[@name='style']")
        assert fills and {f.get("value") for f in fills} == {"no"}, layer  # outlines only
    lows = s["polar_lows"]
    assert lows.find("renderer-v2").get("attr") == "max_probability"
    assert lows.findall(".//layer[@class='SimpleMarker']")
    text = lows.find("labeling/settings/text-style")
    assert text.get("isExpression") == "1" and "max_probability" in text.get("fieldName")
    assert "time" in text.get("fieldName")
    assert s["tracks"].find(".//layer").get("class") == "ArrowLine"


def test_raster_sidecars(scanned):
    folder = scanned.out / "mosaics" / "m2"
    written = write_raster_styles(folder, "m2")
    assert sorted(p.name for p in written) == ["m2_gradcam.qml", "m2_probability.qml"]
    for path in written:
        r = _qml(path.read_text()).find("pipe/rasterrenderer")
        assert r.get("type") == "singlebandpseudocolor" and 0 < float(r.get("opacity")) < 1
        items = r.findall(".//colorrampshader/item")
        assert items[0].get("alpha") == "0" and float(items[0].get("value")) == 0.0
        assert float(items[-1].get("value")) == 1.0


CHECK = r"""
import json, sys, os
from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer
app = QgsApplication([], False); app.initQgis()
gpkg, rasters = sys.argv[1], sys.argv[2:]
out = {}
for name in ("polar_lows", "polar_low_footprints", "tracks"):
    lyr = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
    r = lyr.renderer()
    out[name] = [lyr.isValid(), lyr.featureCount(), r.type() if r else None,
                 bool(lyr.labelsEnabled())]
for path in rasters:
    lyr = QgsRasterLayer(path, "r", "gdal")
    out[path] = [lyr.isValid(), lyr.renderer().type(), lyr.renderer().opacity()]
print("RESULT " + json.dumps(out), flush=True); os._exit(0)
"""


@pytest.mark.skipif(QGIS_PYTHON is None, reason="qgis.core not importable (apt-get install "
                    "qgis python3-qgis)")  # fmt: skip
def test_qgis_loads_the_styles(scanned, tmp_path):
    folder = scanned.out / "mosaics" / "m2"
    write_raster_styles(folder, "m2")
    rasters = [str(folder / "m2_probability.tif"), str(folder / "m2_gradcam.tif")]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.run([QGIS_PYTHON, "-c", CHECK, str(scanned.out / "detections.gpkg"),
                           *rasters], capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stderr[-2000:]
    out = json.loads(lines[-1][7:])
    assert out["polar_lows"] == [True, 2, "graduatedSymbol", True]
    assert out["polar_low_footprints"][:3] == [True, 2, "graduatedSymbol"]
    assert out["tracks"][:3] == [True, 1, "singleSymbol"]
    for path in rasters:
        valid, renderer, opacity = out[path]
        assert valid and renderer == "singlebandpseudocolor" and 0 < opacity < 1
