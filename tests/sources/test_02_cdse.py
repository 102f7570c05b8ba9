"""The CDSE source against a loopback catalogue, identity service and download host."""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import threading
import time
import zipfile
from datetime import UTC, datetime

import blake3
import pytest

from polarscan.common.errors import ProcessingError, UsageError
from polarscan.common.http import AuthError, ChecksumError
from scanner.aoi import AOI
from scanner.sources.cdse import CDSESource
from tests.support.cdse_replay import (
    PRODUCTS,
    cdse_env,
    product_path,
    serve_pages,
    serve_product,
)
from tests.support.loopback import Fault, Request, Response

SINCE = datetime(2022, 11, 30, tzinfo=UTC)
UNTIL = datetime(2022, 12, 1, tzinfo=UTC)
SAMPLE = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
BARENTS = "S1A_EW_GRDM_1SDH_20221130T050015_20221130T050119_046119_05854B_7E01"
WKT_ONLY = "S1A_EW_GRDM_1SDH_20221130T083000_20221130T083104_046121_05854D_C0DE"
IW = "S1A_IW_GRDH_1SDV_20221130T060000_20221130T060025_046120_05854C_AAAA"


def _zip_bytes(name: str, n: int = 300_000) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{name}.SAFE/manifest.safe", "<xfdu/>")
        zf.writestr(f"{name}.SAFE/measurement/data.bin", bytes(range(256)) * (n // 256))
    return buf.getvalue()


ZIP = _zip_bytes(SAMPLE)


@pytest.fixture
def aoi():
    return AOI.from_bbox(0, 70, 110, 85)  # wider than 90°: two search polygons


def _with_real_checksum(pages, algo="BLAKE3"):
    pages = copy.deepcopy(pages)
    rec = pages[0]["value"][0]
    digest = (blake3.blake3 if algo == "BLAKE3" else hashlib.md5)(ZIP).hexdigest()
    rec["Checksum"] = [{"Value": digest, "Algorithm": algo}]
    rec["ContentLength"] = len(ZIP)
    return pages, rec["Id"]


# ---- search ------------------------------------------------------------------------------------


def test_real_aux_pages_followed_and_all_skipped(srv, monkeypatch, aux_pages):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, aux_pages)
    scenes = list(CDSESource(backoff=0.01).search(None, SINCE, UNTIL))
    assert scenes == []
    reqs = srv.requests_to(PRODUCTS)
    assert [r.query.get("$skip") for r in reqs] == [None, "10", "20", "30", "40"]


def test_ew_pages_parsed_deduplicated_and_rechecked(srv, monkeypatch, ew_pages, aoi):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    scenes = list(CDSESource().search(aoi, SINCE, UNTIL))
    # the COG twin merged into the original, the Labrador scene dropped by the EPSG:3413
    # re-check, foreign and footprint-less products skipped, both polygons' hits merged; the
    # IW VV+VH scene kept beside the EW ones (both modes by default)
    assert [s.name for s in scenes] == [SAMPLE, BARENTS, IW, WKT_ONLY]
    assert [(s.mode, s.polarisations) for s in scenes[1:3]] == [
        ("EW", ("HH", "HV")), ("IW", ("VV", "VH"))
    ]
    assert scenes[0].attrs["cog"] is False and scenes[0].checksum[0] == "BLAKE3"
    first = srv.requests_to(PRODUCTS)
    assert len(first) == 4  # 2 search polygons x 2 pages
    q = first[0].query
    assert q["$orderby"] == "ContentDate/Start asc" and q["$expand"] == "Attributes"
    assert q["$top"] == "1000"
    f = q["$filter"]
    assert "Value eq 'EW_GRDM_1S'" in f and "Value eq 'HH&HV'" in f
    assert "Value eq 'IW_GRDH_1S'" in f and "Value eq 'VV&VH'" in f
    assert "ContentDate/End gt 2022-11-30T00:00:00.000Z" in f
    assert "ContentDate/Start lt 2022-12-01T00:00:00.000Z" in f
    assert "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((" in f
    polys = {r.query["$filter"].split("POLYGON")[1] for r in first if "$skip" not in r.query}
    assert len(polys) == 2


@pytest.mark.parametrize(
    ("modes", "kept", "foreign"),
    [
        # 2 search polygons x (the 1SSH product + the IW one)
        ("EW", [SAMPLE, BARENTS, WKT_ONLY], 4),
        # 2 x (the 1SSH product + the five EW records: sample, its twin, Barents, Labrador, WKT)
        ("IW", [IW], 12),
    ],
)
def test_search_of_one_mode(srv, monkeypatch, ew_pages, aoi, modes, kept, foreign):
    """One mode asked for: the query names only its product type, and a record of the other
    mode that comes back anyway (the replayed pages hold both) is counted as foreign."""
    from scanner.sources import get_source

    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    src = get_source("cdse", modes=[modes.lower()])
    assert src.modes == (modes,)
    assert [s.name for s in src.search(aoi, SINCE, UNTIL)] == kept
    f = srv.requests_to(PRODUCTS)[0].query["$filter"]
    assert ("'EW_GRDM_1S'" in f, "'IW_GRDH_1S'" in f) == (modes == "EW", modes == "IW")
    st = src.last_search_stats
    assert (st.records, st.kept, st.foreign) == (16, len(kept), foreign)


def test_published_after_query(srv, monkeypatch, ew_pages, aoi):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    list(CDSESource().search(aoi, published_after=datetime(2022, 11, 30, 6, tzinfo=UTC)))
    q = srv.requests_to(PRODUCTS)[0].query
    assert "PublicationDate gt 2022-11-30T06:00:00.000Z" in q["$filter"]
    assert "ContentDate" not in q["$filter"] and q["$orderby"] == "PublicationDate asc"


def test_search_needs_a_time(srv, monkeypatch, aoi):
    cdse_env(monkeypatch, srv)
    with pytest.raises(UsageError, match="--since"):
        list(CDSESource().search(aoi))
    with pytest.raises(UsageError, match="empty"):
        list(CDSESource().search(aoi, UNTIL, SINCE))
    assert srv.requests == []


def test_search_survives_429_and_500(srv, monkeypatch, ew_pages, aoi):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages, faults=[None, Fault(status=429, retry_after=1), Fault(status=500)])
    t0 = time.monotonic()
    scenes = list(CDSESource(backoff=0.01).search(aoi, SINCE, UNTIL))
    assert time.monotonic() - t0 >= 0.95
    assert [s.name for s in scenes] == [SAMPLE, BARENTS, IW, WKT_ONLY]


