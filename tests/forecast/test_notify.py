"""Notifications against a real loopback server: delivered, retried, down, slow; a failing
command; none of it fails the run, all of it is recorded."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from polarscan.common.errors import UsageError
from scanner.outputs.morning import write_morning
from tests.forecast.conftest import config
from tests.support.loopback import Fault, LoopbackServer


def test_webhook_gets_the_nights_polar_lows(scanned):
    with LoopbackServer() as srv:
        srv.add_json("/hook", {"ok": True}, faults=[Fault(status=503)])
        done = write_morning(scanned.out, scanned.summary,
                             config(url=srv.url + "/hook", backoff_s=0.01))  # fmt: skip
        [first, second] = srv.requests_to("/hook")
    assert done["notify"]["webhook"] == {"ok": True, "status": 200, "attempts": 2}
    assert second.method == "POST" and second.headers["Content-Type"] == "application/geo+json"
    fc = json.loads(second.body)
    assert fc["type"] == "FeatureCollection" and fc["run_id"] == "run-2"
    [feature] = fc["features"]
    assert feature["properties"]["polar_low_id"] == "m2-PL01"
    assert feature["properties"]["track_id"].startswith("TR-")
    lon, lat = feature["geometry"]["coordinates"]
    assert -180 <= lon <= 180 and 60 < lat < 90
    assert json.loads(Path(done["geojson"]).read_text()) == fc  # the same file the command gets


def test_down_server_and_failing_command_are_recorded_not_raised(scanned, tmp_path):
    with LoopbackServer() as srv:
        url = srv.url + "/hook"
    # the server is stopped: connection refused on every attempt
    cmd = f"{sys.executable} -c 'import sys; sys.exit(3)'"
    done = write_morning(scanned.out, scanned.summary,
                         config(url=url, retries=2, backoff_s=0.01, command=cmd))  # fmt: skip
    hook, command = done["notify"]["webhook"], done["notify"]["command"]
    assert hook["ok"] is False and hook["attempts"] == 3 and "ConnectionError" in hook["error"]
    assert command == {"ok": False, "error": "exit 3: "}
    assert "report" in done and "qgis_project" in done  # everything else still written


def test_slow_server_times_out_and_4xx_is_not_retried(scanned):
    with LoopbackServer() as srv:
        srv.add_json("/slow", {}, faults=[Fault(delay=2.0)] * 5)
        srv.add_json("/gone", {}, status=404)
        t0 = time.monotonic()
        done = write_morning(scanned.out, scanned.summary,
                             config(url=srv.url + "/slow", timeout_s=0.3, retries=1, backoff_s=0))  # fmt: skip
        assert time.monotonic() - t0 < 10
        assert done["notify"]["webhook"]["ok"] is False
        assert "Timeout" in done["notify"]["webhook"]["error"]
        gone = write_morning(scanned.out, scanned.summary, config(url=srv.url + "/gone"))
        assert gone["notify"]["webhook"] == {"ok": False, "error": "HTTP 404", "attempts": 1}
        assert srv.hits("/gone") == 1


def test_command_gets_the_geojson_path(scanned, tmp_path):
    seen = tmp_path / "seen.json"
    script = f"import shutil, sys; shutil.copy(sys.argv[1], {str(seen)!r})"
    cmd = f"{sys.executable} -c {json.dumps(script)}"
    done = write_morning(scanned.out, scanned.summary, config(command=cmd))
    assert done["notify"]["command"] == {"ok": True}
    assert json.loads(seen.read_text())["features"][0]["id"] == "m2-PL01"


def test_bad_url_is_a_usage_error_with_its_key():
    with pytest.raises(UsageError) as err:
        config(url="ftp://example.org/hook")
    assert err.value.key == "notify.url" and "http" in str(err.value)
