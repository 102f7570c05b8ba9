"""HTTP for big products and small JSON answers: resumable, verified, polite downloads.

Providers throttle (429), fail (5xx), drop connections and expire tokens; a nightly job must
survive all of that without ever leaving a half-downloaded file under its final name. So:

- bytes stream into ``<dest>.part`` and are renamed onto ``dest`` only after the size and
  checksum are verified (a file under its final name is complete by construction);
- a retry resumes the part with an HTTP ``Range`` request (a server that ignores Range and
  answers 200 makes us start over); the existing part is re-hashed so the checksum covers it;
- 429/5xx/timeouts/dropped connections are retried with exponential backoff and jitter,
  honouring ``Retry-After``; 401/403 raise :class:`AuthError` (a usage problem: credentials);
- request headers may be a callable, called on every attempt, so a token can be refreshed
  between attempts. Headers are never logged;
- every body byte received counts into the current byte meter
  (:func:`polarscan.common.meter.metered`): a provider's monthly quota counts them, whether the
  file is kept or not (a resume counts only what it fetched).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import requests
import urllib3

from polarscan.common.errors import ProcessingError, UsageError
from polarscan.common.meter import count_fetched

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_SLEEP = 300.0  # never wait longer than this between attempts, whatever Retry-After says
CHUNK = 1 << 20

Headers = Callable[[], dict] | dict | None
Progress = Callable[[int, int | None], None] | bool


class AuthError(UsageError):
    """The provider refused our credentials (401/403): the user must fix them (exit 2)."""


class ChecksumError(ProcessingError):
    """The downloaded bytes do not match the advertised checksum; the part file was deleted."""


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def new_hasher(algorithm: str) -> Any:
    """An incremental hasher for ``MD5``, ``SHA256``, ``SHA1`` or ``BLAKE3`` (case-insensitive)."""
    algo = algorithm.upper().replace("-", "")
    if algo == "BLAKE3":
        import blake3

        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    if algo in {"MD5", "SHA256", "SHA1", "SHA512"}:
        return hashlib.new(algo.lower())
    raise UsageError(
        f"unsupported checksum algorithm {algorithm!r}", "use one of MD5, SHA256, SHA1, BLAKE3"
    )


def hash_file(path: Path, algorithm: str, hasher: Any = None) -> Any:
    """Feed the bytes of ``path`` into ``hasher`` (a new one for ``algorithm`` if None)."""
    hasher = hasher or new_hasher(algorithm)
    with open(path, "rb") as f:
        while block := f.read(8 * CHUNK):
            hasher.update(block)
    return hasher


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, backoff: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (0.5–1.5×), at least ``Retry-After``, capped."""
    delay = backoff * (2**attempt) * random.uniform(0.5, 1.5)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_SLEEP)


def _headers(headers: Headers) -> dict:
    if headers is None:
        return {}
    return dict(headers() if callable(headers) else headers)


def _auth_error(url: str, status: int) -> AuthError:
    return AuthError(
        f"{_safe_url(url)} refused the credentials (HTTP {status})",
        "check the username/password (environment variables or ~/.netrc entry) and that the "
        "account may download this product",
    )


def _safe_url(url: str) -> str:
    """The URL without its query string (query strings can carry signatures or tokens)."""
    return url.split("?", 1)[0]


def _progress_bar(progress: Progress, total: int | None, desc: str | None, initial: int):
    if callable(progress):
        return progress, None
    if not progress:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=desc, leave=False)
    last = [initial]

    def update(done: int, _total: int | None) -> None:
        bar.update(done - last[0])
        last[0] = done

    return update, bar


