"""Replay CDSE OData pages and serve products/tokens on a :class:`LoopbackServer`.

``serve_pages(srv, pages)`` answers ``/odata/v1/Products`` with ``pages[0]`` and follows each
page's ``@odata.nextLink`` by its ``$skip`` value (the real recorded pages link with ``$skip``);
links to the real catalogue host are rewritten to the loopback URL. ``cdse_env(monkeypatch, srv)``
points the CDSE source at the server (``CDSE_*_URL``) with test credentials and no ~/.netrc.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from tests.support.loopback import Fault, LoopbackServer, Request, Response

REAL_CATALOGUE = "https://catalogue.dataspace.copernicus.eu"
PRODUCTS = "/odata/v1/Products"


def load_pages(folder: Path, pattern: str) -> list[dict]:
    """Pages named like ``odata_page_1.json`` … in numeric order."""
    files = sorted(folder.glob(pattern), key=lambda p: int("".join(filter(str.isdigit, p.stem))))
    return [json.loads(p.read_text()) for p in files]


def serve_pages(
    srv: LoopbackServer,
    pages: list[dict | bytes],
    faults: Iterable[Fault | None] = (),
) -> None:
    """Serve ``pages`` as one paged query result (any ``$filter``)."""
    by_skip: dict[str | None, bytes] = {}
    key: str | None = None
    for page in pages:
        body = page if isinstance(page, bytes) else json.dumps(page).encode()
        by_skip[key] = body.replace(REAL_CATALOGUE.encode(), srv.url.encode())
        nxt = page.get("@odata.nextLink") if isinstance(page, dict) else None
        if not nxt:
            break
        key = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query).get("$skip", [None])[0]

    def handler(req: Request) -> Response:
        body = by_skip.get(req.query.get("$skip"))
        if body is None:
            return Response(404, b'{"detail": "no such page"}', "application/json")
        return Response(200, body, "application/json")

    srv.add_handler(PRODUCTS, handler, faults=faults)


def product_path(product_id: str) -> str:
    return f"{PRODUCTS}({product_id})/$value"


def serve_product(
    srv: LoopbackServer, product_id: str, data: bytes, faults: Iterable[Fault | None] = ()
) -> None:
    """The product's bytes behind a bearer token, with Range support."""
    srv.add_bytes(product_path(product_id), data, "application/zip", auth=True, faults=faults)


def cdse_env(monkeypatch, srv: LoopbackServer, user: str = "user", password: str = "secret"):
    """Point the CDSE source at ``srv`` (token endpoint at ``/token``) with these credentials."""
    monkeypatch.setenv("CDSE_CATALOGUE_URL", srv.url)
    monkeypatch.setenv("CDSE_DOWNLOAD_URL", srv.url)
    monkeypatch.setenv("CDSE_TOKEN_URL", srv.url + "/token")
    monkeypatch.setenv("NETRC", str(Path("/nonexistent/netrc")))
    if user is None:
        monkeypatch.delenv("CDSE_USERNAME", raising=False)
        monkeypatch.delenv("CDSE_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("CDSE_USERNAME", user)
        monkeypatch.setenv("CDSE_PASSWORD", password)
