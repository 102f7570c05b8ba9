"""Tracks: polar lows seen on different passes linked into one system's life.

Two sightings may be linked when the later one is at most ``max_gap_s`` after the earlier (and
strictly after it, from another mosaic) and the implied geodesic speed is at most
``max_speed_ms``. Links are one-to-one (a sighting has at most one predecessor and one
successor) and chosen greedily, shortest geodesic distance first. Chains of links are tracks.

Since links join only sightings at most ``max_gap_s`` apart (:func:`within_gap`), sightings in
time order fall into clusters separated by longer gaps: no track crosses from one cluster to
another, and the greedy choice inside a cluster does not depend on the others. A publish
therefore re-links only the clusters around its change
(:func:`scanner.outputs.gpkg_forecast.forecast_update`), and the file ends as if every sighting
in it had been linked again: the answer does not depend on the order in which nights were
scanned (a backfilled night slots in between); a track's id comes from its first sighting, so it
is stable while that sighting is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pyproj import Geod

GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Sighting:
    """A polar low as tracking sees it (x, y: the file CRS, for drawing the track)."""

    id: str
    mosaic_id: str
    time: datetime
    lon: float
    lat: float
    x: float = float("nan")
    y: float = float("nan")


@dataclass(frozen=True)
class Track:
    """Sightings of one system, in time order, with its motion."""

    id: str
    sightings: tuple[Sighting, ...]
    distance_m: float  # along the geodesic segments
    mean_speed_ms: float  # distance over the time from first to last (NaN for one sighting)
    heading_deg: float  # geodesic azimuth first → last, degrees from north in [0, 360)

    @property
    def first(self) -> datetime:
        return self.sightings[0].time

    @property
    def last(self) -> datetime:
        return self.sightings[-1].time


def within_gap(earlier: datetime, later: datetime, max_gap_s: float) -> bool:
    """Whether sightings at these times are near enough in time to be linked (the rule of
    :func:`link`, and so of the time clusters)."""
    return (later - earlier).total_seconds() <= max_gap_s


def link(sightings: Sequence[Sighting], max_gap_s: float, max_speed_ms: float) -> dict[int, int]:
    """``{earlier index: later index}``: the one-to-one links, greedy on distance."""
    order = sorted(range(len(sightings)), key=lambda i: (sightings[i].time, sightings[i].id))
    candidates = []
    for a_pos, a in enumerate(order):
        sa = sightings[a]
        for b in order[a_pos + 1 :]:
            sb = sightings[b]
            if not within_gap(sa.time, sb.time, max_gap_s):
                break
            dt = (sb.time - sa.time).total_seconds()
            if dt <= 0 or sb.mosaic_id == sa.mosaic_id:
                continue
            _, _, dist = GEOD.inv(sa.lon, sa.lat, sb.lon, sb.lat)
            if dist / dt <= max_speed_ms:
                candidates.append((dist, dt, sa.id, sb.id, a, b))
    candidates.sort()
    nxt: dict[int, int] = {}
    has_prev: set[int] = set()
    for *_, a, b in candidates:
        if a not in nxt and b not in has_prev:
            nxt[a] = b
            has_prev.add(b)
    return nxt


def build_tracks(
    sightings: Sequence[Sighting], max_gap_s: float, max_speed_ms: float
) -> list[Track]:
    """Every sighting in exactly one track (a lone sighting is a track of one), tracks in order
    of their first sighting."""
    nxt = link(sightings, max_gap_s, max_speed_ms)
    has_prev = set(nxt.values())
    heads = sorted((i for i in range(len(sightings)) if i not in has_prev),
                   key=lambda i: (sightings[i].time, sightings[i].id))  # fmt: skip
    tracks = []
    for head in heads:
        chain = [head]
        while chain[-1] in nxt:
            chain.append(nxt[chain[-1]])
        tracks.append(track_of([sightings[i] for i in chain]))
    return tracks


def track_id(first: Sighting) -> str:
    """``TR-20221130T0144-1a2b``: the first sighting's time and a hash of its id."""
    digest = hashlib.blake2s(first.id.encode(), digest_size=2).hexdigest()
    return f"TR-{first.time:%Y%m%dT%H%M}-{digest}"


def track_of(chain: Sequence[Sighting]) -> Track:
    """A :class:`Track` of sightings already in time order."""
    lons = np.array([s.lon for s in chain])
    lats = np.array([s.lat for s in chain])
    dist = (
        float(np.sum(GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])[2]))
        if len(chain) > 1
        else 0.0
    )
    seconds = (chain[-1].time - chain[0].time).total_seconds()
    speed = dist / seconds if seconds > 0 else float("nan")
    heading = float("nan")
    if len(chain) > 1:
        az, _, _ = GEOD.inv(chain[0].lon, chain[0].lat, chain[-1].lon, chain[-1].lat)
        heading = float(az) % 360.0
    return Track(track_id(chain[0]), tuple(chain), dist, speed, heading)
