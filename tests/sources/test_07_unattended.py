"""Issue 13: no silent zero (skip counts, unreadable pages), names from the network never
become paths, and a netrc others can read is refused. Network code runs against loopback."""

from __future__ import annotations

import copy
import json
import logging
import os
import zipfile
from datetime import UTC, datetime

import pytest

import cli
from polarscan.common.errors import ProcessingError, UsageError
from scanner.aoi import AOI
from scanner.sources.asf import read_asf_result
from scanner.sources.auth import find_credentials
from scanner.sources.base import Scene, SearchStats, check_product_name, path_inside
from scanner.sources.cdse import CDSESource
from scanner.sources.dhus import read_dhus_entry, written_inside
from scanner.sources.local import LocalSource
from tests.support.cdse_replay import PRODUCTS, cdse_env, serve_pages, serve_product
from tests.support.loopback import LoopbackServer

SINCE = datetime(2022, 11, 30, tzinfo=UTC)
UNTIL = datetime(2022, 12, 1, tzinfo=UTC)
SAMPLE = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
BARENTS = "S1A_EW_GRDM_1SDH_20221130T050015_20221130T050119_046119_05854B_7E01"
WIDE = AOI.from_bbox(0, 70, 110, 85)
BAD_NAMES = [
    "../../x.zip",
    f"../{SAMPLE}.zip",
    f"/etc/cron.d/{SAMPLE}.zip",
    f"{SAMPLE}.zip\n",
    f"{SAMPLE} (1).zip",
    f"{SAMPLE}.zip;rm -rf ~",
    f"sub/{SAMPLE}.zip",
    "",
]


def _broken(page: dict, how: str) -> dict:
    """``page`` with every entry (``all``) or every other entry (``some``) made unreadable, as
    a renamed field in a new catalogue version would."""
    page = copy.deepcopy(page)
    for i, rec in enumerate(page["value"]):
        if how == "all" or i % 2:
            rec["ProductName"] = rec.pop("Name")
    page.pop("@odata.nextLink", None)
    return page


# ---- 1. no silent zero -------------------------------------------------------------------------


def test_stats_count_every_reason(srv, monkeypatch, ew_pages):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    src = CDSESource()
    assert src.last_search_stats is None
    scenes = list(src.search(WIDE, SINCE, UNTIL))
    st = src.last_search_stats
    assert isinstance(st, SearchStats) and st.source == "cdse"
    # 8 records x 2 search polygons: 4 kept (3 EW, 1 IW); the COG twin (x2), the second
    # polygon's repeats, the 1SSH product, the Labrador scene outside, the footprint-less record
    assert (st.records, st.kept) == (16, len(scenes)) == (16, 4)
    assert st.skipped == {"foreign": 2, "twin": 2, "duplicate": 4, "outside": 2, "unparseable": 2}
    assert sum(st.skipped.values()) + st.kept == st.records
    assert "S1A_EW_GRDM_1SDH_20221130T120000" in st.samples[0]
    assert st.summary().startswith("16 record(s), 4 kept; skipped: 2 foreign, 2 twin")


def test_real_aux_pages_counted_as_foreign(srv, monkeypatch, aux_pages):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, aux_pages)
    src = CDSESource(backoff=0.01)
    assert list(src.search(None, SINCE, UNTIL)) == []
    st = src.last_search_stats
    assert (st.records, st.kept, st.foreign, st.unparseable) == (47, 0, 47, 0)


def test_page_of_only_broken_entries_is_an_error(srv, monkeypatch, ew_pages):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, [_broken(ew_pages[0], "all")])
    with pytest.raises(ProcessingError) as ei:
        list(CDSESource().search(None, SINCE, UNTIL))
    msg = str(ei.value)
    assert ei.value.exit_code == 1
    assert f"{srv.url}{PRODUCTS} (page 1) answered 3 entries and none could be read" in msg
    assert "(no Name)" in msg and f'"Id": "{ew_pages[0]["value"][0]["Id"]}"' in msg
    assert len(msg) < 600  # a short sample, not the page


def test_partly_broken_page_warns_with_counts(srv, monkeypatch, ew_pages, caplog):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, [_broken(ew_pages[0], "some")])
    src = CDSESource()
    with caplog.at_level(logging.WARNING, logger="scanner.sources.base"):
        scenes = list(src.search(None, SINCE, UNTIL))
    assert [s.name for s in scenes] == [SAMPLE, BARENTS]
    warned = [r.getMessage() for r in caplog.records if r.name == "scanner.sources.base"]
    assert len(warned) == 1 and "1 of 3 entries could not be read" in warned[0]
    assert srv.url in warned[0]
    assert src.last_search_stats.unparseable == 1 and src.last_search_stats.kept == 2


