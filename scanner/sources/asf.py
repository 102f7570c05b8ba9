"""The Alaska Satellite Facility (ASF) archive via ``asf_search`` (optional: ``polarscan[asf]``).

A second source for the same scenes (ASF mirrors the whole Sentinel-1 archive). Search uses
``asf_search`` (platform Sentinel-1, beam modes EW and IW, processing levels GRD_MD and GRD_HD,
polarisations HH+HV and VV+VH; the modes narrowed by the source's ``modes``) once per AOI search
polygon; downloads go through :func:`polarscan.common.http.download` (resume, retries,
MD5 check, atomic rename) with an ``asf_search.ASFSession`` logged in to NASA Earthdata, since
ASF redirects downloads through Earthdata Login. Credentials: ``EARTHDATA_USERNAME`` /
``EARTHDATA_PASSWORD`` or a ``~/.netrc`` line for ``urs.earthdata.nasa.gov``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shapely.geometry import shape

from polarscan.common.errors import ProcessingError, UsageError
from polarscan.common.http import download as http_download
from scanner.sources.auth import find_credentials, require_credentials
from scanner.sources.base import (
    CatalogueSource,
    Scene,
    Skipped,
    check_page,
    check_product_name,
    is_other_product_name,
    is_product_name,
    is_wanted_name,
    path_inside,
    require_start,
    sample_of,
)
from scanner.sources.odata import base_name, parse_time

if TYPE_CHECKING:
    from shapely.geometry import Polygon

log = logging.getLogger(__name__)

NETRC_MACHINE = "urs.earthdata.nasa.gov"
USER_VAR, PASSWORD_VAR = "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"
MAX_CONCURRENT = 4
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT)
#: ASF's processing level (product type) of each acquisition mode's GRD
PROCESSING_LEVELS = {"EW": "GRD_MD", "IW": "GRD_HD"}


def import_asf_search() -> Any:
    try:
        import asf_search
    except ImportError:
        raise UsageError(
            "the ASF source needs the optional package asf_search",
            "pip install 'polarscan[asf]' (or pip install asf-search)",
        ) from None
    return asf_search


def search_url() -> str:
    """Where ``asf_search`` asks (NASA CMR), for messages."""
    try:
        from asf_search.constants import INTERNAL

        return f"https://{INTERNAL.CMR_HOST}{INTERNAL.CMR_GRANULE_PATH}"
    except ImportError:  # pragma: no cover - only with asf_search missing
        return "the ASF search API"


def scene_from_asf(properties: dict, geometry: dict | None) -> Scene | None:
    """A :class:`Scene` from an ASF result's ``properties`` and GeoJSON ``geometry``, or
    ``None`` for anything else (:func:`read_asf_result` says why)."""
    scene = read_asf_result(properties, geometry)
    return scene if isinstance(scene, Scene) else None


def read_asf_result(properties: object, geometry: dict | None) -> Scene | Skipped:
    """A :class:`Scene` for a dual-pol EW GRDM or IW GRDH result, else a :class:`Skipped`:
    ``foreign`` for another product, ``unparseable`` for a record without a usable name,
    dates, footprint or URL, or whose ``fileName`` is not a product file name."""
    if not isinstance(properties, dict):
        return Skipped("unparseable", "?", "no properties", sample_of(properties))
    raw = str(properties.get("sceneName") or properties.get("fileID") or "")
    stem = raw.removesuffix("-GRD_MD").removesuffix("-GRD_HD")
    if not raw:
        return Skipped("unparseable", "?", "no sceneName", sample_of(properties))
    if not is_product_name(stem):
        if is_other_product_name(raw):
            return Skipped("foreign", raw, "not a GRD product name")
        return Skipped("unparseable", raw, "not a Sentinel-1 product name", sample_of(properties))
    name = base_name(stem)
    if not is_wanted_name(name):
        log.debug("skipping foreign ASF product %s", raw)
        return Skipped("foreign", raw, "not a dual-pol EW GRDM or IW GRDH")
    file_name = properties.get("fileName")
    if file_name is not None and not is_product_name(file_name):
        log.warning("skipping ASF product %s: its fileName %r is not a product name", raw, file_name)
        return Skipped(
            "unparseable", raw, "fileName is not a product file name", sample_of(properties)
        )
    try:
        start = parse_time(str(properties.get("startTime") or ""))
        stop = parse_time(str(properties.get("stopTime") or ""))
        published = parse_time(str(properties["processingDate"])) if properties.get(
            "processingDate"
        ) else None  # fmt: skip
    except ValueError:
        log.warning("skipping ASF product %s: unreadable dates", raw)
        return Skipped("unparseable", raw, "unreadable dates", sample_of(properties))
    try:
        geom = shape(geometry) if geometry and geometry.get("coordinates") else None
    except (ValueError, TypeError, AttributeError):
        geom = None
    url = properties.get("url")
    if start is None or stop is None or geom is None or geom.is_empty or not url:
        log.warning("skipping ASF product %s: no dates, footprint or URL", raw)
        return Skipped("unparseable", raw, "no dates, footprint or URL", sample_of(properties))
    size = properties.get("bytes")
    md5 = properties.get("md5sum")
    attrs = {
        k: properties.get(k)
        for k in ("flightDirection", "pathNumber", "frameNumber", "orbit", "fileName")
        if properties.get(k) is not None
    }
    return Scene(
        id=str(properties.get("fileID") or raw),
        name=name,
        source="asf",
        start=start,
        stop=stop,
        footprint=geom,
        size=int(size) if isinstance(size, int | float) and size > 0 else None,
        checksum=("MD5", str(md5).lower()) if md5 else None,
        published=published,
        url=str(url),
        attrs=attrs,
    )


class ASFSource(CatalogueSource):
    """Scenes from the ASF archive."""

    name = "asf"

    def __init__(self, *, retries: int = 5, backoff: float = 1.0, timeout: float = 60.0) -> None:
        self.asf = import_asf_search()
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._session = None
        self._lock = threading.Lock()

    def has_credentials(self) -> bool:
        return find_credentials(USER_VAR, PASSWORD_VAR, (NETRC_MACHINE,)) is not None

    def check_credentials(self) -> None:
        """Missing Earthdata credentials are a :class:`UsageError` naming what to set."""
        require_credentials(USER_VAR, PASSWORD_VAR, (NETRC_MACHINE,), "NASA Earthdata (ASF)")

    def session(self):
        with self._lock:
            if self._session is None:
                creds = require_credentials(
                    USER_VAR, PASSWORD_VAR, (NETRC_MACHINE,), "NASA Earthdata (ASF)"
                )
                try:
                    self._session = self.asf.ASFSession().auth_with_creds(
                        creds.username, creds.password
                    )
                except self.asf.ASFAuthenticationError:
                    raise UsageError(
                        f"NASA Earthdata refused the login of {creds.username!r} "
                        f"(credentials from {creds.origin})",
                        f"check {USER_VAR}/{PASSWORD_VAR} or the ~/.netrc entry "
                        f"for {NETRC_MACHINE}",
                    ) from None
            return self._session

    def check_window(
        self, start: datetime | None, end: datetime | None, published_after: datetime | None
    ) -> None:
        require_start(
            start, published_after, "an ASF search needs a start time", "give a start date"
        )

    def query(
        self,
        poly: Polygon | None,
        start: datetime | None,
        end: datetime | None,
        published_after: datetime | None,
    ) -> Iterator[Scene | Skipped]:
        """Every scene ASF matches in one search polygon (``None``: anywhere), read; an
        answer of which no entry could be read is a :class:`ProcessingError`."""
        asf = self.asf
        opts: dict[str, Any] = {
            "platform": asf.PLATFORM.SENTINEL1,
            "beamMode": list(self.modes),
            "processingLevel": [PROCESSING_LEVELS[m] for m in self.modes],
            "polarization": [asf.POLARIZATION.HH_HV, asf.POLARIZATION.VV_VH],
        }
        if poly is not None:
            opts["intersectsWith"] = poly.wkt
        if start is not None:
            opts["start"] = start
        if end is not None:
            opts["end"] = end
        if published_after is not None:
            opts["processingDate"] = published_after
        try:
            results = asf.search(**opts)
        except asf.ASFError as err:
            raise ProcessingError(f"ASF search failed ({err})", "retry later") from None
        found = [read_asf_result(p.properties, p.geometry) for p in results]
        check_page(found, search_url())
        yield from found

    def product(self, ident: str) -> Scene:
        """The GRD scene (EW GRD_MD, IW GRD_HD) for a product name."""
        name = base_name(ident.strip())
        try:
            results = self.asf.granule_search([name])
        except self.asf.ASFError as err:
            raise ProcessingError(f"ASF search failed ({err})", "retry later") from None
        for product in results:
            scene = scene_from_asf(product.properties, product.geometry)
            if scene is not None and scene.name == name:
                return scene
        raise UsageError(
            f"ASF has no dual-pol EW GRDM or IW GRDH product {ident!r}", "check the name"
        )

    def download(self, scene: Scene, dest_dir: Path) -> Path:
        """The product zip under ``dest_dir``, verified against ASF's MD5. The file name (ASF's
        ``fileName``) must be a product name and stay inside ``dest_dir``."""
        check_product_name(scene.name)
        dest = path_inside(dest_dir, scene.attrs.get("fileName") or f"{scene.name}.zip")
        with _SLOTS:
            return http_download(
                str(scene.url), dest, session=self.session(), expected_size=scene.size,
                checksum=scene.checksum, retries=self.retries, backoff=self.backoff,
                timeout=self.timeout, desc=scene.name,
            )  # fmt: skip
