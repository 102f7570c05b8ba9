"""Optional: the outputs open in a real, headless QGIS (Debian's 3.22 LTR, GDAL 3.6) valid, styled
and without warnings. Skipped when no Python on this machine can import ``qgis.core``
(``apt-get install qgis python3-qgis``). QGIS runs in a subprocess because its Python is the
system one, not the project's virtual environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from scanner.outputs.gpkg import write_results
from scanner.outputs.rasters import write_float_cog
from tests.support.outputs_mosaics import write_rgb_mosaic

#: a headless QGIS that collects every GDAL and QGIS message it gives (``msgs``)
QGIS = r"""
import json, sys
from osgeo import gdal
from qgis.core import Qgis, QgsApplication, QgsRasterLayer, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
msgs = []
gdal.PushErrorHandler(lambda cls, num, msg: msgs.append(f"gdal[{int(cls)}]: {msg}"))
QgsApplication.messageLog().messageReceived.connect(
    lambda m, tag, lvl: msgs.append(f"qgis[{tag}/{int(lvl)}]: {m}") if int(lvl) >= 1 else None)
"""

CHECK = QGIS + r"""
gpkg, rasters = sys.argv[1], sys.argv[2:]
out = {"version": Qgis.QGIS_VERSION, "layers": {}, "rasters": {}}
for name in ("detections", "windows", "scenes", "runs"):
    lyr = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
    r = lyr.renderer()
    n_read = sum(1 for f in lyr.getFeatures() if f.attributes() is not None)  # parses every field
    out["layers"][name] = {
        "read": n_read,
        "valid": lyr.isValid(), "count": lyr.featureCount(), "crs": lyr.crs().authid(),
        "renderer": r.type() if r else None,
        "attr": r.classAttribute() if r and r.type() == "graduatedSymbol" else None,
        "ranges": len(r.ranges()) if r and r.type() == "graduatedSymbol" else 0,
    }
for path in rasters:
    lyr = QgsRasterLayer(path, "r", "gdal")
    out["rasters"][path] = {"valid": lyr.isValid(), "crs": lyr.crs().authid(),
                            "bands": lyr.bandCount()}
app.processEvents()
out["messages"] = msgs
print("RESULT " + json.dumps(out), flush=True)
import os
os._exit(0)  # exitQgis() with layers alive segfaults on 3.22; nothing left to clean up
"""


def _qgis_python() -> str | None:
    for exe in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if exe and os.path.exists(exe):
            ok = subprocess.run(
                [exe, "-c", "import qgis.core, osgeo.gdal"], capture_output=True, timeout=60
            )
            if ok.returncode == 0:
                return exe
    return None


QGIS_PYTHON = _qgis_python()


@pytest.mark.skipif(
    QGIS_PYTHON is None, reason="qgis.core not importable (apt-get install qgis python3-qgis)"
)
def test_outputs_open_styled_in_qgis(tmp_path):
    from datetime import UTC, datetime

    from shapely.geometry import box

    from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
    from scanner.tiling import window_grid
    from training.card import ModelCard

    rgb_path = tmp_path / "rgb.tif"
    _, transform = write_rgb_mosaic(rgb_path, 120, 100)
    card = ModelCard(input_size=64, crop=32, window_px=64, pixel_spacing_m=2000)
    windows = window_grid(120, 100, card, 0.5)
    probs = np.linspace(0.0, 1.0, len(windows))
    t0 = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)
    scene = SceneRecord("S1A_EW_GRDM_1SDH_x", t0, t0, box(60.0, 77.0, 70.0, 80.0))
    res = MosaicResult("m1", "EPSG:3413", transform, windows=tuple(windows),
                       probabilities=probs, scenes=(scene,))  # fmt: skip
    prov = Provenance("run-1", "demo", 0.5)
    gpkg = write_results(tmp_path / "detections.gpkg", [res], prov, {"run_id": "run-1"})
    gpkg = write_results(gpkg, [res], prov, {"run_id": "run-1", "started": t0})  # a rerun
    prob = np.full((120, 100), np.nan, np.float32)
    prob[10:50, 10:50] = 0.7
    prob_path = write_float_cog(
        tmp_path / "probability.tif", prob, transform=transform, crs="EPSG:3413", name="p"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.run(
        [QGIS_PYTHON, "-c", CHECK, str(gpkg), str(rgb_path), str(prob_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-2000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    layers = out["layers"]
    for name in ("detections", "windows", "scenes"):
        assert layers[name]["valid"] and layers[name]["crs"] == "EPSG:3413", layers[name]
        assert layers[name]["renderer"] == "graduatedSymbol", layers[name]
        assert layers[name]["ranges"] == 5
    assert layers["detections"]["attr"] == "probability"
    assert layers["scenes"]["attr"] == "max_probability"
    assert layers["windows"]["count"] == layers["windows"]["read"] == len(windows)
    assert layers["detections"]["count"] == int((probs >= 0.5).sum())
    assert layers["runs"]["valid"] and layers["runs"]["count"] == 1
    for info in out["rasters"].values():
        assert info["valid"] and info["crs"] == "EPSG:3413"
    assert out["messages"] == [], out["messages"]


LIVE = QGIS + r"""
layers = {n: QgsVectorLayer(f"{sys.argv[1]}|layername={n}", n, "ogr") for n in ("windows", "runs")}
def counts():
    return {n: sum(1 for _ in lyr.getFeatures()) for n, lyr in layers.items()}
