"""The morning report: self-contained HTML whose every reference is a local file that exists;
rendered by headless chromium where installed (every image loaded)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from scanner.outputs.morning import write_morning
from tests.forecast.conftest import config

CHROMIUM = next((c for c in ("/usr/bin/chromium", shutil.which("chromium") or "") if c and
                 Path(c).exists()), None)  # fmt: skip


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href"):
                self.refs.append((tag, value))


def refs(page: Path) -> list[tuple[str, str]]:
    parser = _Refs()
    parser.feed(page.read_text())
    return parser.refs


@pytest.fixture(scope="module")
def report(scanned):
    done = write_morning(scanned.out, scanned.summary, config())
    return Path(done["report"]), scanned.out / "report" / "index.html"


def test_pages_reference_only_existing_local_files(report):
    from PIL import Image

    for page in report:
        found = refs(page)
        images = [v for t, v in found if t == "img"]
        assert len(images) == 2  # the map and the one polar low's quick-look
        for _, ref in found:
            assert not re.match(r"^[a-z]+:", ref), ref  # no URL scheme: nothing remote
            target = (page.parent / ref).resolve()
            assert target.is_file(), ref
        for ref in images:
            with Image.open(page.parent / ref) as im:
                assert im.format == "PNG" and im.size[0] > 200
        assert "<script" not in page.read_text() and "@import" not in page.read_text()


def test_report_content(report, scanned):
    text = report[0].read_text()
    assert "run-2" in text and "m2-PL01" in text
    assert "0.900" in text  # the polar low's peak probability
    assert "TR-" in text and "2 sightings" in text and "m/s" in text
    assert "2022-11-30 07:4" in text  # its sensing time (UTC), 6 h after the first night


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_chromium_loads_every_image(report, tmp_path):
    page = report[1]
    # a copy of the page beside it (same relative paths) with a script counting loaded images
    html = page.read_text().replace(
        "</body>",
        "<script>window.addEventListener('load',()=>{const i=[...document.images];"
        "document.body.dataset.loaded=i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length"
        "});</script></body>",
    )
    probe = page.with_name(".probe.html")
    probe.write_text(html)
    try:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--virtual-time-budget=5000", "--dump-dom",
             probe.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        probe.unlink()
    m = re.search(r'data-loaded="(\d+)/(\d+)"', proc.stdout)
    assert m, proc.stderr[-2000:]
    assert m.group(1) == m.group(2) == "2"


def test_a_run_with_nothing_still_reports(tmp_path):
    from scanner.scan.summary import ScanSummary

    summary = ScanSummary(run_id="run-0", source="demo", model="m.keras", threshold=0.5)
    done = write_morning(tmp_path, summary, config(url="http://127.0.0.1:9/hook"))
    assert "forecast_errors" not in done, done
    assert done["polar_lows"] == 0 and "notify" not in done  # quiet on a night without lows
    page = Path(done["report"])
    assert "No polar low in this run." in page.read_text()
    assert all((page.parent / ref).is_file() for t, ref in refs(page) if t == "img")