def download(
    url: str,
    dest: str | Path,
    *,
    headers: Headers = None,
    expected_size: int | None = None,
    checksum: tuple[str, str] | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: Progress = False,
    desc: str | None = None,
    session: requests.Session | None = None,
    chunk_size: int = CHUNK,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``; verified, resumable, atomic.

    ``checksum`` is ``(algorithm, hexdigest)``; ``headers`` a dict or a callable returning one
    (called per attempt, e.g. for a fresh bearer token; if it also has an ``invalidate()``
    method, a 401 invalidates it and the attempt is retried once with new headers). ``retries``
    counts attempts after the first. ``progress`` is True for a tqdm bar or a callable
    ``(bytes_done, total)``. An existing ``dest`` is trusted (only verified files are ever
    renamed there) and returned at once, unless its size differs from ``expected_size``.
    """
    dest = Path(dest)
    if dest.is_file() and (expected_size is None or dest.stat().st_size == expected_size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    own_session = session is None
    session = session or requests.Session()
    reauthed = False
    attempt = 0
    try:
        while True:
            try:
                _attempt(
                    session, url, part, headers, expected_size, checksum, timeout, chunk_size,
                    progress, desc,
                )  # fmt: skip
                os.replace(part, dest)
                return dest
            except _Unauthorized as err:
                invalidate = getattr(headers, "invalidate", None)
                if callable(invalidate) and not reauthed:
                    log.info("%s: credentials expired or refused, renewing", _safe_url(url))
                    invalidate()
                    reauthed = True
                    continue
                raise _auth_error(url, err.status) from None
            except _Retry as err:
                reauthed = False  # a later 401 (a token expiring mid-way) may renew again
                if attempt >= retries:
                    raise ProcessingError(
                        f"download of {_safe_url(url)} failed after {attempt + 1} attempts "
                        f"({err.reason})",
                        "rerun later: the partial file is kept and the download resumes",
                    ) from None
                delay = backoff_delay(attempt, backoff, err.retry_after)
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s",
                    _safe_url(url), err.reason, attempt + 1, retries, delay,
                )  # fmt: skip
                time.sleep(delay)
                attempt += 1
    finally:
        if own_session:
            session.close()


class _Unauthorized(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _start_state(part: Path, expected_size: int | None, checksum: tuple[str, str] | None):
    """(offset, hasher) to resume from: the existing part's size, its bytes already hashed."""
    offset = part.stat().st_size if part.is_file() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    hasher = new_hasher(checksum[0]) if checksum else None
    if offset and checksum and hasher is not None:
        hash_file(part, checksum[0], hasher)
    return offset, hasher


def _attempt(
    session: requests.Session,
    url: str,
    part: Path,
    headers: Headers,
    expected_size: int | None,
    checksum: tuple[str, str] | None,
    timeout: float,
    chunk_size: int,
    progress: Progress,
    desc: str | None,
) -> None:
    """One request; leaves a complete, verified ``part`` or raises."""
    offset, hasher = _start_state(part, expected_size, checksum)
    if expected_size is not None and offset == expected_size and offset > 0:
        _verify(part, offset, expected_size, hasher, checksum, url)
        return
    req_headers = _headers(headers)
    if offset:
        req_headers["Range"] = f"bytes={offset}-"
    try:
        resp = session.get(url, headers=req_headers, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as err:
        raise _Retry(f"{type(err).__name__}") from None
    with resp:
        status = resp.status_code
        if status in (401, 403):
            raise _Unauthorized(status)
        if status in RETRY_STATUS:
            raise _Retry(f"HTTP {status}", parse_retry_after(resp.headers.get("Retry-After")))
        if status == 416:  # our part is not a prefix the server can continue: start over
            part.unlink(missing_ok=True)
            raise _Retry("HTTP 416 (range not satisfiable), restarting", 0.0)
        if status not in (200, 206):
            raise ProcessingError(
                f"{_safe_url(url)} answered HTTP {status}",
                "check the product id/URL; it may have been removed or be offline",
            )
        mode = "ab"
        if status == 206:
            start = _content_range_start(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Retry(f"server resumed at byte {start}, not {offset}; restarting", 0.0)
        elif offset:  # 200 to a Range request: the server sends everything again
            log.info("%s ignores Range; restarting from byte 0", _safe_url(url))
            offset, mode = 0, "wb"
            hasher = new_hasher(checksum[0]) if checksum else None
        length = resp.headers.get("Content-Length")
        total = expected_size or (offset + int(length) if length and length.isdigit() else None)
        update, bar = _progress_bar(progress, total, desc or part.name, offset)
        done = offset
        side = _SideHasher(hasher) if hasher is not None else None
        try:
            with open(part, mode) as f:
                # read1: what arrived so far, so a dropped connection keeps its bytes
                while block := resp.raw.read1(chunk_size, decode_content=True):
                    count_fetched(len(block))
                    f.write(block)
                    if side is not None:
                        side.update(block)
                    done += len(block)
                    if update:
                        update(done, total)
                f.flush()
                os.fsync(f.fileno())
        except (urllib3.exceptions.HTTPError, requests.RequestException, ConnectionError) as err:
            raise _Retry(f"connection dropped after {done} bytes ({type(err).__name__})") from None
        finally:
            if side is not None:
                side.finish()
            if bar is not None:
                bar.close()
        if length and length.isdigit() and done - offset < int(length):
            raise _Retry(f"connection dropped after {done} bytes")
    _verify(part, done, expected_size, hasher, checksum, url)


class _SideHasher:
    """Hashes in a helper thread so hashing overlaps receiving (hashlib and blake3 release the
    GIL on large buffers): a checksum then costs little throughput on a multi-core machine."""

    def __init__(self, hasher: Any) -> None:
        self.hasher = hasher
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=32)
        self._thread = threading.Thread(target=self._run, name="hasher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            self.hasher.update(block)

    def update(self, block: bytes) -> None:
        self._queue.put(block)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()


def _verify(part, size, expected_size, hasher, checksum, url) -> None:
    if expected_size is not None and size != expected_size:
        if size < expected_size:
            raise _Retry(f"got {size} of {expected_size} bytes")
        part.unlink(missing_ok=True)
        raise ProcessingError(
            f"{_safe_url(url)} sent {size} bytes, {expected_size} expected; deleted the part",
            "rerun; if it persists the catalogue size is wrong or the product changed",
        )
    if checksum and hasher is not None:
        got = hasher.hexdigest()
        if got.lower() != checksum[1].lower():
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{checksum[0]} checksum mismatch for {_safe_url(url)} "
                f"(got {got}, expected {checksum[1]}); deleted the partial file",
                "rerun to download it again; if it persists the provider's copy is corrupt",
            )


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def request_json(
    method: str,
    url: str,
    *,
    params: dict | None = None,
    data: dict | None = None,
    headers: Headers = None,
    session: requests.Session | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> Any:
    """Send a request and return the decoded JSON body.

    Retries 429/5xx/connection errors like :func:`download`. Raises :class:`AuthError` on
    401/403 and :class:`ProcessingError` naming the URL and status when the provider answers an
    error status, an HTML page or anything that is not JSON (never a parser traceback).
    """
    own = session is None
    session = session or requests.Session()
    try:
        for attempt in range(retries + 1):
            try:
                resp = session.request(
                    method, url, params=params, data=data, headers=_headers(headers),
                    timeout=timeout,
                )  # fmt: skip
            except (requests.ConnectionError, requests.Timeout) as err:
                reason, wait = type(err).__name__, None
            else:
                with resp:
                    status = resp.status_code
                    if status in RETRY_STATUS:
                        reason = f"HTTP {status}"
                        wait = parse_retry_after(resp.headers.get("Retry-After"))
                    else:
                        return _decode_json(resp, url)
            if attempt >= retries:
                raise ProcessingError(
                    f"{_safe_url(url)} failed after {attempt + 1} attempts ({reason})",
                    "the provider may be down or throttling; rerun later",
                )
            delay = backoff_delay(attempt, backoff, wait)
            log.warning("%s: %s; retry in %.1f s", _safe_url(url), reason, delay)
            time.sleep(delay)
    finally:
        if own:
            session.close()
    raise AssertionError("unreachable")  # pragma: no cover


def get_json(
    url: str,
    params: dict | None = None,
    session: requests.Session | None = None,
    **kwargs: Any,
) -> Any:
    """``GET`` ``url`` and return its JSON (see :func:`request_json` for errors and retries)."""
    return request_json("GET", url, params=params, session=session, **kwargs)


def _decode_json(resp: requests.Response, url: str) -> Any:
    status = resp.status_code
    shown = _safe_url(resp.url or url)
    if status in (401, 403):
        raise _auth_error(shown, status)
    ctype = resp.headers.get("Content-Type", "").lower()
    text = resp.text
    snippet = _snippet(text)
    if status >= 400:
        raise ProcessingError(
            f"{shown} answered HTTP {status}: {snippet}",
            "check the request (dates, area, filters) or retry later if the provider is down",
        )
    if "html" in ctype or text.lstrip()[:1] == "<":
        raise ProcessingError(
            f"{shown} answered an HTML page (HTTP {status}) instead of JSON: {snippet}",
            "the service may be in maintenance or the URL points at a web page; check the URL",
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ProcessingError(
            f"{shown} answered malformed JSON (HTTP {status}, {err.msg} at char {err.pos}): "
            f"{snippet}",
            "retry later; if it persists the provider changed its format",
        ) from None


def _snippet(text: str, n: int = 160) -> str:
    """A short, single-line, tag-stripped excerpt of a response body for error messages."""
    flat = re.sub(r"<[^>]+>", " ", text)
    flat = " ".join(flat.split())
    return (flat[:n] + "…") if len(flat) > n else (flat or "<empty body>")