def test_asf_and_dhus_answers_of_only_broken_entries_are_errors():
    from scanner.sources.base import check_page

    broken = [read_asf_result({"sceneName": ""}, None), read_dhus_entry("u", "not a dict")]
    with pytest.raises(ProcessingError, match="https://cmr.example/x answered 2 entries"):
        check_page(broken, "https://cmr.example/x")
    check_page([], "nowhere")  # an empty answer is a quiet night, not an error


def test_search_command_shows_stats(srv, monkeypatch, ew_pages, capsys):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    argv = ["search", "--bbox", "0", "70", "110", "85", "--since", "2022-11-30",
            "--until", "2022-12-01"]  # fmt: skip
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "searched: 16 record(s), 4 kept; skipped: 2 foreign, 2 twin, 4 duplicate" in err
    assert cli.main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["scenes"]) == 4
    assert doc["stats"]["records"] == 16 and doc["stats"]["skipped"]["outside"] == 2


def test_local_listing_counts_odd_names_and_duplicates(tmp_path, repo_root):
    manifest = (repo_root / "scanner/demo/sample" / f"{SAMPLE}.SAFE" / "manifest.safe").read_bytes()
    for name in (f"{SAMPLE}.zip", f"{SAMPLE} (1).zip", "notes.zip",
                 SAMPLE.replace("1SDH", "1SSH") + ".zip"):  # fmt: skip
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            zf.writestr(f"{SAMPLE}.SAFE/manifest.safe", manifest)
    (tmp_path / f"{SAMPLE}.SAFE").mkdir()
    (tmp_path / f"{SAMPLE}.SAFE" / "manifest.safe").write_bytes(manifest)
    (tmp_path / "S1B_EW_GRDM_1SDH_broken.zip").write_bytes(b"not a zip")
    src = LocalSource(tmp_path)
    scenes = list(src.search(None, SINCE - (SINCE - datetime(2020, 1, 1, tzinfo=UTC))))
    assert [(s.name, s.attrs["zip"]) for s in scenes] == [(SAMPLE, False)]
    st = src.last_search_stats
    assert st.skipped == {"foreign": 1, "twin": 0, "duplicate": 1, "outside": 0, "unparseable": 2}
    assert st.records == 5 and st.kept == 1  # notes.zip is not a product: not counted


# ---- 2. names from the network are never paths ---------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_shared_validator_refuses(name, tmp_path):
    with pytest.raises(ProcessingError, match="not a Sentinel-1 product name"):
        check_product_name(name)
    with pytest.raises(ProcessingError):
        path_inside(tmp_path, name)


@pytest.mark.parametrize(
    "name", [SAMPLE, f"{SAMPLE}.SAFE", f"{SAMPLE}.zip", f"{SAMPLE}.SAFE.zip",
             f"{SAMPLE[:-5]}_74F9_COG.SAFE", f"{SAMPLE[:-5]}_74F9_COG.SAFE.zip"],
)  # fmt: skip
def test_shared_validator_accepts_product_names(name, tmp_path):
    assert check_product_name(name) == name
    assert path_inside(tmp_path, name) == tmp_path / name


def test_path_inside_refuses_a_planted_link(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside / "x.zip", dest / f"{SAMPLE}.zip")
    with pytest.raises(ProcessingError, match="outside"):
        path_inside(dest, f"{SAMPLE}.zip")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_cdse_record_with_a_bad_name_is_unparseable(name, ew_pages):
    from scanner.sources.odata import read_product

    rec = {**ew_pages[0]["value"][0], "Name": name}
    skipped = read_product(rec, "http://x")
    assert not isinstance(skipped, Scene) and skipped.reason == "unparseable"


@pytest.mark.parametrize("name", BAD_NAMES[:3])
def test_cdse_download_never_writes_outside(srv, monkeypatch, ew_pages, tmp_path, name):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    serve_product(srv, ew_pages[0]["value"][0]["Id"], b"PK" + bytes(1000))
    src = CDSESource()
    scene = next(s for s in src.search(WIDE, SINCE, UNTIL) if s.name == SAMPLE)
    scene.attrs["product_name"] = name  # as a record store could hand it back
    dest = tmp_path / "a" / "b"
    with pytest.raises(ProcessingError, match="not a Sentinel-1 product name"):
        src.download(scene, dest)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    assert srv.hits(f"{PRODUCTS}({scene.id})/$value") == 0
    bad_id = Scene("x)/../../token", SAMPLE, "cdse", SINCE, SINCE, None)
    with pytest.raises(ProcessingError, match="not a CDSE UUID"):
        src.download(bad_id, dest)


