"""``report/index.html`` (the latest page) shows the newest run that processed a scene or had
failures; a run that processed nothing keeps that page under a "Last checked" banner, and still
gets its own ``report/<run-id>/``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from scanner.outputs.report import write_report
from scanner.scan.summary import Counts, Failure, ScanSummary
from tests.forecast.conftest import DX, summary_for, write_night

VOID = {"img", "meta", "br", "hr", "link", "input"}


class Page(HTMLParser):
    """The page as a flat list of elements (tag, attributes, text inside), in document order."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.elements.append(el)
        if tag not in VOID:
            self._open.append(el)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                return

    def handle_data(self, data):
        for el in self._open:
            el["text"] += data

    def find(self, tag: str, **attrs) -> list[dict]:
        return [e for e in self.elements if e["tag"] == tag and
                all(e["attrs"].get(k) == v for k, v in attrs.items())]  # fmt: skip

    @property
    def title(self) -> str:
        return self.find("h1")[0]["text"]

    @property
    def banner(self) -> str | None:
        found = self.find("p", id="last-checked")
        return found[0]["text"] if found else None

    @property
    def facts(self) -> dict[str, str]:
        """The run's table (th → td), first occurrence of each row name."""
        out: dict[str, str] = {}
        for a, b in zip(self.elements, self.elements[1:], strict=False):
            if a["tag"] == "th" and b["tag"] == "td":
                out.setdefault(a["text"], b["text"])
        return out

    @property
    def lows(self) -> list[str]:
        """The polar lows' ids, from their cards."""
        return [b["text"] for a, b in zip(self.elements, self.elements[1:], strict=False)
                if a["tag"] == "th" and a["text"] == "id" and b["tag"] == "td"]  # fmt: skip

    def refs(self) -> list[str]:
        return [v for e in self.elements for k, v in e["attrs"].items() if k in ("src", "href")]

    def assert_refs_exist(self, out: Path) -> None:
        """Every reference is a local file that exists; the run's products (written by
        write_morning, not here) are named in the output folder."""
        for ref in self.refs():
            assert ":" not in ref, ref  # no URL scheme: nothing remote
            target = (self.path.parent / ref).resolve()
            if target.name in ("polarscan.qgz", "detections.gpkg"):
                assert target.parent == out.resolve(), ref
            else:
                assert target.is_file(), ref


def at(hour: int) -> datetime:
    return datetime(2022, 11, 30, hour, 0, tzinfo=UTC)


def empty(run_id: str, hour: int) -> dict:
    return ScanSummary(run_id=run_id, source="demo", model="demo.keras", threshold=0.5,
                       counts=Counts(found=2, skipped=2), started=at(hour),
                       finished=at(hour).replace(minute=7)).to_dict()  # fmt: skip


def failed(run_id: str, hour: int) -> dict:
    s = ScanSummary(run_id=run_id, source="demo", model="demo.keras", threshold=0.5,
                    counts=Counts(found=1), started=at(hour), finished=at(hour))  # fmt: skip
    return s.add_failure(Failure("m9", ("S1A_X",), "download: HTTPError: 503")).to_dict()


def substantive(run_id: str, folder: Path, hour: int) -> dict:
    from dataclasses import replace

    return replace(summary_for(run_id, folder), started=at(hour), finished=at(hour)).to_dict()


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "out"


def pages(out: Path, run_id: str) -> tuple[Page, Page]:
    own, latest = Page(out / "report" / run_id / "index.html"), Page(out / "report" / "index.html")
    own.assert_refs_exist(out)
    latest.assert_refs_exist(out)
    return own, latest


def test_an_empty_run_keeps_the_last_substantive_run_on_the_latest_page(out):
    write_report(out, substantive("run-1", write_night(out, "m1", 0, 0.0, "run-1"), 3))
    own, latest = pages(out, "run-1")
    assert latest.lows == own.lows == ["m1-PL01"] and latest.banner is None
    assert json.loads((out / "report" / "latest.json").read_text()) == {"run_id": "run-1"}

    write_report(out, empty("run-2", 6))
    own, latest = pages(out, "run-2")
    # run 2's own page: nothing processed, no polar low, no banner
    assert own.facts["run"] == "run-2" and own.facts["scenes"].startswith("2 found, 0 processed")
    assert own.find("p", id="nothing-new") and own.lows == [] and own.banner is None
    # the latest page: still run 1 and its polar low (with its pictures), under the banner
    assert "run-1" in latest.title and latest.facts["run"] == "run-1"
    assert latest.lows == ["m1-PL01"]
    imgs = [e["attrs"]["src"] for e in latest.find("img")]
    assert imgs == ["run-1/map.png", "run-1/PL1.png"]
    assert latest.banner == "Last checked 2022-11-30 06:07 UTC (run run-2): no new scenes since."
    assert "run-2/index.html" in latest.refs() and not latest.find("p", id="nothing-new")
    assert latest.elements.index(latest.find("p", id="last-checked")[0]) < latest.elements.index(
        latest.find("h1")[0])  # at the top  # fmt: skip

    write_report(out, empty("run-3", 9))  # another empty run: the banner names the newest
    _, latest = pages(out, "run-3")
    assert latest.facts["run"] == "run-1" and "(run run-3)" in (latest.banner or "")

    write_report(out, substantive("run-4", write_night(out, "m2", 6, DX, "run-4"), 12))
    _, latest = pages(out, "run-4")
    assert latest.facts["run"] == "run-4" and latest.lows == ["m2-PL01"]
    assert latest.banner is None


