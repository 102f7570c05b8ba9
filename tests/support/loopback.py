"""A real HTTP server on 127.0.0.1 for network tests: routes, Range, injectable faults, tokens.

Tests talk to it with the real client code (no patching). Typical use::

    from tests.support.loopback import Fault, LoopbackServer

    with LoopbackServer() as srv:
        srv.add_bytes("/file.bin", data, faults=[Fault(status=429, retry_after=1),
                                                 Fault(drop_after=1000)])
        download(srv.url + "/file.bin", dest)           # 429, then a dropped body, then OK
        assert srv.hits("/file.bin") == 3
        assert srv.requests[-1].headers["Range"] == "bytes=1000-"

or as a pytest fixture: ``loopback = pytest.fixture(loopback_fixture)`` (function scope).

Routes: :meth:`~LoopbackServer.add_bytes` (with Range, optional extra ``headers``),
:meth:`~LoopbackServer.add_file`, :meth:`~LoopbackServer.add_json`,
:meth:`~LoopbackServer.add_redirect` and :meth:`~LoopbackServer.add_handler` (any function of
the :class:`Request` returning a :class:`Response`). Routes match on the path (without query)
and optionally on a subset of query parameters (``query={"$skip": "10"}``; the route with most
matching parameters wins). ``faults`` is a list consumed one per request to that route (``None``
= answer normally this time); when it is used up the route answers normally. Every request is
recorded in :attr:`LoopbackServer.requests` (``hits(path)``, ``requests_to(path)``).

Faults (:class:`Fault`): an error ``status`` (with ``retry_after``), an ``html`` error page, a
replacement ``body`` (malformed JSON, an empty page), ``drop_after`` N body bytes (the
connection closes with the advertised Content-Length unmet), ``corrupt`` bytes, ``delay``
seconds before answering, ``ignore_range`` (answer 200 with everything to a Range request).

Tokens: :meth:`LoopbackServer.add_token_endpoint` serves an OIDC-like endpoint (password and
refresh_token grants, form-encoded) issuing opaque tokens valid ``lifetime`` seconds; routes
added with ``auth=True`` answer 401 unless given a valid ``Authorization: Bearer`` token.
:meth:`expire_tokens` expires every issued access token at once.

The server is bounded: it stops by itself after ``max_lifetime`` seconds, each connection times
out after ``socket_timeout`` seconds, and handler threads are daemons.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Service temporarily unavailable</h1><p>Please try again later.</p></body></html>"
)


@dataclass
class Fault:
    """What goes wrong with one request (fields combine; unset ones do nothing)."""

    status: int | None = None  # answer this status (with a short text or HTML body)
    retry_after: int | float | str | None = None  # Retry-After header value
    html: bool = False  # body is an HTML error page (Content-Type text/html)
    body: bytes | None = None  # replace the body (e.g. malformed JSON)
    content_type: str | None = None  # override the Content-Type
    drop_after: int | None = None  # close the connection after this many body bytes
    corrupt: bool = False  # flip the bits of the body's first bytes (same length)
    delay: float = 0.0  # seconds to sleep before answering
    ignore_range: bool = False  # answer 200 + full body even to a Range request


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    time: float

    @property
    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    """What a handler returns: status, body and headers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    handler: Handler
    faults: list[Fault | None]
    auth: bool
    ranges: bool
    hits: int = 0


