"""`cli.py search` and `cli.py download` through the real entry point, against loopback CDSE."""

from __future__ import annotations

import copy
import io
import json
import zipfile

import blake3
import pytest

import cli
from tests.support.cdse_replay import PRODUCTS, cdse_env, serve_pages, serve_product
from tests.support.loopback import Fault

SAMPLE = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
WINDOW = ["--since", "2022-11-30", "--until", "2022-12-01"]


def test_search_lists_scenes(srv, monkeypatch, ew_pages, capsys):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    assert cli.main(["search", "--bbox", "0", "70", "110", "85", *WINDOW]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 4 and SAMPLE in lines[0] and lines[0].startswith("2022-11-30 01:43:42")
    assert " EW HH+HV " in lines[0] and " IW VV+VH " in lines[2]  # mode and polarisations
    assert "4 scene(s) from cdse" in err


def test_search_of_one_mode_and_a_bad_one(srv, monkeypatch, ew_pages, capsys):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    assert cli.main(["search", "--bbox", "0", "70", "110", "85", *WINDOW, "--modes", "iw"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[2] for line in out.strip().splitlines()] == [
        "S1A_IW_GRDH_1SDV_20221130T060000_20221130T060025_046120_05854C_AAAA"
    ]
    assert "'IW_GRDH_1S'" in srv.requests_to("/odata/v1/Products")[0].query["$filter"]
    n = len(srv.requests)
    for bad in ("SM", "EW,XX", ","):
        assert cli.main(["search", "--bbox", "0", "70", "110", "85", *WINDOW, "--modes", bad]) == 2
        err = capsys.readouterr().err
        assert "--modes" in err and "EW, IW" in err
    assert len(srv.requests) == n  # refused before any request


def test_search_json(srv, monkeypatch, ew_pages, capsys):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, ew_pages)
    assert (
        cli.main(["search", "--bbox", "0", "70", "110", "85", *WINDOW, "--json", "--limit", "2"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    records = doc["scenes"]
    assert doc["stats"]["kept"] == 4  # the search found 4; --limit listed 2
    assert [r["name"][:16] for r in records] == ["S1A_EW_GRDM_1SDH"] * 2
    assert (records[0]["mode"], records[0]["polarisations"]) == ("EW", ["HH", "HV"])
    assert records[0]["checksum"][0] == "BLAKE3" and records[0]["footprint"].startswith("POLYGON")
    assert records[0]["attrs"]["orbitDirection"] == "DESCENDING"


def test_search_local_source(tmp_path, repo_root, capsys):
    sample = repo_root / "scanner/demo/sample" / f"{SAMPLE}.SAFE"
    with zipfile.ZipFile(tmp_path / f"{SAMPLE}.zip", "w") as zf:
        zf.write(sample / "manifest.safe", f"{SAMPLE}.SAFE/manifest.safe")
    argv = ["search", "--bbox", "60", "75", "110", "85", "--since", "2022-01-01",
            "--source", f"local:{tmp_path}"]  # fmt: skip
    assert cli.main(argv) == 0
    assert SAMPLE in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bbox", "10", "80", "20", "70", *WINDOW], "south"),
        (["--bbox", "10", "70", "20", "95", *WINDOW], "outside [-90, 90]"),
        (
            ["--bbox", "10", "70", "20", "80", "--since", "yesterday"],
            "--since 'yesterday' is not a date",
        ),
        (["--bbox", "10", "70", "20", "80"], "needs a time"),
        (
            ["--bbox", "10", "70", "20", "80", "--since", "2022-12-02", "--until", "2022-12-01"],
            "not before",
        ),
        (["--bbox", "10", "70", "20", "80", *WINDOW, "--source", "copernicus"], "use one of: cdse"),
        (["--aoi", "/nonexistent/area.geojson", *WINDOW], "not found"),
    ],
    ids=["south>north", "lat>90", "bad-date", "no-time", "empty-window", "source", "aoi-file"],
)
def test_search_bad_input(srv, monkeypatch, capsys, argv, message):
    cdse_env(monkeypatch, srv)
    assert cli.main(["search", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert srv.requests == []  # refused before asking anyone


def test_search_html_error_is_exit_1(srv, monkeypatch, capsys):
    cdse_env(monkeypatch, srv)
    serve_pages(srv, [{"value": []}], faults=[Fault(html=True)])
    assert cli.main(["search", "--bbox", "10", "70", "20", "80", *WINDOW]) == 1
    err = capsys.readouterr().err
    assert "HTML page (HTTP 200)" in err and f"{srv.url}/odata/v1/Products" in err
    assert "Traceback" not in err


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{SAMPLE}.SAFE/manifest.safe", "<xfdu/>" * 1000)
    return buf.getvalue()


def _serve_sample(srv, ew_pages, data, faults=()):
    rec = copy.deepcopy(ew_pages[0]["value"][0])
    rec["Checksum"] = [{"Algorithm": "BLAKE3", "Value": blake3.blake3(data).hexdigest()}]
    rec["ContentLength"] = len(data)
    serve_pages(srv, [{"value": [rec]}])
    srv.add_token_endpoint()
    serve_product(srv, rec["Id"], data, faults=faults)


def test_download_by_name(srv, monkeypatch, ew_pages, tmp_path, capsys):
    cdse_env(monkeypatch, srv)
    data = _zip()
    _serve_sample(srv, ew_pages, data)
    assert cli.main(["download", f"{SAMPLE}.SAFE", "--out", str(tmp_path)]) == 0
    path = tmp_path / f"{SAMPLE}.SAFE.zip"
    assert capsys.readouterr().out.strip() == str(path) and path.read_bytes() == data


def test_download_without_credentials_fails_first(srv, monkeypatch, tmp_path, capsys):
    cdse_env(monkeypatch, srv, user=None)
    assert cli.main(["download", SAMPLE, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "CDSE_USERNAME" in err and "machine identity.dataspace.copernicus.eu" in err
    assert srv.requests == [] and list(tmp_path.iterdir()) == []


def test_download_unknown_product(srv, monkeypatch, tmp_path, capsys):
    cdse_env(monkeypatch, srv)
    srv.add_token_endpoint()
    serve_pages(srv, [{"value": []}])
    assert cli.main(["download", SAMPLE, "--out", str(tmp_path)]) == 2
    assert "has no dual-pol EW GRDM or IW GRDH product" in capsys.readouterr().err


def test_download_failure_is_exit_1_and_rerun_finishes(srv, monkeypatch, ew_pages, tmp_path,
                                                       capsys):  # fmt: skip
    cdse_env(monkeypatch, srv)
    data = _zip()
    _serve_sample(srv, ew_pages, data, faults=[Fault(drop_after=100), Fault(status=503)])
    argv = ["download", SAMPLE, "--out", str(tmp_path), "--retries", "1"]
    assert cli.main(argv) == 1
    assert "failed after 2 attempts" in capsys.readouterr().err
    assert not (tmp_path / f"{SAMPLE}.SAFE.zip").exists()
    assert cli.main(argv) == 0  # the faults are spent: the rerun resumes and finishes
    assert (tmp_path / f"{SAMPLE}.SAFE.zip").read_bytes() == data
    assert srv.requests_to(PRODUCTS + f"({rec_id(ew_pages)})/$value")[-1].headers["Range"] == (
        "bytes=100-"
    )


def rec_id(pages):
    return pages[0]["value"][0]["Id"]
