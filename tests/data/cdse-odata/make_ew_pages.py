"""Write ``ew_grd_page_{1,2}.json``: recorded-style CDSE OData pages of EW GRD products.

Same shape as the real ``odata_page_*.json`` (which list AUX products): ``@odata.context``,
``value`` records with Id, Name, ContentLength, PublicationDate, ContentDate, Online, S3Path,
Checksum, Footprint/GeoFootprint and Attributes, and an ``@odata.nextLink`` on page 1. The first
product is the real sample scene (``scanner/demo/sample``) with its manifest footprint. The
records exercise what the parser must handle:

- page 1: the sample scene (BLAKE3 + MD5), a single-pol 1SSH product (skipped), a Barents Sea
  scene with ``+00:00`` dates, 7 fraction digits and only an MD5 checksum;
- page 2: the sample scene's ``_COG`` twin (merged into the original), an IW product (skipped),
  a Labrador Sea scene (outside the test AOI), a scene with only the WKT ``Footprint`` and no
  checksum, and one without any footprint (skipped).

Run from the repository root: ``python tests/data/cdse-odata/make_ew_pages.py``. Deterministic.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATALOGUE = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products"
NS = uuid.UUID("6f1c1c52-5a1e-4d0c-9a86-0c1c5e1f2a00")

SAMPLE = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
# manifest.safe <gml:coordinates> of the sample (lat,lon), as lon/lat ring
SAMPLE_RING = [
    (91.651596, 76.879097),
    (75.348396, 78.260895),
    (81.596954, 81.972343),
    (102.789734, 80.113571),
    (91.651596, 76.879097),
]


def _ring(w, s, e, n):
    return [(w, s), (e, s), (e, n), (w, n), (w, s)]


def _attrs(ptype, pol, direction, datatake, slice_no, rel_orbit, start, end):
    def a(kind, name, value):
        return {
            "@odata.type": f"#OData.CSC.{kind}Attribute",
            "Name": name,
            "Value": value,
            "ValueType": kind if kind != "DateTimeOffset" else "DateTimeOffset",
        }

    return [
        a("String", "origin", "ESA"),
        a("Integer", "datatakeID", datatake),
        a("String", "timeliness", "Fast-24h"),
        a("Integer", "cycleNumber", 282),
        a("Integer", "orbitNumber", 46117),
        a("Integer", "sliceNumber", slice_no),
        a("Integer", "totalSlices", 12),
        a("String", "productClass", "S"),
        a("String", "processorName", "Sentinel-1 IPF"),
        a("String", "orbitDirection", direction),
        a("String", "operationalMode", ptype.split("_")[0]),
        a("String", "processorVersion", "003.52"),
        a("String", "platformShortName", "SENTINEL-1"),
        a("String", "instrumentShortName", "SAR"),
        a("Integer", "relativeOrbitNumber", rel_orbit),
        a("String", "polarisationChannels", pol),
        a("String", "platformSerialIdentifier", "A"),
        a("String", "productType", ptype),
        a("DateTimeOffset", "beginningDateTime", start),
        a("DateTimeOffset", "endingDateTime", end),
    ]


def product(
    name,
    ptype,
    pol,
    start,
    end,
    published,
    ring=None,
    wkt_only=False,
    checksums=("MD5", "BLAKE3"),
    size=424_815_322,
    direction="DESCENDING",
    datatake=361801,
    slice_no=7,
    rel_orbit=137,
):
    pid = str(uuid.uuid5(NS, name))
    sums = []
    for algo in checksums:
        digest = uuid.uuid5(NS, algo + name).hex
        sums.append(
            {
                "Value": digest if algo == "MD5" else (digest * 2),
                "Algorithm": algo,
                "ChecksumDate": published,
            }
        )
    geo = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]} if ring else None
    footprint = None
    if ring:
        coords = ",".join(f"{x} {y}" for x, y in ring)
        footprint = f"geography'SRID=4326;POLYGON (({coords}))'"
    day = start[:10].replace("-", "/")
    return {
        "@odata.mediaContentType": "application/octet-stream",
        "Id": pid,
        "Name": name,
        "ContentType": "application/octet-stream",
        "ContentLength": size,
        "OriginDate": published,
        "PublicationDate": published,
        "ModificationDate": published,
        "Online": True,
        "EvictionDate": "9999-12-31T23:59:59.999999Z",
        "S3Path": f"/eodata/Sentinel-1/SAR/{ptype}/{day}/{name}",
        "Checksum": sums,
        "ContentDate": {"Start": start, "End": end},
        "Footprint": footprint,
        "GeoFootprint": None if wkt_only else geo,
        "Attributes": _attrs(ptype, pol, direction, datatake, slice_no, rel_orbit, start, end),
    }


def pages() -> list[dict]:
    p1 = [
        product(
            f"{SAMPLE}.SAFE",
            "EW_GRDM_1S",
            "HH&HV",
            "2022-11-30T01:43:42.546629Z",
            "2022-11-30T01:44:46.839082Z",
            "2022-11-30T07:51:42.429000Z",
            SAMPLE_RING,
        ),
        product(
            "S1A_EW_GRDM_1SSH_20221130T031502_20221130T031606_046118_05854A_1C2D.SAFE",
            "EW_GRDM_1S",
            "HH",
            "2022-11-30T03:15:02.000000Z",
            "2022-11-30T03:16:06.000000Z",
            "2022-11-30T09:01:00.000000Z",
            _ring(30, 74, 50, 78),
        ),
        product(
            "S1A_EW_GRDM_1SDH_20221130T050015_20221130T050119_046119_05854B_7E01.SAFE",
            "EW_GRDM_1S",
            "HH&HV",
            "2022-11-30T05:00:15.1234567+00:00",
            "2022-11-30T05:01:19.7654321+00:00",
            "2022-11-30T10:12:13.000+00:00",
            _ring(20, 72, 40, 76),
            checksums=("MD5",),
            direction="ASCENDING",
            datatake=361803,
            slice_no=3,
            rel_orbit=139,
        ),
    ]
    p2 = [
        product(
            f"{SAMPLE}_COG.SAFE",
            "EW_GRDM_1S-COG",
            "HH&HV",
            "2022-11-30T01:43:42.546629Z",
            "2022-11-30T01:44:46.839082Z",
            "2022-11-30T08:30:00.000000Z",
            SAMPLE_RING,
            size=512_000_000,
        ),
        product(
            "S1A_IW_GRDH_1SDV_20221130T060000_20221130T060025_046120_05854C_AAAA.SAFE",
            "IW_GRDH_1S",
            "VV&VH",
            "2022-11-30T06:00:00.000000Z",
            "2022-11-30T06:00:25.000000Z",
            "2022-11-30T11:00:00.000000Z",
            _ring(25, 70, 30, 72),
        ),
        product(
            "S1A_EW_GRDM_1SDH_20221130T100000_20221130T100104_046122_05854E_0B0B.SAFE",
            "EW_GRDM_1S",
            "HH&HV",
            "2022-11-30T10:00:00.000000Z",
            "2022-11-30T10:01:04.000000Z",
            "2022-11-30T15:00:00.000000Z",
            _ring(-60, 55, -50, 60),
        ),
        product(
            "S1A_EW_GRDM_1SDH_20221130T083000_20221130T083104_046121_05854D_C0DE.SAFE",
            "EW_GRDM_1S",
            "HH&HV",
            "2022-11-30T08:30:00Z",
            "2022-11-30T08:31:04Z",
            "2022-11-30T13:00:00Z",
            _ring(50, 76, 70, 80),
            wkt_only=True,
            checksums=(),
        ),
        product(
            "S1A_EW_GRDM_1SDH_20221130T120000_20221130T120104_046123_05854F_DEAD.SAFE",
            "EW_GRDM_1S",
            "HH&HV",
            "2022-11-30T12:00:00Z",
            "2022-11-30T12:01:04Z",
            "2022-11-30T17:00:00Z",
            None,
        ),
    ]
    nxt = (
        f"{CATALOGUE}?%24filter=Collection%2FName+eq+%27SENTINEL-1%27&%24top=3"
        "&%24expand=Attributes&%24orderby=ContentDate%2FStart+asc&%24skip=3"
    )
    return [
        {"@odata.context": "$metadata#Products(Attributes())", "value": p1, "@odata.nextLink": nxt},
        {"@odata.context": "$metadata#Products(Attributes())", "value": p2},
    ]


def main() -> None:
    for i, page in enumerate(pages(), 1):
        (HERE / f"ew_grd_page_{i}.json").write_text(json.dumps(page, indent=2) + "\n")


if __name__ == "__main__":
    main()
