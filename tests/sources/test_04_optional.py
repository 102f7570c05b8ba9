"""ASF and DHuS normalisation, their guarded imports, and the source factory."""

from __future__ import annotations

import hashlib
import importlib.util
from datetime import UTC, datetime

import pytest

from polarscan.common.errors import UsageError
from scanner.sources import SOURCE_SPECS, get_source
from scanner.sources.dhus import parse_size, scene_from_dhus
from tests.support.loopback import Fault, LoopbackServer

NAME = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
HAS_ASF = importlib.util.find_spec("asf_search") is not None
needs_asf = pytest.mark.skipif(
    not HAS_ASF, reason="asf_search not installed (pip install 'polarscan[asf]')"
)


def _umm(name=NAME, beam="EW", pol="HH+HV"):
    """A CMR UMM granule in the shape asf_search parses (trimmed to the fields it reads)."""
    return {
        "TemporalExtent": {"RangeDateTime": {"BeginningDateTime": "2022-11-30T01:43:42.546Z",
                                             "EndingDateTime": "2022-11-30T01:44:46.839Z"}},
        "GranuleUR": f"{name}-GRD_MD",
        "DataGranule": {
            "Identifiers": [{"IdentifierType": "ProducerGranuleId", "Identifier": name}],
            "ProductionDateTime": "2022-11-30T05:12:00Z",
        },
        "AdditionalAttributes": [
            {"Name": "BYTES", "Values": ["424815322"]},
            {"Name": "MD5SUM", "Values": ["ABCDEF0123456789abcdef0123456789"]},
            {"Name": "ASCENDING_DESCENDING", "Values": ["DESCENDING"]},
            {"Name": "PATH_NUMBER", "Values": ["137"]},
            {"Name": "BEAM_MODE", "Values": [beam]},
            {"Name": "POLARIZATION", "Values": [pol]},
            {"Name": "PROCESSING_TYPE", "Values": ["GRD_MD"]},
        ],
        "RelatedUrls": [{"Type": "GET DATA",
                         "URL": f"https://datapool.asf.alaska.edu/GRD_MD/SA/{name}.zip"}],
        "SpatialExtent": {"HorizontalSpatialDomain": {"Geometry": {"GPolygons": [{"Boundary": {
            "Points": [{"Longitude": x, "Latitude": y} for x, y in
                       [(91.65, 76.88), (102.79, 80.11), (81.6, 81.97), (75.35, 78.26), (91.65, 76.88)]]
        }}]}}},
        "Platforms": [{"ShortName": "SENTINEL-1A", "Instruments": [{"ShortName": "C-SAR"}]}],
        "OrbitCalculatedSpatialDomains": [{"OrbitNumber": 46117}],
    }  # fmt: skip


@needs_asf
def test_asf_product_normalised():
    from asf_search import S1Product

    from scanner.sources.asf import scene_from_asf

    p = S1Product({"umm": _umm(), "meta": {"concept-id": "G1", "revision-date": "2022-11-30"}})
    s = scene_from_asf(p.properties, p.geometry)
    assert s.name == NAME and s.source == "asf" and s.id == f"{NAME}-GRD_MD"
    assert s.start == datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)
    assert s.published == datetime(2022, 11, 30, 5, 12, tzinfo=UTC)
    assert s.size == 424_815_322 and s.checksum == ("MD5", "abcdef0123456789abcdef0123456789")
    assert s.url.endswith(f"{NAME}.zip") and s.attrs["flightDirection"] == "DESCENDING"
    assert s.footprint.bounds == (75.35, 76.88, 102.79, 81.97)
    iw_name = NAME.replace("_EW_GRDM_1SDH_", "_IW_GRDH_1SDV_")
    iw = S1Product({"umm": _umm(iw_name, "IW", "VV+VH"), "meta": {}})
    s = scene_from_asf(iw.properties, iw.geometry)
    assert (s.name, s.mode, s.polarisations) == (iw_name, "IW", ("VV", "VH"))
    single = S1Product({"umm": _umm(iw_name.replace("1SDV", "1SSV"), "IW", "VV"), "meta": {}})
    assert scene_from_asf(single.properties, single.geometry) is None
    sm = S1Product({"umm": _umm(NAME.replace("_EW_", "_S3_"), "S3"), "meta": {}})
    assert scene_from_asf(sm.properties, sm.geometry) is None


