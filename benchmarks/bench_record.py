"""Search-result parsing + scan-record upsert for N recorded-style CDSE products.

Generates OData-shaped JSON pages (1,000 EW GRDM products each, the shape of the real pages in
tests/data/cdse-odata/), then measures side by side in one run:

  parse    json.loads of every page + the CDSE product parser + the EPSG:3413 footprint check
  batched  Record.upsert of all scenes, one transaction per 5,000 scenes (the scanner's way)
  per-tx   the same scenes into a fresh record, one transaction per scene
  re-find  upserting the same scenes again (the next night's search: all unchanged)

    .venv/bin/python benchmarks/bench_record.py [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanner.aoi import AOI  # noqa: E402
from scanner.record import Record  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _attr(kind: str, name: str, value) -> dict:
    return {
        "@odata.type": f"#OData.CSC.{kind}Attribute",
        "Name": name,
        "Value": value,
        "ValueType": kind,
    }


def make_product(i: int) -> dict:
    """One EW GRDM HH+HV product record as the CDSE catalogue returns it."""
    start = T0 + timedelta(seconds=64 * i)
    stop = start + timedelta(seconds=64)
    orbit, dt = 52000 + i // 4, 0x060000 + i // 4
    name = (
        f"S1A_EW_GRDM_1SDH_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:06d}_"
        f"{dt:06X}_{i % 0xFFFF:04X}.SAFE"
    )
    lon, lat = (i * 13) % 340 - 170, 62 + (i * 7) % 20
    ring = [[lon, lat], [lon + 14, lat], [lon + 14, lat + 4], [lon, lat + 4], [lon, lat]]
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return {
        "@odata.mediaContentType": "application/octet-stream",
        "Id": f"{i:08x}-f36b-11ef-9d3f-{i:012x}",
        "Name": name,
        "ContentType": "application/octet-stream",
        "ContentLength": 450_000_000 + i,
        "OriginDate": iso(stop + timedelta(hours=1)),
        "PublicationDate": iso(stop + timedelta(hours=3)),
        "ModificationDate": iso(stop + timedelta(hours=3)),
        "Online": True,
        "EvictionDate": "9999-12-31T23:59:59.999999Z",
        "S3Path": f"/eodata/Sentinel-1/SAR/EW_GRDM_1S/{start:%Y/%m/%d}/{name}",
        "Checksum": [
            {"Value": f"{i:032x}", "Algorithm": "MD5", "ChecksumDate": iso(stop)},
            {"Value": f"{i:064x}", "Algorithm": "BLAKE3", "ChecksumDate": iso(stop)},
        ],
        "ContentDate": {"Start": iso(start), "End": iso(stop)},
        "Footprint": None,
        "GeoFootprint": {"type": "Polygon", "coordinates": [ring]},
        "Attributes": [
            _attr("String", "productType", "EW_GRDM_1S"),
            _attr("String", "polarisationChannels", "HH&HV"),
            _attr("String", "orbitDirection", "DESCENDING" if i % 2 else "ASCENDING"),
            _attr("Integer", "datatakeID", dt),
            _attr("Integer", "sliceNumber", i % 4 + 1),
            _attr("Integer", "relativeOrbitNumber", orbit % 175 + 1),
            _attr("Integer", "orbitNumber", orbit),
            _attr("String", "platformSerialIdentifier", "A"),
        ],
    }


def make_pages(n: int, per_page: int = 1000) -> list[str]:
    pages = []
    for first in range(0, n, per_page):
        value = [make_product(i) for i in range(first, min(n, first + per_page))]
        body = {"@odata.context": "$metadata#Products(Attributes())", "value": value}
        if first + per_page < n:
            body["@odata.nextLink"] = (
                f"https://catalogue.example/odata/v1/Products?$skip={first + per_page}"
            )
        pages.append(json.dumps(body))
    return pages


def _parser():
    """H4a's CDSE parser when present, else a minimal stand-in (reported in the output)."""
    try:
        from scanner.sources.odata import parse_product

        return "scanner.sources.odata.parse_product", lambda p: parse_product(
            p, "https://dl.example"
        )
    except ImportError:  # pragma: no cover - only before the sources land
        from shapely.geometry import shape

        from scanner.sources.base import Scene

        def parse(p: dict):
            t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
            return Scene(
                id=p["Id"],
                name=p["Name"].removesuffix(".SAFE"),
                source="cdse",
                start=t(p["ContentDate"]["Start"]),
                stop=t(p["ContentDate"]["End"]),
                footprint=shape(p["GeoFootprint"]),
                size=p["ContentLength"],
                checksum=("MD5", p["Checksum"][0]["Value"]),
                published=t(p["PublicationDate"]),
            )

        return "minimal stand-in parser", parse


class Clock:
    """Wall and CPU time of a step (CPU time is steadier on a shared machine)."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="products (default 10000)")
    args = ap.parse_args(argv)
    n = args.n
    pages = make_pages(n)
    parser_name, parse = _parser()
    aoi = AOI.from_bbox(-180, 60, 180, 90)  # the whole Arctic cap: every footprint is checked

    scenes = []
    with Clock() as t_parse:
        for page in pages:
            for product in json.loads(page)["value"]:
                scene = parse(product)
                if scene is not None and aoi.intersects(scene.footprint):
                    scenes.append(scene)
    assert len(scenes) == n, f"parsed {len(scenes)} of {n}"

    with tempfile.TemporaryDirectory() as tmp:
        rec = Record.open(Path(tmp) / "batched")
        with Clock() as t_batch:
            st = rec.upsert(scenes)
        assert st.new == n
        with Clock() as t_refind:
            st = rec.upsert(scenes)
        assert st.unchanged == n
        rec.close()

        rec = Record.open(Path(tmp) / "per-scene")
        with Clock() as t_single:
            st = rec.upsert(scenes, batch=1)
        assert st.new == n
        rec.close()

    print(f"{n} products in {len(pages)} OData pages; parser: {parser_name}")
    print(f"{'step':<48}{'wall s':>8}{'µs/product':>12}{'CPU s':>8}{'µs/product':>12}")
    rows = [
        ("parse pages + AOI footprint check", t_parse),
        ("upsert, batched (5,000 per transaction)", t_batch),
        ("upsert, one transaction per scene", t_single),
        ("re-find: upsert again, all unchanged (batched)", t_refind),
    ]
    for label, c in rows:
        print(
            f"{label:<48}{c.wall:>8.3f}{1e6 * c.wall / n:>12.1f}{c.cpu:>8.3f}{1e6 * c.cpu / n:>12.1f}"
        )
    total = t_parse.wall + t_batch.wall
    print(f"{'search + record total (parse + batched)':<48}{total:>8.3f}{1e6 * total / n:>12.1f}")
    print(
        f"ratio one-transaction-per-scene / batched upsert: wall {t_single.wall / t_batch.wall:.1f}x, "
        f"CPU {t_single.cpu / t_batch.cpu:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
