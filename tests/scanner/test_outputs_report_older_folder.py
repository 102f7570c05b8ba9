"""The latest page (``report/index.html``) of an output folder without ``report/latest.json``:
an empty run keeps the previous page's polar lows under the "Last checked" banner instead of
blanking it.

Versions before ``latest.json`` wrote neither it nor ``report/<run>/page.json``; their latest
page was the last run's page, the one this version draws for a substantive run (less the banner
style). The folders here are made by this version's :func:`write_report` from a real scan
night (COGs and detections.gpkg), then those two files are deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.outputs.report import write_report
from tests.forecast.conftest import DX, write_night
from tests.forecast.test_report_latest import Page, empty, pages, substantive


@pytest.fixture
def out(tmp_path) -> Path:
    """A folder whose substantive run-1 found polar low m1-PL01, as its latest page shows."""
    out = tmp_path / "out"
    write_report(out, substantive("run-1", write_night(out, "m1", 0, 0.0, "run-1"), 3))
    latest = Page(out / "report" / "index.html")
    assert latest.facts["run"] == "run-1" and latest.lows == ["m1-PL01"]
    (out / "report" / "latest.json").unlink()
    return out


def test_an_older_versions_page_is_kept_under_the_banner(out):
    (out / "report" / "run-1" / "page.json").unlink()  # an older version wrote none
    before = (out / "report" / "index.html").read_text(encoding="utf-8")

    write_report(out, empty("run-2", 6))
    own, latest = pages(out, "run-2")  # every picture and link on both pages exists
    assert own.facts["run"] == "run-2" and own.lows == []  # the empty run's own page
    assert latest.facts["run"] == "run-1" and latest.lows == ["m1-PL01"]
    assert [e["attrs"]["src"] for e in latest.find("img")] == ["run-1/map.png", "run-1/PL1.png"]
    assert latest.banner == "Last checked 2022-11-30 06:07 UTC (run run-2): no new scenes since."
    assert "run-2/index.html" in latest.refs()
    assert latest.elements.index(latest.find("p", id="last-checked")[0]) < latest.elements.index(
        latest.find("h1")[0])  # at the top  # fmt: skip
    # the old page as it was, only the banner put in
    after = (out / "report" / "index.html").read_text(encoding="utf-8")
    banner = after[after.index('<p class="banner"') : after.index("</p>\n") + 5]
    assert after.replace(banner, "", 1) == before.replace("<body>", "<body>\n", 1)

    write_report(out, empty("run-3", 9))  # another empty run: one banner, naming the newest
    _, latest = pages(out, "run-3")
    assert latest.facts["run"] == "run-1" and latest.lows == ["m1-PL01"]
    assert len(latest.find("p", id="last-checked")) == 1
    assert latest.banner == "Last checked 2022-11-30 09:07 UTC (run run-3): no new scenes since."

    write_report(out, substantive("run-4", write_night(out, "m2", 6, DX, "run-4"), 12))
    _, latest = pages(out, "run-4")  # the first substantive run: the page is drawn again
    assert latest.facts["run"] == "run-4" and latest.lows == ["m2-PL01"]
    assert latest.banner is None
    assert json.loads((out / "report" / "latest.json").read_text()) == {"run_id": "run-4"}


def test_a_lost_pointer_re_renders_the_run_the_page_shows(out):
    """``page.json`` still there (this version drew the page): drawn again, as with the
    pointer; an empty run's page is not kept (no substantive run to keep)."""
    write_report(out, empty("run-2", 6))
    _, latest = pages(out, "run-2")
    assert latest.facts["run"] == "run-1" and latest.lows == ["m1-PL01"]
    assert latest.banner == "Last checked 2022-11-30 06:07 UTC (run run-2): no new scenes since."
    assert not (out / "report" / "latest.json").exists()

    write_report(out, empty("run-3", 9))
    _, latest = pages(out, "run-3")
    assert latest.facts["run"] == "run-1" and "(run run-3)" in (latest.banner or "")


def test_without_a_substantive_run_an_empty_run_shows_itself(tmp_path):
    out = tmp_path / "out"
    write_report(out, empty("run-1", 3))
    write_report(out, empty("run-2", 6))
    _, latest = pages(out, "run-2")
    assert latest.facts["run"] == "run-2" and latest.banner is None
    assert latest.find("p", id="nothing-new")


def test_an_older_page_whose_run_folder_is_gone_is_not_kept(out):
    import shutil

    shutil.rmtree(out / "report" / "run-1")  # its pictures with it
    write_report(out, empty("run-2", 6))
    _, latest = pages(out, "run-2")
    assert latest.facts["run"] == "run-2" and latest.banner is None