def test_empty_page(srv, monkeypatch, aoi):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, [{"@odata.context": "$metadata#Products(Attributes())", "value": []}])
    assert list(CDSESource().search(aoi, SINCE, UNTIL)) == []


@pytest.mark.parametrize(
    ("page", "match"),
    [
        (b'{"value": [{"Id": "x", "Name": ', "malformed JSON"),
        (b'{"detail": "oops"}', "without a 'value' list"),
        (b"<html><body>Maintenance</body></html>", "HTML page"),
    ],
    ids=["truncated", "no-value", "html"],
)
def test_bad_pages_are_clear_errors(srv, monkeypatch, ew_pages, aoi, page, match):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, [ew_pages[0], page])
    with pytest.raises(ProcessingError, match=match) as ei:
        list(CDSESource(retries=0).search(aoi, SINCE, UNTIL))
    assert srv.url + "/odata/v1/Products" in str(ei.value)


def test_html_error_status_names_url_and_status(srv, monkeypatch, aoi):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, [{"value": []}], faults=[Fault(status=502, html=True)] * 2)
    with pytest.raises(ProcessingError, match=r"Products failed after 2 attempts \(HTTP 502\)"):
        list(CDSESource(retries=1, backoff=0.01).search(aoi, SINCE, UNTIL))


def test_product_lookup_by_name_and_id(srv, monkeypatch, ew_pages):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    rec = ew_pages[0]["value"][0]
    srv.add_json(f"{PRODUCTS}({rec['Id']})", rec)
    src = CDSESource()
    assert src.product(SAMPLE + ".SAFE").id == rec["Id"]  # the original wins over the COG twin
    assert "startswith(Name,'" + SAMPLE + "')" in srv.requests_to(PRODUCTS)[0].query["$filter"]
    assert src.product(rec["Id"]).name == SAMPLE


# ---- download ----------------------------------------------------------------------------------


def _search_sample(src, aoi):
    return next(s for s in src.search(aoi, SINCE, UNTIL) if s.name == SAMPLE)