print("BEFORE " + json.dumps(counts()), flush=True)
sys.stdin.readline()  # the test publishes while the layers stay open
for lyr in layers.values():
    lyr.dataProvider().reloadData()
    lyr.reload()
print("AFTER " + json.dumps(counts()), flush=True)
print("MESSAGES " + json.dumps(msgs), flush=True)
import os
os._exit(0)
"""


@pytest.mark.skipif(
    QGIS_PYTHON is None, reason="qgis.core not importable (apt-get install qgis python3-qgis)"
)
def test_qgis_keeps_the_layers_open_while_a_scan_publishes(tmp_path, monkeypatch):
    """A forecaster's QGIS with the layers open does not stop a publish (each is one SQLite
    transaction on the file in place); a reload shows the new rows, with no warning."""
    from datetime import UTC, datetime

    from shapely.geometry import box

    from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
    from scanner.outputs import gpkg_tx
    from scanner.tiling import window_grid
    from training.card import ModelCard

    monkeypatch.setattr(gpkg_tx, "LOCK_TIMEOUT_S", 20.0)  # fail, not hang, if QGIS held a lock
    _, transform = write_rgb_mosaic(tmp_path / "rgb.tif", 120, 100)
    windows = tuple(
        window_grid(
            120, 100, ModelCard(input_size=64, crop=32, window_px=64, pixel_spacing_m=2000), 0.5
        )
    )
    t0 = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)

    def mosaic(mid: str) -> MosaicResult:
        scene = SceneRecord(f"S1A_EW_GRDM_1SDH_{mid}", t0, t0, box(60.0, 77.0, 70.0, 80.0))
        return MosaicResult(mid, "EPSG:3413", transform, windows=windows,
                            probabilities=np.linspace(0, 1, len(windows)), scenes=(scene,))  # fmt: skip

    prov = Provenance("run-1", "demo", 0.5)
    gpkg = write_results(tmp_path / "detections.gpkg", [mosaic("m1")], prov, {"run_id": "run-1"})
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.Popen([QGIS_PYTHON, "-c", LIVE, str(gpkg)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        before = proc.stdout.readline()
        assert before.startswith("BEFORE "), proc.stderr.read()[-2000:] if proc.poll() else before
        assert json.loads(before[7:]) == {"windows": len(windows), "runs": 1}
        write_results(gpkg, [mosaic("m2")], Provenance("run-2", "demo", 0.5), {"run_id": "run-2"})
        proc.stdin.write("go\n")
        proc.stdin.flush()
        after = proc.stdout.readline()
        messages = proc.stdout.readline()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads(after[6:]) == {"windows": 2 * len(windows), "runs": 2}
    assert json.loads(messages[9:]) == []
    import sqlite3

    with sqlite3.connect(gpkg) as con:  # QGIS reading left the file in its journal mode
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
