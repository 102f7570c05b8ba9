"""What every scene source speaks: normalised scene records and the Source protocol."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from polarscan.common.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from shapely.geometry import Polygon
    from shapely.geometry.base import BaseGeometry

    from scanner.aoi import AOI

log = logging.getLogger(__name__)

NAME_RE = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>[A-Z0-9]{2})_(?P<ptype>[A-Z]{3})(?P<res>[FHM_])_"
    r"(?P<level>\d)(?P<cls>[SA])(?P<pol>SH|SV|DH|DV|HH|VV|HV|VH)_"
    r"(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})_"
    r"(?P<crc>[0-9A-F]{4})(?:_COG)?(?:\.SAFE)?(?:\.zip)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Scene:
    """One Sentinel-1 product as any source describes it (times are timezone-aware UTC)."""

    id: str  # the provider's id (CDSE UUID, ASF granule, local path)
    name: str  # product name without .SAFE / .zip / _COG
    source: str  # "cdse", "asf", "dhus", "local", "demo"
    start: datetime
    stop: datetime
    footprint: BaseGeometry  # lon/lat (EPSG:4326)
    size: int | None = None
    checksum: tuple[str, str] | None = None  # (algorithm "MD5"|"BLAKE3"|…, hex digest)
    published: datetime | None = None
    url: str | None = None
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def parsed(self) -> dict[str, str]:
        m = NAME_RE.match(self.name)
        return m.groupdict() if m else {}

    @property
    def datatake_key(self) -> tuple[str, int, str] | None:
        """(mission, absolute orbit, datatake id): slices sharing it join into one strip."""
        p = self.parsed
        return (p["mission"].upper(), int(p["orbit"]), p["datatake"].upper()) if p else None


class Source(Protocol):
    """A place scenes come from. Implementations live in ``scanner/sources/<name>.py``."""

    name: str

    def search(
        self,
        aoi: AOI,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        published_after: datetime | None = None,
    ) -> Iterator[Scene]:
        """EW GRDM dual-pol HH+HV scenes intersecting ``aoi`` (deduplicated), oldest first."""
        ...

    def download(self, scene: Scene, dest_dir: Path) -> Path:
        """A verified local product (SAFE folder or zip) for ``scene`` under ``dest_dir``."""
        ...

    def check_credentials(self) -> None:
        """Raise :class:`~polarscan.common.errors.UsageError` now (before any work) if downloads will
        need credentials that are missing, naming the variables / ~/.netrc entry to set."""
        ...


# ---- shared by the sources' search() ------------------------------------------------------------


def require_start(
    start: datetime | None, published_after: datetime | None, problem: str, fix: str
) -> None:
    """Remote catalogues refuse open-ended searches: a start or a publication time is needed."""
    if start is None and published_after is None:
        raise UsageError(problem, fix)


def unique_scenes(
    candidates: Iterable[Scene | None],
    aoi: AOI | None,
    prefer: Callable[[Scene, Scene], Scene] | None = None,
) -> list[Scene]:
    """The candidates (from one query per AOI search polygon) that really touch ``aoi``, each
    product once, oldest sensing time first. Polygons overlap and a catalogue matches on a
    coarse footprint, hence both checks. Of two records of one name the first is kept, or
    ``prefer(old, new)`` picks."""
    found: dict[str, Scene] = {}
    for scene in candidates:
        if scene is None:
            continue
        if aoi is not None and not aoi.intersects(scene.footprint):
            log.debug("%s: footprint misses the area in EPSG:3413", scene.name)
            continue
        old = found.get(scene.name)
        if old is None:
            found[scene.name] = scene
        elif prefer is not None:
            found[scene.name] = prefer(old, scene)
    return sorted(found.values(), key=lambda s: (s.start, s.name))


def filter_scenes(
    scenes: Iterable[Scene],
    aoi: AOI | None,
    start: datetime | None,
    end: datetime | None,
    published_after: datetime | None,
    *,
    closed: bool,
) -> Iterator[Scene]:
    """Sources that list everything (local folder, demo) filter here. ``closed``: a scene that
    only touches the window's edge (stop == start or start == end) counts as inside."""
    for scene in scenes:
        if start is not None and (scene.stop < start if closed else scene.stop <= start):
            continue
        if end is not None and (scene.start > end if closed else scene.start >= end):
            continue
        if published_after is not None and scene.published <= published_after:
            continue
        if aoi is not None and not aoi.intersects(scene.footprint):
            continue
        yield scene


class CatalogueSource:
    """``search`` for sources that ask a remote catalogue once per AOI search polygon (CDSE,
    ASF, DHuS): check the time window, query each polygon, keep each product once. Subclasses
    give :meth:`check_window` and :meth:`query`, and may override :meth:`prefer`."""

    def check_window(
        self, start: datetime | None, end: datetime | None, published_after: datetime | None
    ) -> None:
        """Raise :class:`UsageError` for a window the catalogue cannot search."""
        raise NotImplementedError

    def query(
        self,
        poly: Polygon | None,
        start: datetime | None,
        end: datetime | None,
        published_after: datetime | None,
    ) -> Iterator[Scene | None]:
        """Every record the catalogue matches in one lon/lat search polygon (``None``:
        anywhere); ``None`` for an unusable record. :func:`unique_scenes` sorts them out."""
        raise NotImplementedError

    def prefer(self, old: Scene, new: Scene) -> Scene:
        """Of two records of one product, the one to keep: the first found."""
        return old

    def search(
        self,
        aoi: AOI | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        published_after: datetime | None = None,
    ) -> Iterator[Scene]:
        """Wanted scenes touching ``aoi``, deduplicated, oldest sensing time first."""
        self.check_window(start, end, published_after)
        polygons = aoi.search_polygons() if aoi is not None else [None]
        found = (s for poly in polygons for s in self.query(poly, start, end, published_after))
        yield from unique_scenes(found, aoi, self.prefer)


class ListingSource:
    """``search`` for sources that list every scene they hold (a local folder, the demo) and
    filter the list. ``closed``: whether a scene only touching the window's edge counts."""

    closed: bool = False

    def scenes(self) -> list[Scene]:
        raise NotImplementedError

    def search(
        self,
        aoi: AOI | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        published_after: datetime | None = None,
    ) -> Iterator[Scene]:
        yield from filter_scenes(
            self.scenes(), aoi, start, end, published_after, closed=self.closed
        )
