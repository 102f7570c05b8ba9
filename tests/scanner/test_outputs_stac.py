"""The STAC catalog of the outputs: structure (root → month → item), relative hrefs,
replacement on rerun, a publish touching only its own files, the migration of the flat layout."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pystac
import pytest
from shapely.geometry import box

from polarscan.common.errors import UsageError
from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
from scanner.outputs import stac
from scanner.outputs.stac import GPKG_MEDIA_TYPE, build_item, item_path, read_catalog, write_stac
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


def item(out, mosaic_id: str, max_p: float = 0.8, start: datetime = START) -> MosaicResult:
    windows = tuple(window_grid(100, 80, CARD, 0.5))
    probs = np.linspace(0.0, max_p, len(windows), dtype=np.float64)
    stop = start + (STOP - START)
    return MosaicResult(
        mosaic_id=mosaic_id,
        crs="EPSG:3413",
        transform=None,
        footprint=box(60.0, 77.0, 70.0, 80.0),
        scenes=(SceneRecord(NAME, start, stop, box(60.0, 77.0, 70.0, 80.0)),),
        windows=windows,
        probabilities=probs,
        rasters=outputs(out, mosaic_id),
    )


def test_catalog_items_and_assets(tmp_path):
    out = tmp_path / "out"
    cat_path = write_stac(out, [item(out, "m1")], PROV)
    assert cat_path == out / "stac" / "catalog.json"
    cat = read_catalog(out)
    (it,) = list(cat.get_items(recursive=True))
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
    path = out / "stac" / "2022" / "11" / "m1" / "m1.json"
    assert item_path(out, item(out, "m1")) == path
    raw = json.loads(path.read_text())
    for asset in raw["assets"].values():
        assert not asset["href"].startswith("/")
    assert raw["assets"]["rgb"]["href"] == "../../../../mosaics/m1/rgb.tif"
    for doc in (raw, json.loads(cat_path.read_text())):
        for link in doc["links"]:
            assert not link["href"].startswith("/")
    assert "self" not in {ln["rel"] for ln in raw["links"]}
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
    items = {i.id: i for i in cat.get_items(recursive=True)}
    assert sorted(items) == ["m1", "m2"]
    assert items["m1"].properties["polarscan:max_probability"] == 0.1
    assert items["m2"].properties["polarscan:max_probability"] == 0.3
    month = json.loads((out / "stac/2022/11/catalog.json").read_text())
    assert [ln["href"] for ln in month["links"] if ln["rel"] == "item"] == [
        "./m1/m1.json",
        "./m2/m2.json",
    ]
    # self-contained: the whole output folder can be moved
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    rgb = next(read_catalog(moved).get_items(recursive=True)).assets["rgb"].get_absolute_href()
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


# --- root → month → item ----------------------------------------------------------------------

MONTHS = {  # mosaic id → start: three months across a year's end, two mosaics in one of them
    "a": datetime(2022, 11, 30, 23, 59, tzinfo=UTC),
    "b": datetime(2022, 12, 1, 0, 1, tzinfo=UTC),
    "c": datetime(2022, 12, 14, 5, 0, tzinfo=UTC),
    "d": datetime(2023, 1, 2, 3, 4, tzinfo=UTC),
}


def months(out, ids=MONTHS) -> list[MosaicResult]:
    return [item(out, mid, start=MONTHS[mid]) for mid in ids]


def links(path: Path, rel: str) -> list[str]:
    return [ln["href"] for ln in json.loads(path.read_text())["links"] if ln["rel"] == rel]


def check_tree(out, expected: dict[str, set[str]]) -> None:
    """The root links exactly the months of ``expected`` (month → item ids), each month exactly
    its items; pystac finds every item, with asset hrefs that resolve to existing files."""
    root = out / "stac"
    assert links(root / "catalog.json", "child") == [
        f"./{m}/catalog.json" for m in sorted(expected)
    ]
    assert links(root / "catalog.json", "item") == []
    for month, ids in expected.items():
        assert links(root / month / "catalog.json", "item") == [
            f"./{i}/{i}.json" for i in sorted(ids)
        ]
        for mid in ids:
            doc = json.loads((root / month / mid / f"{mid}.json").read_text())
            assert {ln["rel"]: ln["href"] for ln in doc["links"]} == {
                "root": "../../../catalog.json",
                "parent": "../catalog.json",
            }
    cat = pystac.Catalog.from_file(str(root / "catalog.json"))
    found = {}
    for it in cat.get_items(recursive=True):
        found[it.id] = it
        assert Path(it.get_parent().get_self_href()).parent.relative_to(root).as_posix() in expected
    assert set(found) == set().union(*expected.values())
    cat.make_all_asset_hrefs_absolute()
    for it in found.values():
        for asset in it.assets.values():
            assert os.path.isabs(asset.href) and Path(asset.href).is_file(), asset.href
            assert Path(asset.href).resolve().is_relative_to(out.resolve())
    # nothing half-written or left over
    assert not [p for p in root.rglob(".*")] and not list(out.glob(".stac*"))


def test_items_of_several_months(tmp_path):
    out = tmp_path / "out"
    write_stac(out, months(out), PROV)
    check_tree(out, {"2022/11": {"a"}, "2022/12": {"b", "c"}, "2023/01": {"d"}})
    month = json.loads((out / "stac/2022/12/catalog.json").read_text())
    assert month["id"] == "polarscan-2022-12" and month["title"] == "2022-12"
    assert {ln["rel"]: ln["href"] for ln in month["links"] if ln["rel"] != "item"} == {
        "root": "../../catalog.json",
        "parent": "../../catalog.json",
    }
    # one publish per mosaic (as the scan does) builds the same tree
    one = tmp_path / "one"
    for m in months(one):
        write_stac(one, [m], PROV)
    for p in (out / "stac").rglob("*.json"):
        assert p.read_text() == (one / "stac" / p.relative_to(out / "stac")).read_text(), p
    assert not list((out / "stac").glob("*/*.json"))  # no item at the top (the old flat layout)


def test_start_month_is_utc(tmp_path):
    out = tmp_path / "out"
    late = datetime(2022, 12, 1, 0, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    assert late.month == 11  # 30 Nov 19:30 at UTC-5, 1 Dec in UTC
    write_stac(out, [item(out, "m1", start=late)], PROV)
    assert (out / "stac/2022/12/m1/m1.json").is_file()


def snapshot(root: Path) -> dict[Path, tuple[int, int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if p.is_file()}  # fmt: skip


def test_publish_touches_only_its_files(tmp_path, monkeypatch):
    out = tmp_path / "out"
    for m in months(out):
        write_stac(out, [m], PROV)
    root = out / "stac"
    before = snapshot(root)
    read = []
    real_read = stac._read
    monkeypatch.setattr(stac, "_read", lambda p: read.append(p) or real_read(p))
    new = item(out, "e", start=datetime(2022, 12, 20, tzinfo=UTC))  # into an existing month
    write_stac(out, [new], PROV)
    after = snapshot(root)
    added = set(after) - set(before)
    changed = {p for p in before if after.get(p) != before[p]}
    assert added == {root / "2022/12/e/e.json"}
    assert changed == {root / "2022/12/catalog.json"}  # the root untouched: no new month
    assert read == [root / "catalog.json", root / "2022/12/catalog.json"]
    check_tree(out, {"2022/11": {"a"}, "2022/12": {"b", "c", "e"}, "2023/01": {"d"}})

    # replacing an item: only the item file changes (its month already links it)
    before, read[:] = after, []
    write_stac(out, [item(out, "c", 0.1, start=MONTHS["c"])], PROV)
    after = snapshot(root)
    assert set(after) == set(before)
    assert {p for p in before if after[p] != before[p]} == {root / "2022/12/c/c.json"}

    # a new month: its item, its catalog and the root
    before = after
    write_stac(out, [item(out, "f", start=datetime(2023, 3, 1, tzinfo=UTC))], PROV)
    after = snapshot(root)
    assert set(after) - set(before) == {root / "2023/03/f/f.json", root / "2023/03/catalog.json"}
    assert {p for p in before if after[p] != before[p]} == {root / "catalog.json"}


def test_replacing_keeps_one_link_and_new_content(tmp_path):
    out = tmp_path / "out"
    write_stac(out, months(out), PROV)
    for p in (0.1, 0.95):
        write_stac(out, [item(out, "b", p, start=MONTHS["b"])], PROV)
        assert links(out / "stac/2022/12/catalog.json", "item") == ["./b/b.json", "./c/c.json"]
        doc = json.loads((out / "stac/2022/12/b/b.json").read_text())
        assert doc["properties"]["polarscan:max_probability"] == p
    check_tree(out, {"2022/11": {"a"}, "2022/12": {"b", "c"}, "2023/01": {"d"}})


def test_crash_between_item_and_month_leaves_an_unlinked_item_the_rerun_links(
    tmp_path, monkeypatch
):
    out = tmp_path / "out"
    write_stac(out, months(out, ["a", "b"]), PROV)
    real_write = stac._write

    def crash_on_catalogs(path, doc):
        if path.name == "catalog.json":
            raise KeyboardInterrupt("killed")
        real_write(path, doc)

    monkeypatch.setattr(stac, "_write", crash_on_catalogs)
    new = [item(out, "c", start=MONTHS["c"]), item(out, "d", start=MONTHS["d"])]
    with pytest.raises(KeyboardInterrupt):
        write_stac(out, new, PROV)
    assert (out / "stac/2022/12/c/c.json").is_file()  # written, not linked yet
    check_tree(out, {"2022/11": {"a"}, "2022/12": {"b"}})
    monkeypatch.setattr(stac, "_write", real_write)
    write_stac(out, new, PROV)
    check_tree(out, {"2022/11": {"a"}, "2022/12": {"b", "c"}, "2023/01": {"d"}})


# --- the earlier flat layout ------------------------------------------------------------------


def write_flat(out, mosaics) -> None:
    """A catalog of the earlier flat layout (``stac/<id>/<id>.json``), written as the earlier
    ``write_stac`` did."""
    root = out / "stac"
    root.mkdir(parents=True)
    cat = pystac.Catalog(id="polarscan", description="old", title="polarscan outputs")
    for m in mosaics:
        cat.add_item(build_item(m, PROV, root / m.mosaic_id))
    cat.normalize_hrefs(str(root) + os.sep)
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)


def test_migration_from_the_flat_layout(tmp_path):
    out = tmp_path / "out"
    write_flat(out, months(out, ["a", "b", "d"]))
    assert links(out / "stac/catalog.json", "item") == ["./a/a.json", "./b/b.json", "./d/d.json"]
    assert json.loads((out / "stac/a/a.json").read_text())["assets"]["rgb"]["href"] == (
        "../../mosaics/a/rgb.tif"
    )
    write_stac(out, [item(out, "c", start=MONTHS["c"])], PROV)
    check_tree(out, {"2022/11": {"a"}, "2022/12": {"b", "c"}, "2023/01": {"d"}})
    assert sorted(p.name for p in (out / "stac").iterdir()) == ["2022", "2023", "catalog.json"]
    doc = json.loads((out / "stac/2022/11/a/a.json").read_text())
    assert doc["assets"]["rgb"]["href"] == "../../../../mosaics/a/rgb.tif"
    assert doc["assets"]["detections"]["href"] == "../../../../detections.gpkg"
    root = json.loads((out / "stac/catalog.json").read_text())
    assert (root["id"], root["description"]) == ("polarscan", "old")  # kept
    # a migrated item is the item the new code writes (but for its run's provenance)
    migrated = (out / "stac/2022/11/a/a.json").read_text()
    write_stac(out, [item(out, "a", start=MONTHS["a"])], PROV)
    assert (out / "stac/2022/11/a/a.json").read_text() == migrated


def test_a_crash_during_the_migration_leaves_the_flat_catalog_to_migrate_again(
    tmp_path, monkeypatch
):
    out = tmp_path / "out"
    write_flat(out, months(out, ["a", "b", "d"]))
    flat = {p.relative_to(out): p.read_bytes() for p in (out / "stac").rglob("*") if p.is_file()}
    real_write, calls = stac._write, []

    def crash_on_third(path, doc):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        real_write(path, doc)

    monkeypatch.setattr(stac, "_write", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        write_stac(out, [item(out, "c", start=MONTHS["c"])], PROV)
    assert {
        p.relative_to(out): p.read_bytes() for p in (out / "stac").rglob("*") if p.is_file()
    } == flat
    assert not list(out.glob(".stac*"))  # the temporary tree removed
    monkeypatch.setattr(stac, "_write", real_write)
    write_stac(out, [item(out, "c", start=MONTHS["c"])], PROV)
    check_tree(out, {"2022/11": {"a"}, "2022/12": {"b", "c"}, "2023/01": {"d"}})
