"""The STAC catalog the scan writes, validated offline against the official JSON schemas
vendored in ``tests/data/stac-schemas`` (core item and catalog, and each extension an item
declares), in its layout of month sub-catalogs (root → ``<YYYY>/<MM>/catalog.json`` → items), also
after migrating a catalog of the earlier flat layout. A broken item must fail, or the check
proves nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from shapely.geometry import box

from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
from scanner.outputs.stac import build_item, write_stac

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "stac-schemas"
CORE = "https://schemas.stacspec.org/v1.1.0"
ITEM, CATALOG = (
    f"{CORE}/item-spec/json-schema/item.json",
    f"{CORE}/catalog-spec/json-schema/catalog.json",
)
EXTENSIONS = {
    "https://stac-extensions.github.io/sar/v1.0.0/schema.json": "sar-v1.0.0.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": "projection-v2.0.0.json",
}
NAME = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"


def _registry():
    resources = []
    for path in sorted((SCHEMAS / "stac-spec" / "v1.1.0").glob("*.json")):
        doc = json.loads(path.read_text())
        spec = "catalog-spec" if path.name == "catalog.json" else (
            "collection-spec" if path.name == "collection.json" else "item-spec")  # fmt: skip
        resources.append((f"{CORE}/{spec}/json-schema/{path.name}", doc))
    for path in sorted((SCHEMAS / "geojson").glob("*.json")):
        resources.append((f"https://geojson.org/schema/{path.name}", json.loads(path.read_text())))
    for uri, file in EXTENSIONS.items():
        if (SCHEMAS / "extensions" / file).is_file():
            resources.append((uri, json.loads((SCHEMAS / "extensions" / file).read_text())))
    return referencing.Registry().with_resources(
        (uri, referencing.jsonschema.DRAFT7.create_resource(doc)) for uri, doc in resources
    )


REGISTRY = _registry()


def errors(doc: dict, uri: str) -> list[str]:
    """Validation errors of ``doc`` against the schema at ``uri`` (resolved offline)."""
    schema = REGISTRY.contents(uri)
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, registry=REGISTRY)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def item_errors(doc: dict) -> list[str]:
    out = errors(doc, ITEM)
    for ext in doc.get("stac_extensions", []):
        if ext not in REGISTRY:
            pytest.skip(f"schema of {ext} not vendored in {SCHEMAS} (see its README)")
        out += errors(doc, ext)
    return out


PROV = Provenance("run-1", "demo-192", 0.5)
START = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)


def mosaics(out: Path, starts: list[datetime], crss=("EPSG:3413", None)) -> list[MosaicResult]:
    """``m<i>`` starting at ``starts[i]``, CRS ``crss[i % len(crss)]`` (``None``: no projection
    extension, whose schema may not be vendored)."""
    items = []
    for i, start in enumerate(starts):
        crs, stop = crss[i % len(crss)], start + timedelta(seconds=64)
        folder = out / "mosaics" / f"m{i}"
        folder.mkdir(parents=True)
        assets = {k: str(folder / f"{k}.tif") for k in ("rgb", "probability", "gradcam")}
        for p in assets.values():
            Path(p).write_bytes(b"x")
        items.append(MosaicResult(
            mosaic_id=f"m{i}", crs=crs, transform=None, footprint=box(60.0, 77.0, 70.0, 80.0),
            scenes=(SceneRecord(NAME, start, stop, box(60.0, 77.0, 70.0, 80.0)),),
            rasters=assets,
        ))  # fmt: skip
    return items


@pytest.fixture
def written(tmp_path):
    out = tmp_path / "out"
    return write_stac(out, mosaics(out, [START, START]), PROV)


def _item(catalog: Path, mosaic_id: str) -> dict:
    return json.loads(
        (catalog.parent / "2022" / "11" / mosaic_id / f"{mosaic_id}.json").read_text()
    )


def tree_errors(catalog: Path) -> dict[str, list[str]]:
    """Validation errors of every document reachable from the root ``catalog`` (relative path →
    errors); fails if a link points at a missing file."""
    found, todo = {}, [catalog]
    while todo:
        path = todo.pop()
        doc = json.loads(path.read_text())
        name = path.relative_to(catalog.parent).as_posix()
        found[name] = errors(doc, CATALOG) if doc["type"] == "Catalog" else item_errors(doc)
        for link in doc["links"]:
            if link["rel"] in ("child", "item"):
                todo.append((path.parent / link["href"]).resolve())
                assert todo[-1].is_file(), link
    return found


def test_catalog_is_valid(written):
    doc = json.loads(written.read_text())
    assert doc["stac_version"] == "1.1.0"
    assert errors(doc, CATALOG) == []


def test_item_without_projection_is_valid(written):
    doc = _item(written, "m1")
    assert doc["stac_extensions"] == ["https://stac-extensions.github.io/sar/v1.0.0/schema.json"]
    assert item_errors(doc) == []


def test_item_with_projection_is_valid(written):
    assert item_errors(_item(written, "m0")) == []


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda d: d["properties"].pop("start_datetime"), "properties"),
        (lambda d: d.update(bbox=[60.0]), "bbox"),
        (lambda d: d["properties"].update({"sar:polarizations": ["HH", "XX"]}), "sar:polar"),
        (lambda d: d["properties"].update({"sar:frequency_band": "Q"}), "sar:frequency"),
        (lambda d: d.update(geometry={"type": "Polygon", "coordinates": "x"}), "geometry"),
    ],
    ids=["no-start", "short-bbox", "bad-polarization", "bad-band", "bad-geometry"],
)
def test_broken_item_fails(written, breakage, where):
    doc = copy.deepcopy(_item(written, "m1"))
    breakage(doc)
    found = item_errors(doc)
    assert found, "a broken item passed validation"
    assert any(where.split(":")[0] in e for e in found), found


MONTH_STARTS = [
    START,
    START + timedelta(days=1),
    START + timedelta(days=40),
    START + timedelta(days=400),
]


def test_the_month_layout_is_valid(tmp_path):
    out = tmp_path / "out"
    root = write_stac(out, mosaics(out, MONTH_STARTS, crss=(None,)), PROV)
    found = tree_errors(root)
    assert sorted(found) == [
        "2022/11/catalog.json", "2022/11/m0/m0.json", "2022/12/catalog.json", "2022/12/m1/m1.json",
        "2023/01/catalog.json", "2023/01/m2/m2.json", "2024/01/catalog.json", "2024/01/m3/m3.json",
        "catalog.json",
    ]  # fmt: skip
    assert found == {name: [] for name in found}


def test_the_migrated_flat_layout_is_valid(tmp_path):
    import pystac

    out = tmp_path / "out"
    every = mosaics(out, MONTH_STARTS, crss=(None,))
    old, new = every[:3], every[3:]
    cat = pystac.Catalog(id="polarscan", description="old", title="polarscan outputs")
    for m in old:  # the earlier flat layout, as the earlier write_stac saved it
        cat.add_item(build_item(m, PROV, out / "stac" / m.mosaic_id))
    cat.normalize_hrefs(str(out / "stac") + "/")
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    root = write_stac(out, new, PROV)
    found = tree_errors(root)
    assert len(found) == 1 + 4 + 4 and found == {name: [] for name in found}


def test_a_broken_month_catalog_fails(tmp_path):
    out = tmp_path / "out"
    root = write_stac(out, mosaics(out, MONTH_STARTS[:2], crss=(None,)), PROV)
    month = root.parent / "2022" / "12" / "catalog.json"
    doc = json.loads(month.read_text())
    del doc["description"]
    month.write_text(json.dumps(doc))
    found = tree_errors(root)
    assert found["2022/12/catalog.json"] and not found["2022/11/catalog.json"]