def test_download_with_token(srv, monkeypatch, ew_pages, aoi, tmp_path):
    cdse_env(monkeypatch, srv)
    pages, pid = _with_real_checksum(ew_pages)
    serve_pages(srv, pages)
    srv.add_token_endpoint()
    serve_product(srv, pid, ZIP)
    src = CDSESource()
    path = src.download(_search_sample(src, aoi), tmp_path)
    assert path == tmp_path / f"{SAMPLE}.SAFE.zip" and path.read_bytes() == ZIP
    token_req = srv.requests_to("/token")[0]
    assert token_req.form["client_id"] == "cdse-public"
    assert token_req.form["grant_type"] == "password"
    assert srv.requests_to(product_path(pid))[0].headers["Authorization"].startswith("Bearer ")


def test_expired_token_is_refreshed(srv, monkeypatch, ew_pages, aoi, tmp_path):
    cdse_env(monkeypatch, srv)
    pages, pid = _with_real_checksum(ew_pages, "MD5")
    serve_pages(srv, pages)
    srv.add_token_endpoint()
    serve_product(srv, pid, ZIP, faults=[Fault(drop_after=1000)])
    src = CDSESource(backoff=0.01)
    scene = _search_sample(src, aoi)
    src.download(scene, tmp_path / "a")
    srv.expire_tokens()  # the server says the token is dead although the client thinks it lives
    assert src.download(scene, tmp_path / "b").read_bytes() == ZIP
    mgr = src.tokens()
    assert mgr.logins == 1 and mgr.refreshes == 1
    assert [r.form["grant_type"] for r in srv.requests_to("/token")] == [
        "password",
        "refresh_token",
    ]


def test_faults_leave_nothing_complete_and_rerun_finishes(srv, monkeypatch, ew_pages, aoi,
                                                          tmp_path):  # fmt: skip
    cdse_env(monkeypatch, srv)
    pages, pid = _with_real_checksum(ew_pages)
    serve_pages(srv, pages)
    srv.add_token_endpoint()
    serve_product(
        srv, pid, ZIP,
        faults=[Fault(status=429, retry_after=0), Fault(drop_after=50_000), Fault(status=503),
                Fault(drop_after=40_000)],
    )  # fmt: skip
    src = CDSESource(retries=2, backoff=0.01)
    scene = _search_sample(src, aoi)
    dest = tmp_path / f"{SAMPLE}.SAFE.zip"
    with pytest.raises(ProcessingError, match="failed after 3 attempts"):
        src.download(scene, tmp_path)
    assert not dest.exists() and dest.with_name(dest.name + ".part").stat().st_size == 50_000
    assert src.download(scene, tmp_path).read_bytes() == ZIP  # resumes, then resumes again
    ranges = [r.headers.get("Range") for r in srv.requests_to(product_path(pid))]
    assert ranges == [None, None, "bytes=50000-", "bytes=50000-", "bytes=90000-"]
    assert not dest.with_name(dest.name + ".part").exists()