class LoopbackServer:
    """A threaded HTTP/1.1 server on a random 127.0.0.1 port; a context manager."""

    def __init__(self, max_lifetime: float = 300.0, socket_timeout: float = 30.0) -> None:
        self.routes: list[_Route] = []
        self.requests: list[Request] = []
        self.max_lifetime = max_lifetime
        self.socket_timeout = socket_timeout
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self._refresh: dict[str, float] = {}
        self._serial = 0
        self.tokens_issued = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        server = self

        class _H(_RequestHandler):
            owner = server
            timeout = self.socket_timeout

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ---- routes ------------------------------------------------------------------------------
    def add_handler(
        self,
        path: str,
        handler: Handler,
        *,
        query: dict[str, str] | None = None,
        faults: Iterable[Fault | None] = (),
        auth: bool = False,
        ranges: bool = False,
    ) -> None:
        """Serve ``handler(request)`` at ``path``; ``ranges`` applies Range to its body."""
        with self._lock:
            self.routes.append(_Route(path, dict(query or {}), handler, list(faults), auth, ranges))

    def add_bytes(
        self,
        path: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> None:
        """Serve fixed bytes with Range support (``headers``: e.g. Content-Disposition)."""
        kw.setdefault("ranges", True)
        extra = dict(headers or {})
        self.add_handler(path, lambda _r: Response(200, data, content_type, dict(extra)), **kw)

    def add_redirect(self, path: str, location: str, status: int = 302, **kw: Any) -> None:
        """Answer ``status`` with ``Location: location`` (absolute, or a path on this server)."""

        def handler(_r: Request) -> Response:
            target = location if "://" in location else self.url + location
            return Response(status, b"", "text/plain", {"Location": target})

        self.add_handler(path, handler, **kw)

    def add_file(self, path: str, file: str | Path, **kw: Any) -> None:
        """Serve a file's bytes (read once now) with Range support."""
        self.add_bytes(path, Path(file).read_bytes(), **kw)

    def add_json(self, path: str, obj: Any, status: int = 200, **kw: Any) -> None:
        """Serve ``obj`` as JSON."""
        body = json.dumps(obj).encode()
        self.add_handler(path, lambda _r: Response(status, body, "application/json"), **kw)

    def add_faults(self, path: str, faults: Iterable[Fault | None]) -> None:
        """Queue more faults on the (first) route registered at ``path``."""
        with self._lock:
            next(r for r in self.routes if r.path == path).faults.extend(faults)

    def hits(self, path: str) -> int:
        """How many requests reached ``path`` (any query)."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # ---- tokens ------------------------------------------------------------------------------
    def add_token_endpoint(
        self,
        path: str = "/token",
        *,
        username: str = "user",
        password: str = "secret",
        lifetime: float = 600.0,
        refresh_lifetime: float = 3600.0,
        faults: Iterable[Fault | None] = (),
    ) -> None:
        """An OIDC-like token endpoint: ``grant_type=password`` or ``refresh_token``."""

        def handler(req: Request) -> Response:
            form = req.form
            now = time.monotonic()
            grant = form.get("grant_type")
            with self._lock:
                if grant == "password":
                    ok = form.get("username") == username and form.get("password") == password
                elif grant == "refresh_token":
                    ok = self._refresh.get(form.get("refresh_token", ""), 0) > now
                else:
                    ok = False
                if not ok:
                    body = {"error": "invalid_grant", "error_description": "Invalid credentials"}
                    return Response(401, json.dumps(body).encode(), "application/json")
                self._serial += 1
                self.tokens_issued += 1
                access, refresh = f"acc-{self._serial}", f"ref-{self._serial}"
                self._tokens[access] = now + lifetime
                self._refresh[refresh] = now + refresh_lifetime
            body = {
                "access_token": access,
                "expires_in": lifetime,
                "refresh_token": refresh,
                "refresh_expires_in": refresh_lifetime,
                "token_type": "Bearer",
            }
            return Response(200, json.dumps(body).encode(), "application/json")

        self.add_handler(path, handler, faults=faults)

    def expire_tokens(self) -> None:
        """Make every access token issued so far invalid (refresh tokens stay valid)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def _token_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self._lock:
            return self._tokens.get(header[7:], 0.0) > time.monotonic()

    # ---- dispatch ----------------------------------------------------------------------------
    def _match(self, req: Request) -> tuple[_Route | None, Fault | None]:
        with self._lock:
            self.requests.append(req)
            best, score = None, -1
            for r in self.routes:
                if r.path != req.path:
                    continue
                if all(req.query.get(k) == v for k, v in r.query.items()) and len(r.query) > score:
                    best, score = r, len(r.query)
            if best is None:
                return None, None
            best.hits += 1
            fault = best.faults.pop(0) if best.faults else None
            return best, fault


def loopback_fixture():
    """Generator for a pytest fixture: ``loopback = pytest.fixture(loopback_fixture)``."""
    with LoopbackServer() as srv:
        yield srv


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        req = Request(method, parsed.path, query, dict(self.headers.items()), body, time.time())
        route, fault = self.owner._match(req)
        fault = fault or Fault()
        if fault.delay:
            time.sleep(fault.delay)
        if route is None:
            return self._send(Response(404, b"no such route", "text/plain"), method)
        if fault.status is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            if fault.html:
                resp = Response(fault.status, HTML_ERROR, "text/html; charset=utf-8", headers)
            else:
                text = fault.body if fault.body is not None else f"error {fault.status}".encode()
                resp = Response(fault.status, text, fault.content_type or "text/plain", headers)
            return self._send(resp, method)
        if route.auth and not self.owner._token_ok(self.headers.get("Authorization")):
            msg = b'{"detail": "Expired signature or invalid token"}'
            return self._send(Response(401, msg, "application/json"), method)
        resp = route.handler(req)
        if fault.html:
            resp = Response(200, HTML_ERROR, "text/html; charset=utf-8")
        if fault.body is not None:
            resp = Response(resp.status, fault.body, resp.content_type, resp.headers)
        if fault.content_type:
            resp.content_type = fault.content_type
        if fault.corrupt and resp.body:
            k = min(64, len(resp.body))
            resp = Response(
                resp.status,
                bytes(b ^ 0xFF for b in resp.body[:k]) + resp.body[k:],
                resp.content_type,
                resp.headers,
            )
        if route.ranges and resp.status == 200:
            resp.headers.setdefault("Accept-Ranges", "bytes")
            rng = self.headers.get("Range")
            if rng and not fault.ignore_range:
                resp = _apply_range(resp, rng)
        self._send(resp, method, drop_after=fault.drop_after)

    def _send(self, resp: Response, method: str, drop_after: int | None = None) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if drop_after is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if method == "HEAD":
            return
        try:
            if drop_after is not None:
                self.wfile.write(resp.body[:drop_after])
                self.wfile.flush()
                self.close_connection = True
                return
            view = memoryview(resp.body)
            for i in range(0, len(view), 1 << 20):
                self.wfile.write(view[i : i + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _apply_range(resp: Response, header: str) -> Response:
    """Single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` ranges; anything else → 416."""
    size = len(resp.body)
    try:
        unit, spec = header.split("=", 1)
        if unit.strip() != "bytes" or "," in spec:
            raise ValueError
        a, b = spec.strip().split("-", 1)
        if a == "":
            start, end = max(0, size - int(b)), size - 1
        else:
            start = int(a)
            end = min(int(b), size - 1) if b else size - 1
        if start >= size or start > end:
            raise ValueError
    except ValueError:
        return Response(
            416, b"range not satisfiable", "text/plain", {"Content-Range": f"bytes */{size}"}
        )
    headers = dict(resp.headers, **{"Content-Range": f"bytes {start}-{end}/{size}"})
    return Response(206, resp.body[start : end + 1], resp.content_type, headers)
