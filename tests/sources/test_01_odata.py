"""The pure OData layer: filters, dates, product records (real AUX pages and EW GRD pages)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from shapely.geometry import box

from scanner.sources import odata

URL = "https://download.example"


@pytest.fixture(scope="module")
def ew_products(test_data):
    folder = test_data / "cdse-odata"
    return [
        p
        for i in (1, 2)
        for p in json.loads((folder / f"ew_grd_page_{i}.json").read_text())["value"]
    ]


def test_filter_has_every_clause():
    f = odata.build_filter(
        box(10, 70, 40, 80),
        datetime(2022, 11, 30, tzinfo=UTC),
        datetime(2022, 12, 1, 12, 30, 5, 123456, tzinfo=UTC),
        datetime(2022, 11, 29, tzinfo=UTC),
    )
    assert f.startswith("Collection/Name eq 'SENTINEL-1' and ")
    # both modes by default: EW GRDM or IW GRDH, HH+HV or VV+VH
    assert ("(Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'EW_GRDM_1S') or "
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S'))") in f  # fmt: skip
    assert (
        "att/Name eq 'polarisationChannels' and att/OData.CSC.StringAttribute/Value eq 'HH&HV'"
        ") or Attributes" in f
    )
    assert "att/OData.CSC.StringAttribute/Value eq 'VV&VH'))" in f
    assert "ContentDate/End gt 2022-11-30T00:00:00.000Z" in f
    assert "ContentDate/Start lt 2022-12-01T12:30:05.123Z" in f
    assert "PublicationDate gt 2022-11-29T00:00:00.000Z" in f
    assert "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((40.00000 70.00000," in f
    assert f.endswith("))')")


@pytest.mark.parametrize(("modes", "types"), [(("EW",), ["EW_GRDM_1S"]), (("IW",), ["IW_GRDH_1S"])])
def test_filter_of_one_mode(modes, types):
    f = odata.build_filter(modes=modes)
    assert "'EW_GRDM_1S'" in f if "EW" in modes else "'EW_GRDM_1S'" not in f
    assert "'IW_GRDH_1S'" in f if "IW" in modes else "'IW_GRDH_1S'" not in f
    assert f"Value eq '{types[0]}') and " in f  # one product type: no parentheses
    p = odata.build_params(None, None, None, datetime(2022, 1, 1, tzinfo=UTC), modes=modes)
    assert p["$filter"] == f + " and PublicationDate gt 2022-01-01T00:00:00.000Z"


def test_params_order_by_publication_for_new_since():
    p = odata.build_params(None, None, None, datetime(2022, 1, 1, tzinfo=UTC), top=50)
    assert p["$orderby"] == "PublicationDate asc" and p["$top"] == "50"
    assert p["$expand"] == "Attributes" and "Intersects" not in p["$filter"]
    assert odata.build_params(None, datetime(2022, 1, 1), None, None)["$orderby"] == (
        "ContentDate/Start asc"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2014-04-06T01:00:00.000000Z", datetime(2014, 4, 6, 1, tzinfo=UTC)),
        ("2022-11-30T05:00:15.1234567+00:00", datetime(2022, 11, 30, 5, 0, 15, 123456, tzinfo=UTC)),
        ("2022-11-30T08:30:00Z", datetime(2022, 11, 30, 8, 30, tzinfo=UTC)),
        ("2022-11-30T10:12:13.5+01:00", datetime(2022, 11, 30, 9, 12, 13, 500000, tzinfo=UTC)),
        ("2022-11-30T10:12:13", datetime(2022, 11, 30, 10, 12, 13, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse_time(text, expected):
    assert odata.parse_time(text) == expected


def test_real_aux_pages_are_all_skipped(test_data):
    n = 0
    for i in range(1, 6):
        page = json.loads((test_data / "cdse-odata" / f"odata_page_{i}.json").read_text())
        for product in page["value"]:
            n += 1
            assert odata.parse_product(product, URL) is None, product["Name"]
    assert n == 47  # the @odata.count of the recorded query


def test_ew_records_parse(ew_products):
    scenes = {p["Name"]: odata.parse_product(p, URL) for p in ew_products}
    sample = scenes["S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15.SAFE"]
    assert sample.name == "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
    assert sample.source == "cdse" and sample.size == 424_815_322
    assert sample.checksum[0] == "BLAKE3" and len(sample.checksum[1]) == 64
    assert sample.start == datetime(2022, 11, 30, 1, 43, 42, 546629, tzinfo=UTC)
    assert sample.url == f"{URL}/odata/v1/Products({sample.id})/$value"
    assert sample.attrs["orbitDirection"] == "DESCENDING" and sample.attrs["datatakeID"] == 361801
    assert sample.attrs["cog"] is False
    assert sample.datatake_key == ("S1A", 46117, "058549")
    assert 75 < sample.footprint.centroid.x < 103
    twin = scenes["S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15_COG.SAFE"]
    assert twin.name == sample.name and twin.attrs["cog"] is True and twin.id != sample.id
    assert odata.prefer(twin, sample) is sample and odata.prefer(sample, twin) is sample
    barents = next(s for n, s in scenes.items() if "050015" in n)
    assert barents.checksum[0] == "MD5"
    assert barents.published == datetime(2022, 11, 30, 10, 12, 13, tzinfo=UTC)
    wkt = next(s for n, s in scenes.items() if "083000" in n)
    assert wkt.checksum is None and wkt.footprint.bounds == (50.0, 76.0, 70.0, 80.0)
    iw = next(s for n, s in scenes.items() if "_IW_" in n)
    assert (iw.mode, iw.polarisations, iw.attrs["productType"]) == ("IW", ("VV", "VH"), "IW_GRDH_1S")
    assert (sample.mode, sample.polarisations) == ("EW", ("HH", "HV"))
    skipped = [n for n, s in scenes.items() if s is None]
    assert sorted(x[:20] for x in skipped) == [
        "S1A_EW_GRDM_1SDH_202",  # no footprint at all
        "S1A_EW_GRDM_1SSH_202",  # single polarisation
    ]


def test_broken_records_are_skipped_not_crashing(ew_products):
    good = ew_products[0]
    for broken in (
        {**good, "ContentDate": {"Start": "yesterday", "End": None}},
        {**good, "Id": None},
        {**good, "GeoFootprint": {"type": "Polygon", "coordinates": "nonsense"}, "Footprint": None},
        {**good, "Name": "garbage"},
        {},
    ):
        assert odata.parse_product(broken, URL) is None


def test_base_name():
    n = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
    for suffix in ("", ".SAFE", "_COG.SAFE", ".SAFE.zip", "_COG.SAFE.zip"):
        assert odata.base_name(n + suffix) == n
