"""``<out>/logs/<run id>.log``: every INFO line of a run, whatever the console shows, and only
the newest ``keep_logs`` kept."""

from __future__ import annotations

import io
import logging
import re

import pytest

from polarscan.common.runlog import run_log
from tests.support.scan_helpers import demo_cache, run_scan, scan_model

__all__ = ["demo_cache", "scan_model"]


def test_the_file_gets_info_while_the_console_keeps_its_level(tmp_path):
    root = logging.getLogger()
    console = io.StringIO()
    handler = logging.StreamHandler(console)  # as basicConfig makes it: no level of its own
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # as -q sets it
    try:
        with run_log(tmp_path, "20261130T020000-1-abcd", keep=5) as path:
            logging.getLogger("scanner.test").info("wrote 2 mosaic(s)")
            logging.getLogger("scanner.test").warning("a warning")
        assert root.level == logging.WARNING and handler.level == logging.NOTSET  # restored
        logging.getLogger("scanner.test").info("after the run")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) == 2
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO scanner.test: wrote 2 mosaic", lines[0])
    assert "WARNING scanner.test: a warning" in lines[1]
    assert console.getvalue() == "a warning\n"  # no INFO line on the console


@pytest.fixture(scope="module")
def common(scan_model, demo_cache) -> tuple[str, ...]:
    return ("--source", "demo", "--model", str(scan_model), "--sequential")


def test_a_scan_writes_its_log_and_keeps_the_newest(common, tmp_path):
    out = tmp_path / "out"
    rc, s, err = run_scan(*common, "--out", str(out))  # -q: the console shows warnings only
    assert rc == 0, err
    log = out / "logs" / f"{s['run_id']}.log"
    assert s["outputs"]["log"] == str(log)
    text = log.read_text(encoding="utf-8")
    assert "INFO scanner.scan.publish: wrote 2 mosaic(s) to detections.gpkg" in text
    assert "searching demo" in text

    keep_one = tmp_path / "keep1.yaml"
    keep_one.write_text("keep_logs: 1\n")
    rc, s2, err = run_scan(*common, "--out", str(out), "--config", str(keep_one))
    assert rc == 0, err
    assert sorted(p.name for p in (out / "logs").iterdir()) == [f"{s2['run_id']}.log"]

    none = tmp_path / "none.yaml"
    none.write_text("keep_logs: 0\n")
    rc, s3, err = run_scan(*common, "--out", str(tmp_path / "quiet"), "--config", str(none))
    assert rc == 0, err
    assert "log" not in s3["outputs"] and not (tmp_path / "quiet" / "logs").exists()
