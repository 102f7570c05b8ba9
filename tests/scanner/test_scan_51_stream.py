"""Bounded disk: downloads deleted once mosaicked, a free-disk floor, chains in flight from the
config (issue 10 item 7)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import box

from polarscan.common.errors import ProcessingError
from scanner.scan.stages import MosaicJob, RunContext, StageResult, check_free_disk, fetch
from scanner.sources.base import Scene


def test_free_disk_floor_against_the_real_filesystem(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    check_free_disk(tmp_path, 1000, 0.0)  # plenty
    with pytest.raises(ProcessingError, match="min_free_disk_gb") as err:
        check_free_disk(tmp_path, 1000, free / 1e9 + 1)  # a floor above what is free
    assert "under the floor" in str(err.value) and err.value.exit_code == 1
    with pytest.raises(ProcessingError, match="1.00 GB"):  # an unknown size counts as 1 GB
        check_free_disk(tmp_path, None, (free - 5e8) / 1e9)


def _ctx(tmp_path, **config) -> RunContext:
    from scanner.scan.config import ScanConfig
    from training.card import ModelCard

    card = ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000.0)
    cfg = ScanConfig(source="cdse", out=str(tmp_path / "out"), **config)
    return RunContext("run-1", str(tmp_path / "out"), "cdse", "m.keras", cfg, card)


def test_fetch_refuses_a_download_under_the_floor_before_any_request(tmp_path, monkeypatch):
    # no CDSE credentials or server at all: the floor is checked before anything is asked
    monkeypatch.setenv("CDSE_USERNAME", "nobody")
    monkeypatch.setenv("CDSE_PASSWORD", "x")
    t = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)
    name = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
    scene = Scene(id="0" * 8 + "-0000-0000-0000-" + "0" * 12, name=name, source="cdse",
                  start=t, stop=t, footprint=box(60, 77, 70, 80), size=400_000_000)  # fmt: skip
    ctx = _ctx(tmp_path, min_free_disk_gb=10**9)
    with pytest.raises(ProcessingError, match="under the floor"):
        fetch(StageResult(MosaicJob("m", (scene,))), ctx)
    assert not any(ctx.downloads_dir.iterdir())  # nothing was written


def test_downloads_are_removed_once_mosaicked_and_kept_on_request(tmp_path):
    from scanner.scan.stages import remove_downloads

    downloads = tmp_path / "out" / "downloads"
    downloads.mkdir(parents=True)
    inside = downloads / "a.SAFE.zip"
    inside.write_bytes(b"zip")
    outside = tmp_path / "local" / "b.SAFE"
    (outside / "annotation").mkdir(parents=True)
    remove_downloads([str(inside), str(outside)], downloads)
    assert not inside.exists() and outside.is_dir()  # a local product is never touched

    from scanner.scan.config import ScanConfig

    assert ScanConfig().keep_downloads is False  # the default now
    assert ScanConfig(max_in_flight=3).max_in_flight == 3


def test_scan_passes_max_in_flight_to_the_runner(tmp_path):
    from scanner.scan.config import ScanConfig
    from scanner.scan.run import cluster_spec

    spec = cluster_spec(ScanConfig(max_in_flight=2, workers=3))
    assert (spec.max_in_flight, spec.workers) == (2, 3)
    assert Path(ScanConfig().out).name == "polarscan-output"


def test_progress_lines_count_and_estimate():
    from scanner.scan.summary import Progress

    p = Progress(mosaics=4, scenes=9, start=100.0)
    assert p.update(3, now=130.0) == "1/4 mosaics, 3/9 scenes done; ETA 1m30s"
    assert p.update(2, now=160.0) == "2/4 mosaics, 5/9 scenes done; ETA 1m00s"
    p.update(2, now=190.0)
    assert p.update(2, now=7300.0) == "4/4 mosaics, 9/9 scenes done; done"
    long = Progress(mosaics=1000, scenes=2000, start=0.0)
    assert long.update(2, now=36.0).endswith("ETA 9h59m")  # 999 × 36 s
    # a mosaic deferred mid-run (monthly quota) leaves the totals: the last line says done
    q = Progress(mosaics=3, scenes=5, start=0.0)
    q.update(2, now=10.0)
    q.drop(2)
    assert q.update(1, now=20.0) == "2/2 mosaics, 3/3 scenes done; done"
