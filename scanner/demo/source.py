"""The ``demo`` scene source: two passes over one polar low, offline.

Each pass is a synthetic EW datatake of two consecutive slices. The first has the polar low at
:data:`VORTEX`; the second is the datatake of the orbit :data:`ORBITS_LATER` orbits on
(6 h 35 min later: other absolute orbit, datatake id and times), by which the low has moved
:data:`MOVE_KM` km towards azimuth :data:`MOVE_AZIMUTH_DEG` (:func:`vortices` gives both
positions). A real later orbit's swath is the same track rotated about the pole; the demo rotates
it by the low's change of longitude, so the low is in view again. The demo scan therefore finds
two polar lows and links them into one track (16.9 m/s, below the 30 m/s tracking limit).

The products are generated on first use from the real sample's annotation (seeded, so every
machine gets the same pixels) at a reduced grid, then cached under ``$POLARSCAN_CACHE`` (default
``~/.cache/polarscan``) keyed by the generator's parameters; later runs reuse them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import UsageError
from scanner.sources.base import ListingSource, Scene

log = logging.getLogger(__name__)

SEED = 2022
SEED_LATER = SEED + 1  # the second pass: its own clutter and speckle
SCALE = 1 / 8  # 320 m radar pixels: plenty for 2 km mosaics, seconds to generate
SLICES = 2  # per datatake
#: (lat, lon, radius_km) of the demo's polar low on the first pass: mid-swath in the first slice.
VORTEX = (79.3, 88.0, 130.0)
ORBITS_LATER = 4  # the second pass: 4 orbits (4 × 12 d / 175 = 6 h 35 min) after the first
MOVE_KM = 400.0  # how far the low moves between the passes (geodesic)…
MOVE_AZIMUTH_DEG = 90.0  # …setting off due east (degrees from north)
PASSES = 2
PUBLISHED_DELAY = timedelta(hours=3)  # ESA publishes EW GRD a few hours after sensing

_LOCK = threading.Lock()


def cache_root() -> Path:
    return Path(os.environ.get("POLARSCAN_CACHE") or Path.home() / ".cache" / "polarscan")


def demo_key() -> str:
    params = {
        "seed": SEED,
        "scale": SCALE,
        "slices": SLICES,
        "vortex": VORTEX,
        "later": [ORBITS_LATER, MOVE_KM, MOVE_AZIMUTH_DEG],
        "v": 2,
    }
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def demo_products() -> list[Path]:
    """The demo's product folders, generating them on first use (atomically, so a crash or a
    concurrent run never leaves a half-written cache)."""
    folder = cache_root() / "demo" / demo_key()
    with _LOCK:
        if not folder.is_dir():
            log.info("generating the demo datatake into %s (once)", folder)
            with atomic_path(folder) as tmp:
                tmp.mkdir(parents=True)
                _generate(tmp)
    products = sorted(p for p in folder.iterdir() if p.name.upper().endswith((".SAFE", ".ZIP")))
    if len(products) != PASSES * SLICES:
        raise UsageError(
            f"the demo cache {folder} is incomplete ({len(products)} products)",
            f"delete {folder} and run again",
        )
    return products


def vortices() -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(lat, lon, radius_km) of the polar low on the first and on the second pass."""
    from pyproj import Geod

    lat, lon, radius_km = VORTEX
    lon2, lat2, _ = Geod(ellps="WGS84").fwd(lon, lat, MOVE_AZIMUTH_DEG, MOVE_KM * 1000.0)
    return VORTEX, (float(lat2), float(lon2), radius_km)


def _generate(dest: Path) -> None:
    from scanner.demo.synthetic_product import LaterOrbit, write_datatake

    first, second = vortices()
    write_datatake(dest, slices=SLICES, scale=SCALE, vortex=first, seed=SEED)
    later = LaterOrbit(ORBITS_LATER, lon_deg=second[1] - first[1])  # the low in view again
    write_datatake(dest, slices=SLICES, scale=SCALE, vortex=second, seed=SEED_LATER, later=later)


def _scene(path: Path) -> Scene:
    from scanner.safe import open_product

    with open_product(path) as product:
        return Scene(
            id=product.name,
            name=product.name,
            source="demo",
            start=product.start,
            stop=product.stop,
            footprint=product.footprint,
            published=product.stop + PUBLISHED_DELAY,
            url=str(path),
            attrs={"path": str(path), "synthetic": True},
        )


class DemoSource(ListingSource):
    """Serves the cached synthetic datatake like any other source (no network, no login)."""

    name = "demo"
    closed = True  # a scene that only touches the --since/--until edge is listed

    def check_credentials(self) -> None:
        """Nothing to check: the demo needs no login."""

    def scenes(self) -> list[Scene]:
        return [_scene(p) for p in demo_products()]

    def download(self, scene: Scene, dest_dir: Path) -> Path:
        """The cached product itself: nothing to copy."""
        for path in demo_products():
            if path.name.startswith(scene.name):
                return path
        raise UsageError(
            f"{scene.name} is not a demo scene",
            "download only scenes the demo source lists",
            key="source",
        )