@needs_asf
def test_asf_download_resumes_and_checks_md5(tmp_path, monkeypatch):
    import requests

    from scanner.sources.asf import ASFSource
    from scanner.sources.base import Scene

    data = b"PK" + bytes(200_000)
    with LoopbackServer(max_lifetime=60) as srv:
        srv.add_bytes(f"/{NAME}.zip", data, faults=[Fault(drop_after=1234)])
        src = ASFSource(backoff=0.01)
        src._session = requests.Session()  # stands in for the Earthdata-logged-in ASFSession
        scene = Scene(NAME, NAME, "asf", datetime(2022, 1, 1, tzinfo=UTC),
                      datetime(2022, 1, 1, tzinfo=UTC), None, len(data),
                      ("MD5", hashlib.md5(data).hexdigest()), url=f"{srv.url}/{NAME}.zip")  # fmt: skip
        assert src.download(scene, tmp_path).read_bytes() == data
        assert srv.requests_to(f"/{NAME}.zip")[1].headers["Range"] == "bytes=1234-"


@needs_asf
def test_asf_missing_credentials(monkeypatch, tmp_path):
    from scanner.sources.asf import ASFSource

    monkeypatch.delenv("EARTHDATA_USERNAME", raising=False)
    monkeypatch.delenv("EARTHDATA_PASSWORD", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    with pytest.raises(UsageError, match="EARTHDATA_USERNAME and EARTHDATA_PASSWORD"):
        ASFSource().check_credentials()


def test_dhus_entry_normalised():
    props = {
        "title": NAME,
        "beginposition": datetime(2022, 11, 30, 1, 43, 42, 546000),
        "endposition": datetime(2022, 11, 30, 1, 44, 46, 839000),
        "ingestiondate": datetime(2022, 11, 30, 7, 26, 44),
        "footprint": "MULTIPOLYGON (((91.65 76.88, 102.79 80.11, 81.6 81.97, 75.35 78.26, 91.65 76.88)))",
        "size": "405.13 MB",
        "orbitdirection": "DESCENDING",
    }
    s = scene_from_dhus("0b1c", props, "https://colhub.met.no/")
    assert s.name == NAME and s.id == "0b1c" and s.source == "dhus"
    assert s.start.tzinfo is not None and s.start.hour == 1
    assert s.size == int(405.13 * 2**20) and s.attrs == {"orbitdirection": "DESCENDING"}
    assert s.url == "https://colhub.met.no/odata/v1/Products('0b1c')/$value"
    assert scene_from_dhus("x", {**props, "title": NAME.replace("1SDH", "1SSH")}) is None
    iw = scene_from_dhus("x", {**props, "title": NAME.replace("EW_GRDM_1SDH", "IW_GRDH_1SDV")})
    assert (iw.mode, iw.polarisations) == ("IW", ("VV", "VH"))
    assert scene_from_dhus("x", {**props, "footprint": None}) is None
    assert parse_size("1.5 GB") == 3 * 2**29 and parse_size("n/a") is None


def test_dhus_needs_a_mirror_url(monkeypatch):
    monkeypatch.delenv("DHUS_URL", raising=False)
    with pytest.raises(UsageError, match="DHUS_URL.*does not work with CDSE"):
        get_source("dhus")


@pytest.mark.skipif(importlib.util.find_spec("sentinelsat") is not None, reason="installed")
def test_dhus_without_sentinelsat_says_how_to_install():
    with pytest.raises(UsageError, match=r"pip install 'polarscan\[dhus\]'"):
        get_source("dhus:https://colhub.met.no/")


def test_dhus_missing_credentials_name_variables_and_mirror_host(monkeypatch, tmp_path):
    from scanner.sources.dhus import DHuSSource

    monkeypatch.delenv("DHUS_USERNAME", raising=False)
    monkeypatch.delenv("DHUS_PASSWORD", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    src = object.__new__(DHuSSource)  # skip __init__: it needs sentinelsat, this check does not
    src.url = "https://colhub.met.no/"
    with pytest.raises(UsageError) as ei:
        src.check_credentials()
    assert "DHUS_USERNAME and DHUS_PASSWORD" in ei.value.fix
    assert "machine colhub.met.no login USER" in ei.value.fix and ei.value.exit_code == 2


def test_factory(tmp_path):
    assert get_source("cdse").name == "cdse"
    assert get_source(" CDSE ").name == "cdse"
    assert get_source(f"local:{tmp_path}").name == "local"
    for bad in ("sentinelhub", "cdse:x", "local:", ""):
        with pytest.raises(UsageError) as ei:
            get_source(bad)
        assert ei.value.exit_code == 2
    with pytest.raises(UsageError, match="use one of: cdse, asf, dhus, local:PATH"):
        get_source("sentinelhub")
    assert "local:PATH" in SOURCE_SPECS
