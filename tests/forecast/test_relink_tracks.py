"""``catalog --relink-tracks``: after the tracking settings change, every polar low of
detections.gpkg is linked again with the new ones (what build_tracks over all of them gives);
refused, changing nothing, while a scan runs or when there is no GeoPackage."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import cli
from scanner.forecast import TrackingConfig
from scanner.outputs.gpkg import read_layer, write_results
from scanner.record import Record
from tests.forecast.helpers import assert_full_relink, crop, mosaic, prov
from tests.forecast.test_gpkg_forecast import night, publish

KM_PER_H = 25_000.0  # the vortex drifts 25 km/h (7 m/s) in +x of EPSG:3413
#: passes (hours): 0 and 2 h, then 8 and 10 h, then one far off. With max_gap_h 12 the first
#: four are one track; with 3 h two (0-2, 8-10), and the polar lows of 8 and 10 h change track.
PASSES = {"m1": 0, "m2": 2, "m3": 8, "m4": 10, "m5": 100}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    """A scan folder: detections.gpkg published night by night with the default tracking."""
    out = tmp_path_factory.mktemp("scanned")
    for mid, hours in PASSES.items():
        publish(out / "detections.gpkg", *night(mid, hours, KM_PER_H * hours, f"run-{mid}"))
    return out


@pytest.fixture
def out(scanned, tmp_path) -> Path:
    d = tmp_path / "scan"
    shutil.copytree(scanned, d)
    return d


def yaml_config(tmp_path: Path, max_gap_h: float) -> Path:
    path = tmp_path / "scan.yaml"
    path.write_text(f"tracking:\n  max_gap_h: {max_gap_h}\n")
    return path


def relink(capsys, out: Path, *extra: str) -> tuple[int, str, str]:
    code = cli.main(["catalog", "--out", str(out), "--relink-tracks", *extra])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def track_ids(gpkg: Path, layer: str = "polar_lows") -> dict[str, str]:
    df = read_layer(gpkg, layer)
    return dict(zip(df["mosaic_id"], df["track_id"], strict=True))


def test_new_settings_relink_every_night_as_a_full_relink(out, tmp_path, capsys):
    gpkg = out / "detections.gpkg"
    Record.open(out).close()  # a scan folder has its record; no scan holds its lock
    before = track_ids(gpkg)
    assert len(set(before.values())) == 2  # m1-m4 one track, m5 alone
    assert len(read_layer(gpkg, "tracks")) == 1

    code, stdout, stderr = relink(capsys, out, "--config", str(yaml_config(tmp_path, 3)))
    assert code == 0, stderr
    assert_full_relink(gpkg, TrackingConfig(max_gap_h=3))
    after = track_ids(gpkg)
    assert after == track_ids(gpkg, "polar_low_footprints")
    assert after["m1"] == after["m2"] == before["m1"] and after["m5"] == before["m5"]
    assert after["m3"] == after["m4"] != before["m3"]
    lines = stdout.strip().splitlines()
    assert len(lines) == 3  # the two polar lows that changed track, then the summary
    assert f"{before['m3']} → {after['m3']}" in lines[0]
    assert "relinked 5 polar low(s)" in lines[-1] and "max_gap_h 3, max_speed_ms 30" in lines[-1]
    assert "tracks 1 → 2 (0 gone, 1 new), 2 polar low(s) changed track" in lines[-1]

    # again with the same settings: nothing changes; --json prints only JSON, in numbers
    config = str(yaml_config(tmp_path, 3))
    code, stdout, stderr = relink(capsys, out, "--config", config, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["written"] and report["changed"] == []
    assert (report["polar_lows"], report["tracks_before"], report["tracks_after"]) == (5, 2, 2)
    assert "0 polar low(s) changed track" in stderr

    # back to the default config (configs/scan.yaml: 12 h): the one track again
    code, stdout, _ = relink(capsys, out, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["tracking"] == {"max_gap_h": 12.0, "max_speed_ms": 30.0}
    assert (report["tracks_before"], report["tracks_after"]) == (2, 1)
    assert report["tracks_removed"] == [after["m3"]] and report["tracks_added"] == []
    assert {c["before"] for c in report["changed"]} == {after["m3"]}
    assert {c["after"] for c in report["changed"]} == {before["m3"]}
    assert len(report["changed"]) == 2
    assert track_ids(gpkg) == before
    assert_full_relink(gpkg, TrackingConfig())


def test_refused_while_a_scan_holds_the_run_lock(out, tmp_path, capsys):
    gpkg = out / "detections.gpkg"
    before = digest(gpkg)
    with Record.open(out) as rec, rec.lock("run-live"):
        files = sorted(p.name for p in out.iterdir())
        code, stdout, stderr = relink(capsys, out, "--config", str(yaml_config(tmp_path, 3)))
        assert sorted(p.name for p in out.iterdir()) == files  # no working copy left behind
    assert code == 2 and stdout == ""
    assert "a scan is running" in stderr and "run-live" in stderr and "--clear-lock" in stderr
    assert digest(gpkg) == before
    # the lock of a scan that died does not stand in the way
    with Record.open(out) as rec:
        dead = rec.lock("run-dead")
        dead.pid = 4_194_304 + 1  # above Linux's largest pid: never a live process
        dead.acquire()
        assert rec.lock_holder() is not None
    code, _, stderr = relink(capsys, out, "--config", str(yaml_config(tmp_path, 3)))
    assert code == 0, stderr
    assert_full_relink(gpkg, TrackingConfig(max_gap_h=3))


def test_no_geopackage_or_no_polar_lows(tmp_path, capsys):
    out = tmp_path / "scan"
    code, stdout, stderr = relink(capsys, out)
    assert code == 2 and stdout == ""
    assert "no detections.gpkg in" in stderr and "give --out the scan folder" in stderr
    assert not out.exists()  # nothing created

    # a file from before the polar low layers: nothing to relink, left as it is
    gpkg = write_results(out / "detections.gpkg", [mosaic("m0", [crop(0, 0)], [0.9])], prov())
    before = digest(gpkg)
    code, stdout, _ = relink(capsys, out)
    assert code == 0 and "nothing to relink" in stdout and digest(gpkg) == before
    code, stdout, _ = relink(capsys, out, "--json")
    assert json.loads(stdout)["written"] is False and digest(gpkg) == before


def test_config_without_relink_is_a_usage_error(tmp_path, capsys):
    code = cli.main(["catalog", "--out", str(tmp_path), "--config", "x.yaml"])
    assert code == 2 and "--config is read only by --relink-tracks" in capsys.readouterr().err


def _drop_layer(gpkg: Path, layer: str) -> None:
    """Remove ``layer`` and its GeoPackage metadata, as if an older version never wrote it."""
    from scanner.outputs.gpkg_sql import connect

    with connect(gpkg) as con:
        for meta in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_ogr_contents"):
            con.execute(f"DELETE FROM {meta} WHERE table_name = ?", (layer,))
        con.execute("DELETE FROM gpkg_extensions WHERE table_name = ?", (layer,))
        con.execute(f'DROP TABLE "rtree_{layer}_geom"')
        con.execute(f'DROP TABLE "{layer}"')


def test_a_file_with_polar_lows_but_no_tracks_layer_gets_one(out, capsys):
    import pyogrio

    gpkg = out / "detections.gpkg"
    Record.open(out).close()
    _drop_layer(gpkg, "tracks")
    assert "tracks" not in {name for name, _ in pyogrio.list_layers(gpkg)}
    code, _, stderr = relink(capsys, out)
    assert code == 0, stderr
    assert "tracks" in {name for name, _ in pyogrio.list_layers(gpkg)}
    assert_full_relink(gpkg, TrackingConfig())
    assert len(read_layer(gpkg, "tracks")) == 1  # m1-m4
