"""The ``demo`` scene source: two consecutive synthetic EW slices with a polar low, offline.

The products are generated on first use from the real sample's annotation (seeded, so every
machine gets the same pixels) at a reduced grid, then cached under ``$POLARSCAN_CACHE`` (default
``~/.cache/polarscan``) keyed by the generator's parameters; later runs reuse them. The vortex
sits at :data:`VORTEX` — the demo's test checks that the top detection's crop contains it.
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
SCALE = 1 / 8  # 320 m radar pixels: plenty for 2 km mosaics, seconds to generate
SLICES = 2
#: (lat, lon, radius_km) of the demo's polar low: mid-swath in the first slice.
VORTEX = (79.3, 88.0, 130.0)
PUBLISHED_DELAY = timedelta(hours=3)  # ESA publishes EW GRD a few hours after sensing

_LOCK = threading.Lock()


def cache_root() -> Path:
    return Path(os.environ.get("POLARSCAN_CACHE") or Path.home() / ".cache" / "polarscan")


def demo_key() -> str:
    params = {"seed": SEED, "scale": SCALE, "slices": SLICES, "vortex": VORTEX, "v": 1}
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
    if len(products) != SLICES:
        raise UsageError(
            f"the demo cache {folder} is incomplete ({len(products)} products)",
            f"delete {folder} and run again",
        )
    return products


def _generate(dest: Path) -> None:
    from scanner.demo.synthetic_product import write_datatake

    write_datatake(dest, slices=SLICES, scale=SCALE, vortex=VORTEX, seed=SEED)


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
