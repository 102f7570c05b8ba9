"""Scan building blocks without the pipeline: dates, time windows, grouping, config vs card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import box

from polarscan.common.config import load_config, parse_config
from polarscan.common.dates import parse_date
from polarscan.common.errors import UsageError
from scanner.scan.config import ScanConfig, fit_to_card
from scanner.scan.plan import plan_jobs
from scanner.scan.request import ScanRequest, time_window
from scanner.sources.base import Scene
from training.card import ModelCard


def _scene(start: str, seconds: int = 60, orbit: int = 46117, datatake: str = "058549") -> Scene:
    t0 = datetime.strptime(start, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    t1 = t0 + timedelta(seconds=seconds)
    name = f"S1A_EW_GRDM_1SDH_{t0:%Y%m%dT%H%M%S}_{t1:%Y%m%dT%H%M%S}_{orbit:06d}_{datatake}_ABCD"
    return Scene(
        id=name, name=name, source="local", start=t0, stop=t1, footprint=box(60, 77, 80, 80)
    )


def test_parse_date_forms():
    assert parse_date("2024-01-02", "--since") == datetime(2024, 1, 2, tzinfo=UTC)
    assert parse_date("2024-01-02T03:04Z", "--until") == datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    assert parse_date("2024-01-02T05:04+02:00", "--until") == datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    with pytest.raises(UsageError, match="--since 'yesterday' is not a date"):
        parse_date("yesterday", "--since")


def test_request_rejects_reversed_dates():
    with pytest.raises(UsageError, match="is not before its end") as err:
        ScanRequest(since="2024-02-01", until="2024-01-01")
    assert err.value.key == "since"
    assert ScanRequest(since="LAST").since == "last"
    assert ScanRequest(since="2024-01-01").since == datetime(2024, 1, 1, tzinfo=UTC)


def test_time_window_rules():
    now = datetime(2024, 3, 1, tzinfo=UTC)
    wm = datetime(2024, 2, 28, 12, tzinfo=UTC)
    last = ScanRequest(since="last")
    assert time_window(last, wm, "cdse", now) == (None, None, wm)
    assert time_window(last, None, "cdse", now) == (now - timedelta(days=1), None, None)
    assert time_window(ScanRequest(), None, "demo", now) == (None, None, None)
    fixed = ScanRequest(since=datetime(2024, 1, 1, tzinfo=UTC), until=now)
    assert time_window(fixed, wm, "cdse", now) == (datetime(2024, 1, 1, tzinfo=UTC), now, None)


def test_group_scenes_joins_consecutive_slices_only():
    a1 = _scene("20221130T014342", 64)
    a2 = _scene("20221130T014446", 64)  # next slice: starts when a1 stops
    a3 = _scene("20221130T014800", 64)  # same datatake, but a gap: its own strip
    b1 = _scene("20221130T014446", 64, orbit=46118, datatake="0585AA")  # another datatake
    jobs = plan_jobs([a3, b1, a2, a1], 5.0)
    assert [len(j.scenes) for j in jobs] == [2, 1, 1]
    assert jobs[0].scenes == (a1, a2)
    # the one id scheme (scanner.mosaic.result.mosaic_id): datatake, first start, last stop
    assert jobs[0].mosaic_id == "S1A_046117_058549_20221130T014342_20221130T014550"
    assert len({j.mosaic_id for j in jobs}) == 3


def test_scan_config_file_and_overrides(repo_root):
    cfg = load_config(
        ScanConfig,
        repo_root / "configs" / "scan.yaml",
        {"saliency": {"methods": "gradcam,ig"}, "workers": 3},
    )
    assert cfg.saliency.methods == ("gradcam", "ig") and cfg.workers == 3
    assert cfg.saliency.ig_steps == 64  # the file's other saliency keys survive the override
    assert parse_config(ScanConfig, {"saliency": "none"}).saliency.methods == ()
    assert (
        parse_config(ScanConfig, {"scheduler": "10.0.0.1:8786"}).scheduler == "tcp://10.0.0.1:8786"
    )
    with pytest.raises(UsageError, match="unknown key 'tiling.stride'"):
        parse_config(ScanConfig, {"tiling": {"stride": 3}})
    with pytest.raises(UsageError, match="saliency"):
        parse_config(ScanConfig, {"saliency": ["lime"]})


def test_fit_to_card_follows_the_card_and_refuses_contradictions():
    card = ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000.0)
    fitted = fit_to_card(parse_config(ScanConfig, {}), card)
    assert fitted.mosaic.resolution_m == 2000.0
    assert fitted.mosaic.rgb == card.rgb
    with pytest.raises(UsageError, match="expects 2000 m"):
        fit_to_card(parse_config(ScanConfig, {"mosaic": {"resolution_m": 500}}), card)
    same = fit_to_card(parse_config(ScanConfig, {"mosaic": {"resolution_m": 2000}}), card)
    assert same.mosaic.resolution_m == 2000.0
