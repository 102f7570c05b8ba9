"""The STAC catalog of the outputs: structure, relative hrefs, replacement on rerun."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pystac
import pytest
from shapely.geometry import box

from polarscan.common.errors import UsageError
from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
from scanner.outputs.stac import GPKG_MEDIA_TYPE, read_catalog, write_stac
from scanner.tiling import window_grid
from training.card import ModelCard

START = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)
STOP = datetime(2022, 11, 30, 1, 44, 46, tzinfo=UTC)
NAME = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"


def outputs(out, mosaic_id: str) -> dict:
    folder = out / "mosaics" / mosaic_id
    folder.mkdir(parents=True, exist_ok=True)
    files = {k: folder / f"{k}.tif" for k in ("rgb", "probability", "gradcam", "ig")}
    files["detections"] = out / "detections.gpkg"
    for p in files.values():
        p.write_bytes(b"x")
    return files


PROV = Provenance("run-1", "demo-192", 0.5)
CARD = ModelCard(input_size=64, crop=32, window_px=64, pixel_spacing_m=2000)


def item(out, mosaic_id: str, max_p: float = 0.8) -> MosaicResult:
    windows = tuple(window_grid(100, 80, CARD, 0.5))
    probs = np.linspace(0.0, max_p, len(windows), dtype=np.float64)
    return MosaicResult(
        mosaic_id=mosaic_id,
        crs="EPSG:3413",
        transform=None,
        footprint=box(60.0, 77.0, 70.0, 80.0),
        scenes=(SceneRecord(NAME, START, STOP, box(60.0, 77.0, 70.0, 80.0)),),
        windows=windows,
        probabilities=probs,
        rasters=outputs(out, mosaic_id),
    )


def test_catalog_items_and_assets(tmp_path):
    out = tmp_path / "out"
    cat_path = write_stac(out, [item(out, "m1")], PROV)
    assert cat_path == out / "stac" / "catalog.json"
    cat = read_catalog(out)
    (it,) = list(cat.get_items())
    assert it.id == "m1"
    assert it.datetime is None
    assert it.common_metadata.start_datetime == START
    assert it.common_metadata.end_datetime == STOP
    assert it.bbox == [60.0, 77.0, 70.0, 80.0]
    assert it.geometry["type"] == "Polygon"
    p = it.properties
    assert p["platform"] == "sentinel-1a" and p["instruments"] == ["c-sar"]
    assert p["sar:instrument_mode"] == "EW" and p["sar:polarizations"] == ["HH", "HV"]
    assert p["polarscan:model_id"] == "demo-192"
    assert p["polarscan:max_probability"] == 0.8
    assert any("sar" in e for e in it.stac_extensions)
    assert set(it.assets) == {"rgb", "probability", "gradcam", "ig", "detections"}
    assert it.assets["rgb"].roles == ["visual"]
    assert it.assets["probability"].media_type == pystac.MediaType.COG
    assert it.assets["detections"].media_type == GPKG_MEDIA_TYPE
    # every href on disk is relative and resolves to the file
    raw = json.loads((out / "stac" / "m1" / "m1.json").read_text())
    for asset in raw["assets"].values():
        assert not asset["href"].startswith("/")
    assert raw["assets"]["rgb"]["href"] == "../../mosaics/m1/rgb.tif"
    for link in json.loads(cat_path.read_text())["links"]:
        assert not link["href"].startswith("/")
    for key, asset in it.assets.items():
        assert asset.get_absolute_href() == str((outputs(out, "m1")[key]).resolve())
    try:  # schema validation needs jsonschema and the network: structural checks above suffice
        import jsonschema  # noqa: F401
    except ImportError:
        it.to_dict()  # serialisable
    assert not list((out).glob(".stac*"))


def test_rerun_replaces_item_and_folder_moves(tmp_path):
    out = tmp_path / "out"
    write_stac(out, [item(out, "m1", 0.8), item(out, "m2", 0.3)], PROV)
    write_stac(out, [item(out, "m1", 0.1)], PROV)
    cat = read_catalog(out)
    items = {i.id: i for i in cat.get_items()}
    assert sorted(items) == ["m1", "m2"]
    assert items["m1"].properties["polarscan:max_probability"] == 0.1
    assert items["m2"].properties["polarscan:max_probability"] == 0.3
    links = [ln["href"] for ln in json.loads((out / "stac/catalog.json").read_text())["links"]]
    assert links.count("./m1/m1.json") == 1
    # self-contained: the whole output folder can be moved
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    rgb = next(read_catalog(moved).get_items()).assets["rgb"].get_absolute_href()
    assert rgb.startswith(str(moved)) and (moved / "mosaics").exists()


def test_bad_items(tmp_path):
    out = tmp_path / "out"
    it = replace(item(out, "m1"), rasters={"rgb": out / "missing.tif"})
    with pytest.raises(UsageError, match="not found"):
        write_stac(out, [it], PROV)
    assert not (out / "stac").exists()
    it = replace(item(out, "m2"), footprint=box(0, 0, 0, 0).buffer(0))
    with pytest.raises(UsageError, match="no footprint"):
        write_stac(out, [it], PROV)
