"""Where and when a scan looks: the area and the time window, validated and typed.

Built by the command line from already-parsed values (datetimes, floats); nothing here knows a
flag name. The search window follows from the request, the record's watermark and the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from polarscan.common.dates import parse_date
from polarscan.common.errors import UsageError

FIRST_RUN_LOOKBACK = timedelta(days=1)  # since = last with no watermark yet (network sources)
OFFLINE_SOURCES = ("demo", "local")

Since = datetime | Literal["last"] | None


@dataclass(frozen=True)
class ScanRequest:
    """The area (a bbox in degrees or an AOI file) and the sensing window. ``since`` is
    ``"last"`` (what was published since the previous run), a datetime, or None (= last)."""

    bbox: tuple[float, float, float, float] | None = None
    aoi_file: str | None = None
    since: Since = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if isinstance(self.since, str):
            value = self.since.strip().lower()
            since = "last" if value == "last" else parse_date(self.since, "since", extra_hint=" (or 'last')")
            object.__setattr__(self, "since", since)
        if isinstance(self.until, str):
            object.__setattr__(self, "until", parse_date(self.until, "until"))
        if self.bbox is not None:
            object.__setattr__(self, "bbox", tuple(float(v) for v in self.bbox))
        if isinstance(self.since, datetime) and self.until is not None and self.since >= self.until:
            raise UsageError(
                f"the start of the window ({self.since:%Y-%m-%dT%H:%M}) is not before its end "
                f"({self.until:%Y-%m-%dT%H:%M})",
                "swap or fix the dates",
                key="since",
            )

    @property
    def has_area(self) -> bool:
        return self.bbox is not None or self.aoi_file is not None


def resolve_aoi(request: ScanRequest, source: Any = None, source_kind: str = ""):
    """The request's area; the demo source's own footprint when none is given."""
    from scanner.aoi import AOI

    if request.bbox is not None:
        return AOI.from_bbox(*request.bbox)
    if request.aoi_file is not None:
        return AOI.from_file(request.aoi_file)
    if source_kind == "demo" and source is not None:
        from shapely.ops import unary_union

        w, s, e, n = unary_union([sc.footprint for sc in source.scenes()]).bounds
        return AOI.from_bbox(w, s, e, n)
    raise UsageError(
        "no area given",
        "give a bounding box W S E N in degrees or an AOI file (GeoJSON/GeoPackage)",
        key="area",
    )


def time_window(request: ScanRequest, watermark: datetime | None, source_kind: str, now=None):
    """(start, end, published_after) for the search."""
    now = now or datetime.now(UTC)
    end = request.until
    if isinstance(request.since, datetime):
        return request.since, end, None
    # 'last' (explicit or default): what was published since the previous run's watermark
    if watermark is not None:
        return None, end, watermark
    if source_kind in OFFLINE_SOURCES:
        return None, end, None
    return now - FIRST_RUN_LOOKBACK, end, None
