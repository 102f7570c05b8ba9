"""The helpers every source and command shares: search merging, window filtering, CLI args."""

from __future__ import annotations

import argparse
import importlib.util
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from shapely.geometry import box

from polarscan.commands._args import add_area, check_limit, default_config
from polarscan.common.dates import parse_date
from polarscan.common.errors import UsageError
from scanner.aoi import AOI
from scanner.sources.base import Scene, filter_scenes, require_start, unique_scenes

T0 = datetime(2022, 11, 30, 1, 0, tzinfo=UTC)
AREA = AOI.from_bbox(10, 70, 30, 75)


def scene(name: str, minutes: int, lon: float = 20.0, **attrs) -> Scene:
    start = T0 + timedelta(minutes=minutes)
    return Scene(
        id=name,
        name=name,
        source="test",
        start=start,
        stop=start + timedelta(minutes=1),
        footprint=box(lon - 1, 72, lon + 1, 73),
        published=start + timedelta(hours=3),
        attrs=attrs,
    )


def test_require_start_names_the_fix():
    require_start(T0, None, "p", "f")
    require_start(None, T0, "p", "f")
    with pytest.raises(UsageError) as err:
        require_start(None, None, "a search needs a start time", "give --since DATE")
    assert err.value.exit_code == 2 and "give --since DATE" in str(err.value)


def test_unique_scenes_drops_misses_keeps_first_and_sorts():
    b1, b2 = scene("B", 5, tag=1), scene("B", 5, tag=2)
    cands = [b1, None, scene("far", 1, lon=120.0), scene("A", 9), b2, scene("C", 0)]
    out = unique_scenes(iter(cands), AREA)
    assert [s.name for s in out] == ["C", "B", "A"]
    assert out[1].attrs["tag"] == 1  # no prefer: the first record of a name wins
    preferred = unique_scenes(cands, AREA, lambda old, new: new)
    assert [s.attrs.get("tag") for s in preferred if s.name == "B"] == [2]
    assert [s.name for s in unique_scenes(cands, None)] == ["C", "far", "B", "A"]


@pytest.mark.parametrize(
    ("closed", "expected"), [(True, ["edge_lo", "mid", "edge_hi"]), (False, ["mid"])]
)
def test_filter_scenes_window_edges(closed, expected):
    edge_lo = scene("edge_lo", 0)  # stops exactly at the window start
    mid = scene("mid", 3)
    edge_hi = scene("edge_hi", 6)  # starts exactly at the window end
    start, end = edge_lo.stop, edge_hi.start
    got = filter_scenes([edge_lo, mid, edge_hi], None, start, end, None, closed=closed)
    assert [s.name for s in got] == expected


def test_filter_scenes_area_and_publication():
    near, far = scene("near", 0), scene("far", 1, lon=120.0)
    assert [s.name for s in filter_scenes([near, far], AREA, None, None, None, closed=True)] == [
        "near"
    ]
    late = filter_scenes([near, far], None, None, None, near.published, closed=False)
    assert [s.name for s in late] == ["far"]  # published strictly after only


def test_parse_date_and_limit():
    assert parse_date(None, "--since") is None
    assert parse_date("2024-01-02", "--since") == datetime(2024, 1, 2, tzinfo=UTC)
    assert parse_date("2024-01-02T03:04Z", "--until") == datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    with pytest.raises(UsageError, match="--until 'soon' is not a date"):
        parse_date("soon", "--until")
    check_limit(None)
    check_limit(1)
    with pytest.raises(UsageError, match="--limit 0 is not positive"):
        check_limit(0)


def test_area_args_are_exclusive_and_default_config():
    p = argparse.ArgumentParser(exit_on_error=False)
    add_area(p, required=True)
    assert p.parse_args(["--bbox", "170", "60", "-170", "75"]).bbox == [170, 60, -170, 75]
    with pytest.raises(argparse.ArgumentError, match="not allowed with argument --bbox"):
        p.parse_args(["--bbox", "1", "2", "3", "4", "--aoi", "x.geojson"])
    assert default_config("scan.yaml").name == "scan.yaml"
    assert default_config("no-such-config.yaml") is None


def _asf_result(name: str, lon: float, minute: int) -> SimpleNamespace:
    """One ``asf_search`` result as ASFSource reads it (``.properties``, GeoJSON ``.geometry``)."""
    ring = [(lon - 1, 72), (lon + 1, 72), (lon + 1, 73), (lon - 1, 73), (lon - 1, 72)]
    return SimpleNamespace(
        properties={
            "sceneName": name,
            "fileID": f"{name}-GRD_MD",
            "startTime": f"2022-11-30T01:{minute:02d}:00Z",
            "stopTime": f"2022-11-30T01:{minute + 1:02d}:00Z",
            "url": f"https://datapool.example/{name}.zip",
        },
        geometry={"type": "Polygon", "coordinates": [ring]},
    )


class _CMR:
    """The real ``asf_search`` module, but its network search answers from a list (CMR itself
    is not reachable from the tests); records each call's options."""

    def __init__(self, real, results):
        self._real, self.results, self.calls = real, results, []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def search(self, **opts):
        self.calls.append(opts)
        return list(self.results)


@pytest.mark.skipif(
    importlib.util.find_spec("asf_search") is None, reason="asf_search not installed"
)
def test_asf_search_queries_each_polygon_and_merges():
    from scanner.sources.asf import ASFSource

    a = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
    b = "S1A_EW_GRDM_1SDH_20221130T010000_20221130T010104_046117_058549_AAAA"
    iw = "S1A_IW_GRDH_1SDV_20221130T060000_20221130T060025_046120_05854C_AAAA"
    src = ASFSource()
    src.asf = _CMR(src.asf, [_asf_result(a, 20, 43), _asf_result(iw, 20, 50),
                             _asf_result(b, 20, 10), _asf_result("S1A_EW_GRDM_1SDH_20221130T"
                             "020000_20221130T020104_046117_058549_CCCC", -120, 20)])  # fmt: skip
    wide = AOI.from_bbox(0, 70, 110, 85)  # wider than 90°: two search polygons
    found = list(src.search(wide, T0))
    assert [s.name for s in found] == [b, a, iw]  # once each, far-away dropped, oldest first
    assert len(src.asf.calls) == len(wide.search_polygons()) == 2
    assert all(c["start"] == T0 and "intersectsWith" in c for c in src.asf.calls)
    c = src.asf.calls[0]
    assert (c["beamMode"], c["processingLevel"]) == (["EW", "IW"], ["GRD_MD", "GRD_HD"])
    assert c["polarization"] == ["HH+HV", "VV+VH"]
    src.modes, src.asf.calls = ("EW",), []
    assert [s.name for s in src.search(wide, T0)] == [b, a]  # IW now foreign
    assert src.asf.calls[0]["beamMode"] == ["EW"] and src.last_search_stats.foreign == 2
    with pytest.raises(UsageError, match="an ASF search needs a start time"):
        next(src.search(wide))
