"""Which slices join into one strip: same mission, orbit, datatake, contiguous in time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from polarscan.common.errors import UsageError
from scanner.mosaic.config import MosaicConfig
from scanner.mosaic.mosaic import block_size, group_products, mosaic_name

T0 = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)


@dataclass(frozen=True)
class Slice:
    name: str
    mission: str
    abs_orbit: int
    datatake_id: str
    start: datetime
    stop: datetime


def sl(name, k, mission="S1A", orbit=46117, dt="058549", gap=0.0, dur=64.0):
    start = T0 + timedelta(seconds=k * dur + gap)
    return Slice(name, mission, orbit, dt, start, start + timedelta(seconds=dur))


def names(groups):
    return [[p.name for p in g] for g in groups]


def test_consecutive_slices_join_in_time_order():
    a, b, c = sl("a", 0), sl("b", 1), sl("c", 2)
    assert names(group_products([c, a, b])) == [["a", "b", "c"]]


def test_slightly_overlapping_slices_still_join():
    a = sl("a", 0)
    b = Slice("b", "S1A", 46117, "058549", a.stop - timedelta(seconds=2), a.stop + timedelta(60))
    assert names(group_products([b, a])) == [["a", "b"]]


def test_different_datatakes_orbits_missions_never_mix():
    ps = [
        sl("a", 0),
        sl("b", 1, dt="058550"),
        sl("c", 1, orbit=46118),
        sl("d", 1, mission="S1B"),
        sl("e", 1),
    ]
    assert names(group_products(ps)) == [["a", "e"], ["b"], ["c"], ["d"]]


def test_a_gap_splits_a_datatake():
    a, c = sl("a", 0), sl("c", 2)  # slice 1 missing: 64 s gap
    assert names(group_products([a, c], max_gap_s=5.0)) == [["a"], ["c"]]
    assert names(group_products([a, c], max_gap_s=100.0)) == [["a", "c"]]


def test_case_insensitive_keys():
    a = sl("a", 0, dt="05854a")
    b = sl("b", 1, dt="05854A", mission="s1a")
    assert names(group_products([a, b])) == [["a", "b"]]


def test_duplicate_slice_is_refused():
    a = sl("a", 0)
    twin = Slice("a_COG", a.mission, a.abs_orbit, a.datatake_id, a.start, a.stop)
    with pytest.raises(UsageError, match="twice"):
        group_products([a, twin])


def test_mosaic_name_and_block_size():
    assert mosaic_name([sl("a", 0), sl("b", 1)]) == (
        "S1A_046117_058549_20221130T014342_20221130T014550_rgb.tif"
    )
    assert block_size(MosaicConfig(), 40.0) == 12
    assert block_size(MosaicConfig(resolution_m=1000), 40.0) == 25
    assert block_size(MosaicConfig(), 640.0) == 1
    assert block_size(MosaicConfig(block=7), 40.0) == 7