def test_a_run_with_only_failures_is_substantive(out):
    write_report(out, substantive("run-1", write_night(out, "m1", 0, 0.0, "run-1"), 3))
    write_report(out, failed("run-2", 6))
    own, latest = pages(out, "run-2")
    assert latest.facts["run"] == "run-2" and latest.banner is None and latest.lows == []
    assert [e["text"] for e in latest.find("li")] == ["m9: download: HTTPError: 503"]
    assert not own.find("p", id="nothing-new")

    write_report(out, empty("run-3", 9))
    _, latest = pages(out, "run-3")
    assert latest.facts["run"] == "run-2" and latest.facts["status"] == "partial"
    assert [e["text"] for e in latest.find("li")] == ["m9: download: HTTPError: 503"]
    assert "(run run-3)" in (latest.banner or "")


def test_without_a_substantive_run_the_latest_page_is_the_empty_run(out):
    write_report(out, empty("run-1", 3))
    own, latest = pages(out, "run-1")
    assert latest.facts["run"] == "run-1" and latest.banner is None
    assert latest.find("p", id="nothing-new") and not (out / "report" / "latest.json").exists()


def test_a_vanished_substantive_run_falls_back_to_the_empty_run(out):
    """latest.json naming a run whose folder was removed (or is unreadable): no banner over a
    page that cannot be drawn; the empty run shows, as before."""
    write_report(out, failed("run-1", 3))
    (out / "report" / "run-1" / "page.json").unlink()
    write_report(out, empty("run-2", 6))
    _, latest = pages(out, "run-2")
    assert latest.facts["run"] == "run-2" and latest.banner is None
    (out / "report" / "latest.json").write_text('{"run_id": "../x"}')
    write_report(out, empty("run-3", 9))
    _, latest = pages(out, "run-3")
    assert latest.facts["run"] == "run-3" and latest.banner is None


def test_a_run_that_only_deferred_scenes_says_so_on_both_pages(out):
    """Every mosaic deferred by the monthly data quota: nothing processed, so the latest page
    keeps the last substantive run, its banner carrying the notice; the run's own page lists it."""
    write_report(out, substantive("run-1", write_night(out, "m1", 0, 0.0, "run-1"), 3))
    notice = "monthly quota: 5000.00 of 5000 GB used; 4 scene(s) deferred to 2022-12"
    s = ScanSummary(run_id="run-2", source="cdse", model="demo.keras", threshold=0.5,
                    counts=Counts(found=4, deferred=4), notices=(notice,), started=at(6),
                    finished=at(6))  # fmt: skip
    write_report(out, s.to_dict())
    own, latest = pages(out, "run-2")
    assert [e["text"] for e in own.find("li")] == [notice]
    assert any(e["text"] == "Notices" for e in own.find("h2"))
    assert latest.facts["run"] == "run-1"
    assert latest.banner == ("Last checked 2022-11-30 06:00 UTC (run run-2): no new scenes "
                             f"since.{notice}")  # fmt: skip (the <br> is not text)


def test_a_run_with_a_log_links_it(out):
    """The run's page and the latest page link the run's log file (``logs/<run id>.log``)."""
    summary = substantive("run-1", write_night(out, "m1", 0, 0.0, "run-1"), 3)
    log = out / "logs" / "run-1.log"
    log.parent.mkdir(parents=True)
    log.write_text("…")
    summary["outputs"]["log"] = str(log)
    write_report(out, summary)
    own, latest = pages(out, "run-1")  # every link resolves, the log's included
    assert "../../logs/run-1.log" in own.refs() and "../logs/run-1.log" in latest.refs()
