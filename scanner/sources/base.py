"""What every scene source speaks: normalised scene records and the Source protocol."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shapely.geometry.base import BaseGeometry

    from scanner.aoi import AOI

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
        """Raise :class:`~common.errors.UsageError` now (before any work) if downloads will
        need credentials that are missing, naming the variables / ~/.netrc entry to set."""
        ...