def test_wrong_checksum_then_rerun(srv, monkeypatch, ew_pages, aoi, tmp_path):
    cdse_env(monkeypatch, srv)
    pages, pid = _with_real_checksum(ew_pages)
    serve_pages(srv, pages)
    srv.add_token_endpoint()
    serve_product(srv, pid, ZIP, faults=[Fault(corrupt=True)])
    src = CDSESource()
    scene = _search_sample(src, aoi)
    with pytest.raises(ChecksumError):
        src.download(scene, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert src.download(scene, tmp_path).read_bytes() == ZIP


def test_missing_credentials_fail_before_any_request(srv, monkeypatch, tmp_path):
    cdse_env(monkeypatch, srv, user=None)
    src = CDSESource()
    assert not src.has_credentials()
    with pytest.raises(UsageError) as ei:
        src.check_credentials()
    msg = str(ei.value)
    assert "CDSE_USERNAME" in msg and "CDSE_PASSWORD" in msg
    assert "machine identity.dataspace.copernicus.eu" in msg
    assert ei.value.exit_code == 2 and srv.requests == []


def test_netrc_credentials(srv, monkeypatch, tmp_path):
    cdse_env(monkeypatch, srv, user=None)
    srv.add_token_endpoint(username="alice", password="n3trc-pw")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine identity.dataspace.copernicus.eu login alice password n3trc-pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    CDSESource().check_credentials()
    assert srv.requests_to("/token")[0].form["username"] == "alice"


def test_wrong_password_is_an_auth_error_and_secrets_never_logged(srv, monkeypatch, caplog,
                                                                   ew_pages, aoi, tmp_path):  # fmt: skip
    caplog.set_level(logging.DEBUG)
    cdse_env(monkeypatch, srv, password="WRONG-Pa55")
    srv.add_token_endpoint(password="right")
    with pytest.raises(AuthError, match="refused the login of user 'user'") as ei:
        CDSESource().check_credentials()
    assert ei.value.exit_code == 2 and "WRONG-Pa55" not in str(ei.value)
    # a full, successful run: neither the password nor any token reaches the logs
    cdse_env(monkeypatch, srv, password="right")
    pages, pid = _with_real_checksum(ew_pages)
    serve_pages(srv, pages)
    serve_product(srv, pid, ZIP, faults=[Fault(status=500)])
    src = CDSESource(backoff=0.01)
    src.download(_search_sample(src, aoi), tmp_path)
    srv.expire_tokens()
    src.download(_search_sample(src, aoi), tmp_path / "again")
    assert caplog.text  # something was logged...
    for secret in ("WRONG-Pa55", "right", "acc-", "ref-", "Bearer"):
        assert secret not in caplog.text


def test_at_most_four_concurrent_downloads(srv, monkeypatch, tmp_path):
    cdse_env(monkeypatch, srv)
    srv.add_token_endpoint()
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def slow(_req: Request) -> Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.3)
        with lock:
            state["now"] -= 1
        return Response(200, ZIP, "application/zip")

    from shapely.geometry import box

    from scanner.sources.base import Scene

    scenes = []
    for i in range(8):
        pid = f"00000000-0000-0000-0000-00000000000{i}"
        srv.add_handler(product_path(pid), slow, auth=True)
        scenes.append(Scene(pid, f"{SAMPLE[:-4]}{i:04d}", "cdse", SINCE, UNTIL, box(0, 0, 1, 1)))
    src = CDSESource()
    errors = []

    def run(scene):
        try:
            src.download(scene, tmp_path)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=run, args=(s,)) for s in scenes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(list(tmp_path.glob("*.zip"))) == 8
    assert state["max"] == 4
    assert src.tokens().logins == 1  # one login shared by all threads


def test_redirects_keep_the_token_only_for_trusted_hosts(srv, monkeypatch, ew_pages, aoi,
                                                         tmp_path):  # fmt: skip
    """CDSE may redirect downloads to another of its hosts: the bearer token must follow it
    there (requests drops it on a host change) and must never follow anywhere else."""
    import scanner.sources.cdse as cdse

    cdse_env(monkeypatch, srv)
    pages, pid = _with_real_checksum(ew_pages)
    serve_pages(srv, pages)
    srv.add_token_endpoint()
    other = srv.url.replace("127.0.0.1", "localhost")  # another host name, same server
    srv.add_handler(
        product_path(pid),
        lambda _r: Response(302, b"", "text/plain", {"Location": f"{other}/zipper/{pid}"}),
        auth=True,
    )
    srv.add_bytes(f"/zipper/{pid}", ZIP, "application/zip", auth=True)
    src = CDSESource(retries=0)
    scene = _search_sample(src, aoi)
    with pytest.raises(AuthError):  # localhost is not a CDSE host: the token is not sent
        src.download(scene, tmp_path / "a")
    assert "Authorization" not in srv.requests_to(f"/zipper/{pid}")[0].headers
    monkeypatch.setattr(cdse, "TRUSTED_SUFFIXES", ("localhost",))
    assert src.download(scene, tmp_path / "b").read_bytes() == ZIP
    assert srv.requests_to(f"/zipper/{pid}")[-1].headers["Authorization"].startswith("Bearer ")


def test_token_renewed_before_it_expires(srv, monkeypatch):
    """The manager refreshes a token that is about to expire (no 401 needed), and logs in
    again when the refresh token is refused (400 invalid_grant, as Keycloak answers)."""
    cdse_env(monkeypatch, srv)
    srv.add_token_endpoint(lifetime=60.4)  # valid for 0.4 s after the 60 s safety margin
    mgr = CDSESource().tokens()
    first = mgr.token()
    assert mgr.token() == first  # cached
    time.sleep(0.5)
    second = mgr.token()
    assert second != first and mgr.refreshes == 1 and mgr.logins == 1
    srv.add_faults(
        "/token",
        [Fault(status=400, body=b'{"error": "invalid_grant"}', content_type="application/json")],
    )
    time.sleep(0.5)
    assert mgr.token() not in (first, second)
    assert [r.form["grant_type"] for r in srv.requests_to("/token")] == [
        "password", "refresh_token", "refresh_token", "password",
    ]  # fmt: skip
    assert mgr.logins == 2
