"""A local folder of products (``local:PATH``): for users who already have data, and for tests.

Every ``*.SAFE`` folder and ``*.zip`` whose name is a dual-pol EW GRDM or IW GRDH product (HH+HV
or VV+VH, anywhere below PATH) is a scene; a search keeps those of the source's ``modes`` and
counts the others, like single-pol products, as ``foreign``. Times come from the name; the footprint from ``manifest.safe``
(``<gml:coordinates>``, ``lat,lon`` pairs), read straight from the zip without extracting it.
A product's "publication" time is the file's modification time, so ``published_after`` means
"arrived in the folder since". ``download`` returns the product where it lies.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from shapely.geometry import Polygon

from polarscan.common.errors import ProcessingError, UsageError
from scanner.sources.base import (
    NAME_RE,
    ListingSource,
    Scene,
    Skipped,
    is_wanted_name,
    slice_key,
)
from scanner.sources.odata import base_name

log = logging.getLogger(__name__)

_COORDS_RE = re.compile(rb"<gml:coordinates>\s*([^<]+?)\s*</gml:coordinates>")
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is ~30 kB; refuse to read a zip bomb


def name_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def parse_coordinates(manifest: bytes) -> Polygon | None:
    """The footprint polygon (lon/lat) of a manifest's ``<gml:coordinates>lat,lon …``."""
    m = _COORDS_RE.search(manifest)
    if not m:
        return None
    try:
        pairs = [tuple(float(v) for v in p.split(b",")) for p in m.group(1).split()]
        ring = [(lon, lat) for lat, lon in pairs]
    except ValueError:
        return None
    if len(ring) < 3:
        return None
    poly = Polygon(ring)
    return poly if poly.is_valid else poly.buffer(0)


def read_manifest(path: Path) -> bytes:
    """``manifest.safe`` of a SAFE folder or zip (the zip is read in place)."""
    if path.is_dir():
        return (path / "manifest.safe").read_bytes()
    with zipfile.ZipFile(path) as zf:
        names = sorted(
            (n for n in zf.namelist() if n.lower().endswith("manifest.safe") and n.count("/") <= 1),
            key=lambda n: n.count("/"),
        )
        if not names:
            raise KeyError("manifest.safe")
        info = zf.getinfo(names[0])
        if info.file_size > MAX_MANIFEST_BYTES:
            raise ValueError(f"manifest.safe is {info.file_size} bytes")
        return zf.read(info)


def find_products(root: Path) -> Iterator[Path]:
    """SAFE folders and zips below ``root`` whose names are wanted products (not inside SAFEs)."""
    for path in find_candidates(root):
        if is_wanted_name(base_name(path.name)):
            yield path


def find_candidates(root: Path) -> Iterator[Path]:
    """Every ``*.SAFE`` folder and ``*.zip`` below ``root`` (not inside SAFEs)."""
    for dirpath, dirnames, filenames in os.walk(root):
        keep = []
        for d in sorted(dirnames):
            if d.upper().endswith(".SAFE"):
                yield Path(dirpath) / d
            elif not d.startswith("."):
                keep.append(d)
        dirnames[:] = keep  # never descend into a product
        for f in sorted(filenames):
            if f.lower().endswith(".zip"):
                yield Path(dirpath) / f


def classify(path: Path) -> Skipped | None:
    """Why a candidate is not a wanted product (``None``: it is one). Another Sentinel-1
    product is ``foreign``; a name that starts like one but breaks the naming pattern (a
    browser's ``… (1).zip``, odd characters) is ``unparseable``; anything else is ignored."""
    name = base_name(path.name)
    if is_wanted_name(name):
        return None
    if NAME_RE.fullmatch(name):
        return Skipped("foreign", path.name)
    if name.upper().startswith("S1"):
        return Skipped("unparseable", path.name, "not a Sentinel-1 product name", str(path))
    return Skipped("foreign", path.name, "not a Sentinel-1 product")


def scene_of(path: Path) -> Scene | None:
    """A scene for a product path, ``None`` (with a warning) when it is unreadable."""
    name = base_name(path.name)
    m = NAME_RE.fullmatch(name)
    if m is None or not is_wanted_name(name):
        return None
    try:
        geom = parse_coordinates(read_manifest(path))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as err:
        log.warning("skipping %s: cannot read its manifest.safe (%s)", path, err)
        return None
    if geom is None or geom.is_empty:
        log.warning("skipping %s: manifest.safe has no footprint coordinates", path)
        return None
    stat = path.stat()
    return Scene(
        id=str(path.resolve()),
        name=name,
        source="local",
        start=name_time(m["start"]),
        stop=name_time(m["stop"]),
        footprint=geom,
        size=stat.st_size if path.is_file() else None,
        published=datetime.fromtimestamp(stat.st_mtime, UTC),
        url=str(path.resolve()),
        attrs={
            "path": str(path.resolve()),
            "zip": path.is_file(),
            "cog": "_COG." in path.name.upper(),
        },
    )


class LocalSource(ListingSource):
    """Scenes in a folder tree of SAFE folders and zips."""

    name = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not str(root).strip():
            raise UsageError("local source without a folder", "write local:PATH")
        if not self.root.is_dir():
            raise UsageError(
                f"local source folder not found: {self.root}",
                "give an existing folder of .SAFE folders or .zip products (local:PATH)",
            )

    def check_credentials(self) -> None:
        """Nothing to check: local files need no login."""

    def scenes(self) -> list[Scene]:
        """Every readable product; a SAFE folder wins over a zip of the same product."""
        return [r for r in self.records() if isinstance(r, Scene)]

    def records(self) -> list[Scene | Skipped]:
        """:meth:`scenes` (oldest first), then what was skipped: other products, odd names,
        unreadable manifests and zips beside their SAFE folder (``duplicate``)."""
        found: dict[str, Scene] = {}
        skipped: list[Skipped] = []
        for path in find_candidates(self.root):
            why = classify(path)
            if why is not None:
                if why.reason == "unparseable" or why.detail != "not a Sentinel-1 product":
                    skipped.append(why)
                continue
            scene = scene_of(path)
            if scene is None:
                skipped.append(Skipped("unparseable", path.name, "unreadable manifest", str(path)))
                continue
            # one slice once: a folder before its zip, an original before its COG twin (both
            # are on disk; the original is the full-resolution reference)
            key = slice_key(scene.name)
            old = found.get(key)
            if old is None or (old.attrs["cog"], old.attrs["zip"]) > (
                scene.attrs["cog"],
                scene.attrs["zip"],
            ):
                found[key] = scene
            if old is not None:
                twins = old.attrs["cog"] != scene.attrs["cog"]
                skipped.append(Skipped("twin" if twins else "duplicate", path.name))
        scenes = sorted(found.values(), key=lambda s: (s.start, s.name))
        return [*scenes, *skipped]

    def product(self, ident: str) -> Scene:
        """The scene for a product name (with or without ``.SAFE``/``.zip``) or path."""
        name = base_name(Path(ident).name)
        for scene in self.scenes():
            if scene.name == name or scene.id == str(Path(ident).resolve()):
                return scene
        raise UsageError(
            f"no product {ident!r} in {self.root}", "give the name of a product in that folder"
        )

    def download(self, scene: Scene, dest_dir: Path) -> Path:
        """The product where it lies (nothing is copied)."""
        path = Path(scene.attrs.get("path") or scene.id)
        if not path.exists():
            raise ProcessingError(
                f"{scene.name} is no longer at {path}", "put it back or rerun the search"
            )
        return path
