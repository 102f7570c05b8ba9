"""The Copernicus Data Space Ecosystem (CDSE): anonymous OData search, OIDC-token downloads.

Search asks the catalogue once per AOI search polygon (parts never cross 180° or contain the
pole), follows ``@odata.nextLink`` pages, keeps only dual-pol GRD products of the searched
modes (``EW_GRDM_1S``, ``IW_GRDH_1S``; HH+HV or VV+VH) whose footprint really touches the AOI (checked again in EPSG:3413), and merges the same product found
twice (two polygons, or the ``_COG`` twin CDSE also publishes).

Download calls the download host directly (HTTP clients drop the bearer header on a cross-host
redirect) with a token from the identity service, at most :data:`MAX_CONCURRENT` at a time per
process (the CDSE quota is 4 connections), through :func:`polarscan.common.http.download` (resume,
retries, checksum, atomic rename).

Endpoints can be redirected (tests, mirrors, proxies) with ``CDSE_CATALOGUE_URL``,
``CDSE_DOWNLOAD_URL`` and ``CDSE_TOKEN_URL``. Credentials: ``CDSE_USERNAME``/``CDSE_PASSWORD``
or a ``~/.netrc`` line ``machine identity.dataspace.copernicus.eu login … password …``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from polarscan.common.errors import ProcessingError, UsageError
from polarscan.common.http import download as http_download
from polarscan.common.http import get_json
from scanner.sources import odata
from scanner.sources.auth import (
    TokenManager,
    find_credentials,
    host_of,
    require_credentials,
    shared_token_manager,
)
from scanner.sources.base import (
    CatalogueSource,
    Scene,
    Skipped,
    check_page,
    check_product_name,
    path_inside,
    require_start,
)

if TYPE_CHECKING:
    from shapely.geometry import Polygon

log = logging.getLogger(__name__)

CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu"
DOWNLOAD_URL = "https://download.dataspace.copernicus.eu"
TOKEN_URL = (
    "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
)
NETRC_MACHINE = "identity.dataspace.copernicus.eu"
CLIENT_ID = "cdse-public"
USER_VAR, PASSWORD_VAR = "CDSE_USERNAME", "CDSE_PASSWORD"
MAX_CONCURRENT = 4  # CDSE allows 4 concurrent connections per user

TRUSTED_SUFFIXES = (".dataspace.copernicus.eu",)  # hosts that may receive the bearer token
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT)  # shared by every thread of the process
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.I)


def _base(url: str) -> str:
    """Accept a host URL or one ending in ``/odata/v1[/Products]``; return the host URL."""
    url = url.rstrip("/")
    for tail in ("/Products", "/odata/v1"):
        if url.endswith(tail):
            url = url[: -len(tail)]
    return url


class _TrustedRedirects(requests.Session):
    """Keeps the bearer header on a redirect to another CDSE host (``requests`` drops it on any
    change of host, so a redirect to a zipper host would answer 401) but never sends it to
    any other host, nor over a downgrade from https to http."""

    def __init__(self, trusted_hosts: tuple[str, ...]) -> None:
        super().__init__()
        self.trusted_hosts = trusted_hosts

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        old, new = urllib.parse.urlsplit(old_url), urllib.parse.urlsplit(new_url)
        host = new.hostname or ""
        trusted = host in self.trusted_hosts or host.endswith(TRUSTED_SUFFIXES)
        if trusted and (new.scheme == "https" or old.scheme == new.scheme):
            return False
        return super().should_strip_auth(old_url, new_url)


class CDSESource(CatalogueSource):
    """Scenes from CDSE OData (the default source)."""

    name = "cdse"
    #: ``download`` (zip via OData), ``s3`` or ``mount`` (read in place:
    #: :mod:`scanner.access.eodata`); ``twin``: which twin a search keeps (auto|cog|original)
    access: str = "download"
    twin: str = "auto"

    def __init__(
        self,
        *,
        catalogue_url: str | None = None,
        download_url: str | None = None,
        token_url: str | None = None,
        page_size: int = 1000,
        max_pages: int = 1000,
        retries: int = 5,
        backoff: float = 1.0,
        timeout: float = 60.0,
        progress: bool = False,
    ) -> None:
        env = os.environ
        self.catalogue_url = _base(catalogue_url or env.get("CDSE_CATALOGUE_URL") or CATALOGUE_URL)
        self.download_url = _base(download_url or env.get("CDSE_DOWNLOAD_URL") or DOWNLOAD_URL)
        self.token_url = token_url or env.get("CDSE_TOKEN_URL") or TOKEN_URL
        if not 1 <= page_size <= 1000:
            raise UsageError(f"CDSE page size {page_size} is out of range", "use 1 to 1000")
        self.page_size = page_size
        self.max_pages = max_pages
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.progress = progress

    @property
    def products_url(self) -> str:
        return f"{self.catalogue_url}/odata/v1/Products"

    # ---- credentials -------------------------------------------------------------------------
    def _machines(self) -> tuple[str, ...]:
        host = host_of(self.token_url)
        return tuple(dict.fromkeys(h for h in (NETRC_MACHINE, host) if h))

    def has_credentials(self) -> bool:
        return find_credentials(USER_VAR, PASSWORD_VAR, self._machines()) is not None

    def tokens(self) -> TokenManager:
        creds = require_credentials(USER_VAR, PASSWORD_VAR, self._machines(), "CDSE")
        return shared_token_manager(
            self.token_url,
            creds,
            CLIENT_ID,
            service="CDSE",
            fix=f"check {USER_VAR}/{PASSWORD_VAR} or the ~/.netrc entry for {NETRC_MACHINE} "
            "(register at https://dataspace.copernicus.eu)",
            timeout=self.timeout,
        )

    def check_credentials(self, login: bool = True) -> None:
        """Fail now, before any work, if downloads cannot log in: missing credentials are a
        :class:`UsageError` naming the variables and the netrc entry; with ``login`` a token is
        fetched too, so a wrong password is reported up front."""
        if self.access != "download":  # reading in place: S3 keys or the mount, no login
            from scanner.access.eodata import check_ready

            check_ready(self.access)
            return
        mgr = self.tokens()
        if login:
            mgr.token()

    # ---- search ------------------------------------------------------------------------------
    # search() comes from CatalogueSource: check_window, then query, deduplicated with prefer
    def check_window(
        self, start: datetime | None, end: datetime | None, published_after: datetime | None
    ) -> None:
        require_start(
            start,
            published_after,
            "a CDSE search needs a start time or a 'published after' time",
            "give --since DATE (and optionally --until DATE)",
        )
        if start is not None and end is not None and start >= end:
            raise UsageError(
                f"the time window is empty ({start.isoformat()} ≥ {end.isoformat()})",
                "give a start time before the end time",
            )

    def query(
        self,
        poly: Polygon | None,
        start: datetime | None,
        end: datetime | None,
        published_after: datetime | None,
    ) -> Iterator[Scene | Skipped]:
        """Every product record in one search polygon (``None``: anywhere), read; a page of
        which no entry could be read is a :class:`ProcessingError` (:func:`check_page`)."""
        params = odata.build_params(
            poly, start, end, published_after, self.page_size, modes=self.modes, twins=True
        )
        for where, values in self.iter_pages(params):
            results = [odata.read_product(p, self.download_url) for p in values]
            check_page(results, where)
            yield from results

    def prefer(self, old: Scene, new: Scene) -> Scene:
        """Of a scene's original SAFE and COG twin, the one :attr:`twin` and :attr:`access`
        ask for (:func:`scanner.access.eodata.wants_cog`; by default the original when
        downloading, the twin when reading in place); the kept one remembers the other."""
        from scanner.access.eodata import prefer_twin, wants_cog

        return prefer_twin(old, new, wants_cog(self.access, self.twin))

    def iter_products(self, params: dict[str, str]) -> Iterator[dict]:
        """Every product record of a query, following ``@odata.nextLink``."""
        for _where, values in self.iter_pages(params):
            yield from (p for p in values if isinstance(p, dict))

    def iter_pages(self, params: dict[str, str]) -> Iterator[tuple[str, list]]:
        """``(where, entries)`` of each page of a query, following ``@odata.nextLink``;
        ``where`` names the page's URL for messages."""
        url: str | None = self.products_url
        seen: set[str] = set()
        pages = 0
        with requests.Session() as session:
            while url:
                page = get_json(
                    url, params if pages == 0 else None, session,
                    timeout=self.timeout, retries=self.retries, backoff=self.backoff,
                )  # fmt: skip
                pages += 1
                values = page.get("value") if isinstance(page, dict) else None
                if not isinstance(values, list):
                    raise ProcessingError(
                        f"{self.products_url} answered a page without a 'value' list "
                        f"(page {pages})",
                        "retry later; if it persists the OData format changed",
                    )
                yield (url if pages > 1 else f"{url} (page 1)"), values
                nxt = page.get("@odata.nextLink")
                if not nxt or not values:
                    return
                if nxt in seen or pages >= self.max_pages:
                    raise ProcessingError(
                        f"{self.products_url} paging does not end after {pages} pages",
                        "narrow the time window or the area",
                    )
                seen.add(nxt)
                url = nxt

    def product(self, ident: str) -> Scene:
        """The scene for a product id (UUID) or name (with or without ``.SAFE``)."""
        if _UUID_RE.match(ident):
            rec = get_json(
                f"{self.products_url}({ident})", {"$expand": "Attributes"}, None,
                timeout=self.timeout, retries=self.retries, backoff=self.backoff,
            )  # fmt: skip
            records = [rec] if isinstance(rec, dict) else []
        else:
            name = odata.base_name(ident.strip()).replace("'", "''")  # OData string quoting
            params = {"$filter": f"startswith(Name,'{name}')", "$expand": "Attributes"}
            records = list(self.iter_products(params))
        scenes = [s for r in records if (s := odata.parse_product(r, self.download_url))]
        if not scenes:
            raise UsageError(
                f"CDSE has no dual-pol EW GRDM or IW GRDH product {ident!r}",
                "give a product id (UUID) or a name like S1A_EW_GRDM_1SDH_… or "
                "S1A_IW_GRDH_1SDV_…; see 'search'",
            )
        best = scenes[0]
        for s in scenes[1:]:
            best = self.prefer(best, s)
        return best

    # ---- download ----------------------------------------------------------------------------
    def download(self, scene: Scene, dest_dir: Path) -> Path:
        """``<dest_dir>/<product>.SAFE.zip``, verified; an existing verified file is reused.
        With :attr:`access` ``s3`` or ``mount`` nothing is copied: the product's place in the
        archive (``/vsis3/eodata/<key>`` or ``<mount>/<key>``), from its record's ``S3Path``."""
        if self.access != "download":
            from scanner.access.eodata import locate_scene

            return locate_scene(scene, self.access)
        if scene.attrs.get("online") is False:
            raise ProcessingError(
                f"{scene.name} is offline at CDSE", "order it from the CDSE browser, then rerun"
            )
        if not _UUID_RE.match(scene.id):
            raise ProcessingError(
                f"refusing to download {scene.name}: its id {scene.id[:80]!r} is not a CDSE UUID",
                "rerun the search; report the record to CDSE if it persists",
            )
        check_product_name(scene.name)
        tokens = self.tokens()
        product = str(scene.attrs.get("product_name") or f"{scene.name}.SAFE")
        dest = path_inside(dest_dir, product if product.endswith(".zip") else f"{product}.zip")
        url = f"{self.download_url}/odata/v1/Products({scene.id})/$value"
        trusted = tuple(h for h in (host_of(self.download_url),) if h)
        with _SLOTS, _TrustedRedirects(trusted) as session:
            log.info("downloading %s", scene.name)
            http_download(
                url, dest, headers=tokens, expected_size=scene.size, checksum=scene.checksum,
                retries=self.retries, backoff=self.backoff, timeout=self.timeout,
                progress=self.progress, desc=scene.name, session=session,
            )  # fmt: skip
        if not zipfile.is_zipfile(dest):
            dest.unlink(missing_ok=True)
            raise ProcessingError(
                f"CDSE sent {scene.name} as something other than a zip; deleted it",
                "rerun later; if it persists report the product id to CDSE",
            )
        return dest