@pytest.mark.parametrize("name", BAD_NAMES[:3])
def test_asf_file_name_is_checked_in_search_and_download(name, tmp_path):
    props = {"sceneName": SAMPLE, "fileID": f"{SAMPLE}-GRD_MD", "fileName": name,
             "startTime": "2022-11-30T01:43:42Z", "stopTime": "2022-11-30T01:44:46Z",
             "url": "http://127.0.0.1:9/x.zip"}  # fmt: skip
    geom = {"type": "Polygon", "coordinates": [[[0, 70], [1, 70], [1, 71], [0, 70]]]}
    skipped = read_asf_result(props, geom)
    assert not isinstance(skipped, Scene) and skipped.reason == "unparseable"
    assert isinstance(read_asf_result({**props, "fileName": f"{SAMPLE}.zip"}, geom), Scene)
    assert read_asf_result({**props, "sceneName": name, "fileID": None}, geom).reason in (
        "unparseable", "foreign")  # fmt: skip

    pytest.importorskip("asf_search")
    import requests

    from scanner.sources.asf import ASFSource

    with LoopbackServer(max_lifetime=60) as srv:
        srv.add_bytes("/x.zip", b"PK" + bytes(100))
        src = ASFSource(backoff=0.01)
        src._session = requests.Session()  # stands in for the Earthdata-logged-in session
        scene = Scene(SAMPLE, SAMPLE, "asf", SINCE, SINCE, None, url=f"{srv.url}/x.zip",
                      attrs={"fileName": name})  # fmt: skip
        with pytest.raises(ProcessingError, match="not a Sentinel-1 product name"):
            src.download(scene, tmp_path / "dest")
        assert srv.hits("/x.zip") == 0
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("name", BAD_NAMES)
def test_dhus_titles_and_reported_paths_are_checked(name, tmp_path):
    props = {"title": name, "beginposition": SINCE, "endposition": SINCE,
             "footprint": "POLYGON ((0 70, 1 70, 1 71, 0 70))"}  # fmt: skip
    assert not isinstance(read_dhus_entry("u", props), Scene)
    assert read_dhus_entry("u", props).reason == "unparseable"
    with pytest.raises(ProcessingError, match="not a product file in"):
        written_inside(tmp_path, tmp_path / name if name and not name.startswith("/") else name)
    assert written_inside(tmp_path, tmp_path / f"{SAMPLE}.zip") == tmp_path / f"{SAMPLE}.zip"
    with pytest.raises(ProcessingError):
        written_inside(tmp_path / "sub", tmp_path / f"{SAMPLE}.zip")


# ---- 3. credentials files ----------------------------------------------------------------------


def _netrc(tmp_path, text: str, mode: int):
    path = tmp_path / "my netrc"
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_readable_netrc_with_a_password_is_refused(tmp_path, monkeypatch, mode):
    monkeypatch.delenv("CDSE_USERNAME", raising=False)
    path = _netrc(tmp_path, "machine identity.dataspace.copernicus.eu login u password p\n", mode)
    monkeypatch.setenv("NETRC", str(path))
    with pytest.raises(UsageError) as ei:
        find_credentials("CDSE_USERNAME", "CDSE_PASSWORD", ("identity.dataspace.copernicus.eu",))
    assert ei.value.exit_code == 2
    assert "can be read by other users" in ei.value.problem
    assert ei.value.fix == f"run: chmod 600 '{path}'"


def test_private_netrc_and_one_without_passwords_are_used(tmp_path, monkeypatch):
    monkeypatch.delenv("CDSE_USERNAME", raising=False)
    machines = ("identity.dataspace.copernicus.eu",)
    path = _netrc(tmp_path, f"machine {machines[0]} login u password p\n", 0o600)
    monkeypatch.setenv("NETRC", str(path))
    creds = find_credentials("CDSE_USERNAME", "CDSE_PASSWORD", machines)
    assert creds is not None and creds.username == "u"
    os.chmod(path, 0o644)
    path.write_text(f"machine {machines[0]} login u\n")  # no password: nothing to protect
    assert find_credentials("CDSE_USERNAME", "CDSE_PASSWORD", machines) is None


def test_home_netrc_is_checked_too(tmp_path, monkeypatch):
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.delenv("EARTHDATA_USERNAME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / ".netrc"
    path.write_text("machine urs.earthdata.nasa.gov login u password p\n")
    os.chmod(path, 0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        find_credentials("EARTHDATA_USERNAME", "EARTHDATA_PASSWORD", ("urs.earthdata.nasa.gov",))


def test_cli_download_refuses_a_readable_netrc(tmp_path, monkeypatch, capsys, srv):
    cdse_env(monkeypatch, srv, user=None)
    path = _netrc(tmp_path, "machine identity.dataspace.copernicus.eu login u password p\n", 0o644)
    monkeypatch.setenv("NETRC", str(path))
    assert cli.main(["download", SAMPLE, "--out", str(tmp_path / "d")]) == 2
    assert f"chmod 600 '{path}'" in capsys.readouterr().err
    assert srv.requests == []


