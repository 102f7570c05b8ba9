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
from scanner.sources.base import (
    CatalogueSource,
    Scene,
    Skipped,
    check_page,
    check_product_name,
    is_other_product_name,
    is_product_name,
    is_wanted_name,
    require_start,
    sample_of,
)
from scanner.sources.odata import base_name

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
    """A :class:`Scene` from one entry of ``SentinelAPI.query`` (``{uuid: props}``), ``None``
    for anything else (:func:`read_dhus_entry` says why)."""
    scene = read_dhus_entry(uuid, props, api_url)
    return scene if isinstance(scene, Scene) else None


def read_dhus_entry(uuid: str, props: object, api_url: str = "") -> Scene | Skipped:
    """A :class:`Scene` for a wanted entry, else a :class:`Skipped` with the reason (the title
    names the file sentinelsat writes, so one that is not a product name is unparseable)."""
    if not isinstance(props, dict):
        return Skipped("unparseable", str(uuid), "not a record", sample_of(props))
    title = str(props.get("title") or props.get("identifier") or "")
    if not is_product_name(title):
        if is_other_product_name(title):
            return Skipped("foreign", title, "not a GRD product name")
        return Skipped("unparseable", title or str(uuid), "title is not a product name",
                       sample_of(props))  # fmt: skip
    name = base_name(title)
    if not is_wanted_name(name):
        log.debug("skipping foreign DHuS product %s", name)
        return Skipped("foreign", name)
    try:
        start, stop = _utc(props.get("beginposition")), _utc(props.get("endposition"))
        published = _utc(props.get("ingestiondate"))
        geom = shapely.from_wkt(props["footprint"]) if props.get("footprint") else None
    except (ValueError, shapely.errors.GEOSException):
        log.warning("skipping DHuS product %s: unreadable dates or footprint", name)
        return Skipped("unparseable", name, "unreadable dates or footprint", sample_of(props))
    if start is None or stop is None or geom is None or geom.is_empty:
        log.warning("skipping DHuS product %s: no dates or footprint", name)
        return Skipped("unparseable", name, "no dates or footprint", sample_of(props))
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
                "and sentinelsat does not work with CDSE (use the cdse source)",
                key="source",
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
            start, published_after, "a DHuS search needs a start time", "give a start date"
        )

    def query(
        self,
        poly: Polygon | None,
        start: datetime | None,
        end: datetime | None,
        published_after: datetime | None,
    ) -> Iterator[Scene | Skipped]:
        """Every scene the mirror matches in one search polygon (``None``: anywhere), read;
        an answer of which no entry could be read is a :class:`ProcessingError`."""
        kw: dict[str, Any] = {
            "platformname": "Sentinel-1",
            "producttype": "GRD",
            # sentinelsat joins the values of a list with OR
            "sensoroperationalmode": list(self.modes),
            "polarisationmode": ["HH HV", "VV VH"],
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
        found = [read_dhus_entry(uuid, props, self.url) for uuid, props in products.items()]
        check_page(found, f"{self.url.rstrip('/')}/search")
        yield from found

    def download(self, scene: Scene, dest_dir: Path) -> Path:
        """The product as sentinelsat wrote it (it names the file after the hub's title):
        the name is checked first, and the file sentinelsat reports must lie in ``dest_dir``."""
        check_product_name(scene.name)
        Path(dest_dir).mkdir(parents=True, exist_ok=True)
        with _SLOTS:
            try:
                info = self.api().download(scene.id, directory_path=str(dest_dir), checksum=True)
            except self.sentinelsat.SentinelAPIError as err:
                raise ProcessingError(
                    f"DHuS download of {scene.name} failed ({err})", "rerun later"
                ) from None
        return written_inside(dest_dir, info.get("path"))


def written_inside(dest_dir: str | Path, reported: object) -> Path:
    """The path sentinelsat reports, if it is a product file directly inside ``dest_dir``."""
    root = Path(dest_dir).resolve()
    path = Path(str(reported or ""))
    if not is_product_name(path.name) or path.resolve().parent != root:
        raise ProcessingError(
            f"the DHuS download reported {str(reported)[:160]!r}, not a product file in {root}",
            "delete that file if it exists; report the product to the mirror",
        )
    return path
