"""OUT/polarscan.qgz: its XML parses, layers are in the forecaster's order and grouped by night,
every source exists, styles and time are set; opened by PyQGIS where installed."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
import zipfile

import pytest

from scanner.outputs.qgis_project import write_project
from tests.scanner.test_outputs_qgis import QGIS_PYTHON


@pytest.fixture(scope="module")
def project(scanned):
    path = write_project(scanned.out)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["polarscan.qgs"]
        xml = zf.read("polarscan.qgs").decode()
    return path, ET.fromstring(xml.split("\n", 1)[1])


def test_layer_order_groups_and_sources(project, scanned):
    path, root = project
    tree = root.find("layer-tree-group")
    top = [e.get("name") for e in tree]
    assert top == ["tracks", "polar lows", "polar low footprints", "detections",
                   "night 2022-11-30"]  # fmt: skip
    night = tree.find("layer-tree-group")
    kinds = [e.get("name").split()[0] for e in night]
    assert kinds == ["probability", "probability", "Grad-CAM", "Grad-CAM", "RGB", "RGB"]
    layers = {ml.findtext("id"): ml for ml in root.iter("maplayer")}
    for node in tree.iter("layer-tree-layer"):
        ml = layers[node.get("id")]
        source = ml.findtext("datasource")
        file = source.split("|")[0]
        assert file.startswith("./") and (path.parent / file).is_file(), source
        assert ml.find("srs/spatialrefsys/authid").text == "EPSG:3413"
        assert ml.find("temporal").get("enabled") == "1"
    pl = next(ml for ml in layers.values() if ml.findtext("layername") == "polar lows")
    assert pl.find("temporal").get("startField") == "time"
    assert pl.find("renderer-v2").get("type") == "graduatedSymbol"
    assert pl.find("labeling").get("type") == "simple"
    tr = next(ml for ml in layers.values() if ml.findtext("layername") == "tracks")
    assert tr.find("renderer-v2/symbols/symbol/layer").get("class") == "ArrowLine"
    cam = next(ml for ml in layers.values() if ml.findtext("layername").startswith("Grad-CAM"))
    assert cam.find("pipe/rasterrenderer").get("type") == "singlebandpseudocolor"
    assert cam.find("temporal/fixedRange/start").text == "2022-11-30T07:43:42Z"


def test_rewritten_atomically(project, scanned):
    path, _ = project
    again = write_project(scanned.out)
    assert again == path and zipfile.is_zipfile(path)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".polarscan.qgz")]


CHECK = r"""
import json, sys, os
from qgis.core import QgsApplication, QgsProject
app = QgsApplication([], False); app.initQgis()
p = QgsProject.instance(); ok = p.read(sys.argv[1])
out = {"ok": ok, "layers": {l.name(): [l.isValid(), l.temporalProperties().isActive()]
                            for l in p.mapLayers().values()},
       "order": [l.name() for l in p.layerTreeRoot().layerOrder()]}
print("RESULT " + json.dumps(out), flush=True); os._exit(0)
"""


@pytest.mark.skipif(QGIS_PYTHON is None, reason="qgis.core not importable (apt-get install "
                    "qgis python3-qgis)")  # fmt: skip
def test_pyqgis_opens_the_project(project, tmp_path):
    path, _ = project
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.run([QGIS_PYTHON, "-c", CHECK, str(path)], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stderr[-2000:]
    out = json.loads(lines[-1][7:])
    assert out["ok"] and all(valid and timed for valid, timed in out["layers"].values()), out
    assert out["order"][:4] == ["tracks", "polar lows", "polar low footprints", "detections"]
