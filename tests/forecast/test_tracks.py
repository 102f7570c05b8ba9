"""Linking sightings into tracks: gap, speed, one-to-one nearest first; speed and heading checked
against positions made with pyproj.Geod.fwd (the code measures with Geod.inv)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyproj import Geod

from scanner.forecast.tracks import Sighting, build_tracks, link, track_id

GEOD = Geod(ellps="WGS84")
T0 = datetime(2022, 11, 30, 2, 0, tzinfo=UTC)
GAP, VMAX = 12 * 3600.0, 30.0


def moved(lon, lat, azimuth, km):
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, km * 1000)
    return lon2, lat2


def s(name, hours, lon, lat, mosaic=None):
    return Sighting(name, mosaic or f"m{hours}", T0 + timedelta(hours=hours), lon, lat)


def test_speed_and_heading_of_a_three_pass_track():
    a = (10.0, 72.0)
    b = moved(*a, 45.0, 300.0)  # 300 km north-east in 6 h
    c = moved(*b, 90.0, 200.0)  # then 200 km east in 5 h
    sightings = [s("c", 11, *c), s("a", 0, *a), s("b", 6, *b)]
    [track] = build_tracks(sightings, GAP, VMAX)
    assert [x.id for x in track.sightings] == ["a", "b", "c"]
    assert track.distance_m == pytest.approx(500_000.0, rel=1e-9)
    assert track.mean_speed_ms == pytest.approx(500_000.0 / (11 * 3600), rel=1e-9)
    az_first_last = GEOD.inv(*a, *c)[0] % 360
    assert track.heading_deg == pytest.approx(az_first_last)
    assert 45 < track.heading_deg < 90
    assert track.id == track_id(sightings[1]) and track.id.startswith("TR-20221130T0200-")


def test_gap_and_speed_limits():
    a = (0.0, 75.0)
    near = moved(*a, 0.0, 100.0)
    assert link([s("a", 0, *a), s("b", 12, *near)], GAP, VMAX) == {0: 1}  # 12 h: inside
    assert link([s("a", 0, *a), s("b", 12.5, *near)], GAP, VMAX) == {}  # too late
    fast = moved(*a, 0.0, 30 * 3600 / 1000 + 1)  # 1 km more than 30 m/s for 1 h
    assert link([s("a", 0, *a), s("b", 1, *fast)], GAP, VMAX) == {}
    ok = moved(*a, 0.0, 30 * 3600 / 1000 - 1)
    assert link([s("a", 0, *a), s("b", 1, *ok)], GAP, VMAX) == {0: 1}
    # same mosaic, or the same time: never the same system seen twice
    assert link([s("a", 0, *a, "m"), s("b", 1, *near, "m")], GAP, VMAX) == {}
    assert link([s("a", 0, *a, "m1"), s("b", 0, *near, "m2")], GAP, VMAX) == {}


def test_one_to_one_nearest_first():
    # two lows yesterday, two today; each today-low is nearest to a different yesterday-low,
    # except that p2 is close to both: greedy on distance takes the shortest pair first
    p1, p2 = (0.0, 75.0), moved(0.0, 75.0, 90.0, 200.0)
    q1 = moved(*p1, 0.0, 50.0)  # 50 km from p1
    q2 = moved(*p2, 0.0, 120.0)  # 120 km from p2
    lows = [s("p1", 0, *p1), s("p2", 0, *p2, "m0"), s("q1", 6, *q1), s("q2", 6, *q2, "m6")]
    assert link(lows, GAP, VMAX) == {0: 2, 1: 3}
    # one today-low between two yesterday-lows: only the nearer one gets it
    r = moved(*p1, 90.0, 80.0)  # 80 km from p1, 120 km from p2
    links = link([s("p1", 0, *p1), s("p2", 0, *p2, "m0"), s("r", 6, *r)], GAP, VMAX)
    assert links == {0: 2}
    tracks = build_tracks([s("p1", 0, *p1), s("p2", 0, *p2, "m0"), s("r", 6, *r)], GAP, VMAX)
    assert sorted(len(t.sightings) for t in tracks) == [1, 2]


def test_lone_sighting_is_a_track_of_one():
    [t] = build_tracks([s("a", 0, 0.0, 75.0)], GAP, VMAX)
    assert len(t.sightings) == 1 and t.distance_m == 0.0
    assert t.mean_speed_ms != t.mean_speed_ms  # NaN
