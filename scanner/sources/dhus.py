"""A DHuS mirror via ``sentinelsat`` (optional: ``polarscan[dhus]``; GPL-3, unmaintained).

sentinelsat spoke to the ESA Copernicus Open Access Hub, closed in October 2023; it does NOT
work with CDSE. It still reaches the Data Hub Software (DHuS) mirrors some national ground
segments run (collaborative hubs). Point it at one with ``DHUS_URL`` (e.g.
``https://colhub.met.no/``) and log in with ``DHUS_USERNAME``/``DHUS_PASSWORD`` or a
``~/.netrc`` entry for the mirror's host. Kept thin: search and normalise, download with
sentinelsat's own checksum check.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shapely

from polarscan.common.errors import ProcessingError, UsageError
from scanner.sources.auth import host_of, require_credentials
from scanner.sources.base import CatalogueSource, Scene, require_start
from scanner.sources.odata import base_name, is_wanted_name

if TYPE_CHECKING:
    from shapely.geometry import Polygon

log = logging.getLogger(__name__)

URL_VAR, USER_VAR, PASSWORD_VAR = "DHUS_URL", "DHUS_USERNAME", "DHUS_PASSWORD"
_SLOTS = threading.BoundedSemaphore(2)  # DHuS mirrors usually allow 2 parallel downloads
_SIZE_RE = re.compile(r"^\s*([\d.]+)\s*([KMGT]?B)\s*$", re.I)
_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def import_sentinelsat() -> Any:
    try:
        import sentinelsat
    except ImportError:
        raise UsageError(
            "the DHuS source needs the optional package sentinelsat (GPL-3)",
            "pip install 'polarscan[dhus]' (or pip install sentinelsat)",
        ) from None
    return sentinelsat


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str) and value:
        from scanner.sources.odata import parse_time

        return parse_time(value)
    return None


def parse_size(text: Any) -> int | None:
    """DHuS sizes are strings like ``'1.23 GB'``."""
    m = _SIZE_RE.match(str(text or ""))
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()]) if m else None


def scene_from_dhus(uuid: str, props: dict, api_url: str = "") -> Scene | None:
    """A :class:`Scene` from one entry of ``SentinelAPI.query`` (``{uuid: props}``)."""
    name = base_name(str(props.get("title") or props.get("identifier") or ""))
    if not is_wanted_name(name):
        log.debug("skipping foreign DHuS product %s", name)
        return None
    try:
        start, stop = _utc(props.get("beginposition")), _utc(props.get("endposition"))
        published = _utc(props.get("ingestiondate"))
        geom = shapely.from_wkt(props["footprint"]) if props.get("footprint") else None
    except (ValueError, shapely.errors.GEOSException):
        log.warning("skipping DHuS product %s: unreadable dates or footprint", name)
        return None
    if start is None or stop is None or geom is None or geom.is_empty:
        log.warning("skipping DHuS product %s: no dates or footprint", name)
        return None
    attrs = {
        k: props[k]
        for k in ("orbitdirection", "relativeorbitnumber", "orbitnumber", "slicenumber")
        if props.get(k) is not None
    }
    return Scene(
        id=str(uuid),
        name=name,
        source="dhus",
        start=start,
        stop=stop,
        footprint=geom,
        size=parse_size(props.get("size")),
        checksum=None,  # sentinelsat verifies the MD5 it reads from the hub itself
        published=published,
        url=f"{api_url.rstrip('/')}/odata/v1/Products('{uuid}')/$value" if api_url else None,
        attrs=attrs,
    )


class DHuSSource(CatalogueSource):
    """Scenes from a DHuS mirror (``DHUS_URL``)."""

    name = "dhus"

    def __init__(self, url: str | None = None) -> None:
        self.url = url or os.environ.get(URL_VAR) or ""
        if not self.url:
            raise UsageError(
                "the DHuS source needs the address of a DHuS mirror",
                f"set {URL_VAR} (e.g. https://colhub.met.no/); the ESA hub closed in 2023 "
                "and sentinelsat does not work with CDSE (use --source cdse)",
            )
        self.sentinelsat = import_sentinelsat()
        self._api = None
        self._lock = threading.Lock()

    def check_credentials(self) -> None:
        require_credentials(USER_VAR, PASSWORD_VAR, (host_of(self.url),), "DHuS")

    def api(self):
        with self._lock:
            if self._api is None:
                c = require_credentials(USER_VAR, PASSWORD_VAR, (host_of(self.url),), "DHuS")
                self._api = self.sentinelsat.SentinelAPI(c.username, c.password, self.url)
            return self._api

    def check_window(
        self, start: datetime | None, end: datetime | None, published_after: datetime | None
    ) -> None:
        require_start(
            start, published_after, "a DHuS search needs a start time", "give --since DATE"
        )

    def query(
        self,
        poly: Polygon | None,
        start: datetime | None,
        end: datetime | None,
        published_after: datetime | None,
    ) -> Iterator[Scene | None]:
        """Every scene the mirror matches in one search polygon (``None``: anywhere)."""
        kw: dict[str, Any] = {
            "platformname": "Sentinel-1",
            "producttype": "GRD",
            "sensoroperationalmode": "EW",
            "polarisationmode": "HH HV",
        }
        if start is not None:
            kw["date"] = (start, end or "NOW")
        if published_after is not None:
            kw["ingestiondate"] = (published_after, "NOW")
        try:
            products = self.api().query(area=poly.wkt if poly is not None else None, **kw)
        except self.sentinelsat.SentinelAPIError as err:
            raise ProcessingError(
                f"DHuS search at {self.url} failed ({err})", "check DHUS_URL or retry later"
            ) from None
        for uuid, props in products.items():
            yield scene_from_dhus(uuid, props, self.url)

    def download(self, scene: Scene, dest_dir: Path) -> Path:
        Path(dest_dir).mkdir(parents=True, exist_ok=True)
        with _SLOTS:
            try:
                info = self.api().download(scene.id, directory_path=str(dest_dir), checksum=True)
            except self.sentinelsat.SentinelAPIError as err:
                raise ProcessingError(
                    f"DHuS download of {scene.name} failed ({err})", "rerun later"
                ) from None
        return Path(info["path"])
