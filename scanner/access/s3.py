"""CDSE's eodata S3 endpoint: settings from the environment, a small signed-GET client, GDAL env.

Products are read in place: the XML (manifest, annotation, calibration, noise) with whole-object
GETs through :class:`S3Client` (AWS Signature V4 over ``requests``, path-style addressing as CDSE
requires), the measurement TIFFs by GDAL's ``/vsis3/`` with range requests
(:meth:`S3Settings.gdal_options`). No boto3.

Settings (:meth:`S3Settings.from_env`): ``CDSE_S3_ENDPOINT`` (default
``https://eodata.dataspace.copernicus.eu``; ``http://`` is accepted for a loopback server),
``CDSE_S3_ACCESS_KEY``/``CDSE_S3_SECRET_KEY`` (else ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY``), ``CDSE_S3_REGION`` (default ``default``), bucket ``eodata``. The
secret never appears in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from polarscan.common.errors import ProcessingError, UsageError
from polarscan.common.meter import current_meter

log = logging.getLogger(__name__)

ENDPOINT = "https://eodata.dataspace.copernicus.eu"
BUCKET = "eodata"
REGION = "default"
ENDPOINT_VAR, REGION_VAR = "CDSE_S3_ENDPOINT", "CDSE_S3_REGION"
KEY_VARS = (
    ("CDSE_S3_ACCESS_KEY", "CDSE_S3_SECRET_KEY"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
)
KEYS_FIX = (
    "set CDSE_S3_ACCESS_KEY and CDSE_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY) to keys made in CDSE's eodata S3 keys manager"
)
MAX_OBJECT_BYTES = 64 << 20  # an XML of a product is < 10 MB; refuse to buffer more
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
RETRY_STATUS = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach the eodata bucket (small, frozen, picklable; the secret is kept
    out of ``repr``)."""

    endpoint: str = ENDPOINT
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    bucket: str = BUCKET
    region: str = REGION

    @classmethod
    def from_env(cls, *, require_keys: bool = True) -> S3Settings:
        """From the environment; missing keys are a :class:`UsageError` naming the variables."""
        env = os.environ
        endpoint = (env.get(ENDPOINT_VAR) or ENDPOINT).strip().rstrip("/")
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("",):
            raise UsageError(
                f"{ENDPOINT_VAR} {endpoint[:120]!r} is not an http(s)://host[:port] URL",
                f"set {ENDPOINT_VAR} to e.g. {ENDPOINT}",
                key="access",
            )
        keys = next(((env.get(a), env.get(s)) for a, s in KEY_VARS if env.get(a) and env.get(s)),
                    ("", ""))  # fmt: skip
        if require_keys and not all(keys):
            raise UsageError("reading CDSE products over S3 needs S3 keys, and none are set",
                             KEYS_FIX, key="access")  # fmt: skip
        return cls(endpoint, keys[0] or "", keys[1] or "", BUCKET,
                   (env.get(REGION_VAR) or REGION).strip())  # fmt: skip

    @property
    def host(self) -> str:
        """``host[:port]`` of the endpoint."""
        return urllib.parse.urlsplit(self.endpoint).netloc

    @property
    def https(self) -> bool:
        return self.endpoint.startswith("https://")

    def vsi_path(self, key: str) -> str:
        """GDAL's name for an object: ``/vsis3/<bucket>/<key>``."""
        return f"/vsis3/{self.bucket}/{key}"

    def credential_options(self) -> dict[str, str]:
        """GDAL's options for the keys (rasterio takes them only through a session:
        :meth:`gdal_env`)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_NO_SIGN_REQUEST": "NO"}  # fmt: skip

    def gdal_env(self, **extra: Any):
        """A ``rasterio.Env`` that reaches ``/vsis3/`` on this endpoint with these keys."""
        import rasterio

        return rasterio.Env(session=_KeySession(self), **self.gdal_options(), **extra)

    def gdal_options(self) -> dict[str, str]:
        """GDAL config options for ``/vsis3/`` on this endpoint, keys excepted."""
        return {
            "AWS_S3_ENDPOINT": self.host,
            "AWS_HTTPS": "YES" if self.https else "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_REGION": self.region,
            # open a TIFF without listing its folder; merge the range reads of a window
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
            "GDAL_HTTP_MULTIPLEX": "YES",
            # a throttling 503 or a dropped connection is retried, a few times (the environment
            # may say otherwise: these options are set here, so GDAL would not see it)
            "GDAL_HTTP_MAX_RETRY": os.environ.get("GDAL_HTTP_MAX_RETRY") or "3",
            "GDAL_HTTP_RETRY_DELAY": os.environ.get("GDAL_HTTP_RETRY_DELAY") or "1",
            "GDAL_HTTP_TIMEOUT": "60",
            "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tiff,.tif",
        }


def _session_base() -> type:
    from rasterio.session import Session

    return Session


class _KeySession(_session_base()):  # type: ignore[misc]
    """A rasterio session handing GDAL the keys of :class:`S3Settings` (rasterio's own
    ``AWSSession`` needs boto3)."""

    def __init__(self, settings: S3Settings) -> None:
        self._settings = settings

    @classmethod
    def hascreds(cls, config: dict) -> bool:
        return "AWS_ACCESS_KEY_ID" in config and "AWS_SECRET_ACCESS_KEY" in config

    @property
    def credentials(self) -> dict[str, str]:
        return self._settings.credential_options()

    def get_credential_options(self) -> dict[str, str]:
        return self._settings.credential_options()

    def __repr__(self) -> str:
        return f"_KeySession({self._settings!r})"


# ---- AWS Signature V4 ----------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def quote_path(path: str) -> str:
    """URI-encode each segment of an object path as SigV4 wants it (``/`` kept)."""
    return urllib.parse.quote(path, safe="/-_.~")


def sign_v4(
    method: str,
    url: str,
    settings: S3Settings,
    *,
    payload_hash: str = EMPTY_SHA256,
    now: datetime | None = None,
    service: str = "s3",
) -> dict[str, str]:
    """The headers (``Authorization``, ``x-amz-date``, ``x-amz-content-sha256``, ``host``) that
    sign ``method url`` with the settings' keys (AWS Signature Version 4)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(query)
    )
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        method, parts.path or "/", canonical_query,
        "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_hash,
    ])  # fmt: skip
    scope = f"{day}/{settings.region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + settings.secret_key).encode(), day)
    for part in (settings.region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={settings.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return headers


# ---- the client ----------------------------------------------------------------------------------


def _s3_error(resp: requests.Response) -> str:
    """``Code: Message`` of an S3 XML error body, else the status line."""
    try:
        root = ET.fromstring(resp.content[:4096])
        code, msg = root.findtext("Code") or "", root.findtext("Message") or ""
        if code:
            return f"{code}: {msg}".strip(": ")
    except ET.ParseError:
        pass
    return f"HTTP {resp.status_code} {resp.reason or ''}".strip()


class S3Client:
    """Signed GETs of objects and listings in one bucket, with retries on throttling (429/503),
    server errors and dropped connections. Failures are :class:`ProcessingError` (a scene
    failure: the run records it and retries the scene next run) naming the object, never the
    keys."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        retries: int = 3,
        backoff: float = 1.0,
        timeout: float = 60.0,
        session: requests.Session | None = None,
        meter_key: str | None = None,
    ) -> None:
        self.settings = settings
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.session = session or requests.Session()
        self.bytes_read = 0  # body bytes received (benchmarks)
        # bytes fetched count against the provider's quota: into the meter of the scope the
        # client was made in (its GETs may run in other threads), under ``meter_key``
        self._meter = current_meter()
        self._meter_key = meter_key

    def url(self, key: str = "") -> str:
        return f"{self.settings.endpoint}/{quote_path(self.settings.bucket)}/{quote_path(key)}"

    def _get(self, url: str, what: str, headers: dict[str, str] | None = None) -> bytes:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                signed = sign_v4("GET", url, self.settings)
                with self.session.get(url, headers={**signed, **(headers or {})},
                                      timeout=self.timeout, stream=True) as resp:  # fmt: skip
                    if resp.status_code in RETRY_STATUS and not last:
                        log.warning("%s: %s, retrying", what, _s3_error(resp))
                        time.sleep(self.backoff * 2**attempt)
                        continue
                    if resp.status_code >= 400:
                        raise self._failure(resp, what)
                    size = int(resp.headers.get("Content-Length") or 0)
                    if size > MAX_OBJECT_BYTES:
                        raise ProcessingError(
                            f"{what} is {size} bytes, more than any product metadata file",
                            "check the product's S3Path; report it to CDSE if it persists",
                        )
                    body = resp.raw.read(MAX_OBJECT_BYTES + 1, decode_content=True)
                    if resp.headers.get("Content-Length") and len(body) != size:
                        raise requests.ConnectionError(f"got {len(body)} of {size} bytes")
                    self.bytes_read += len(body)
                    if self._meter is not None:
                        self._meter.add(len(body), key=self._meter_key)
                    return bytes(body)
            except (requests.ConnectionError, requests.Timeout, OSError) as err:
                if last:
                    raise ProcessingError(
                        f"reading {what} from {self.settings.endpoint} failed after "
                        f"{self.retries + 1} attempts ({type(err).__name__})",
                        "check the network and rerun; the scene is retried next run",
                    ) from None
                log.warning("%s: %s, retrying", what, type(err).__name__)
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failure(self, resp: requests.Response, what: str) -> ProcessingError:
        why = _s3_error(resp)
        if resp.status_code == 404:
            return ProcessingError(f"{what} is not in the eodata bucket ({why})",
                                   "rerun the search; the product may have moved")  # fmt: skip
        if resp.status_code in (401, 403):
            return ProcessingError(
                f"the S3 endpoint refused {what} ({why})",
                "check that the S3 keys are valid and not expired (CDSE's S3 keys manager)",
            )
        return ProcessingError(f"reading {what} failed ({why})",
                               "rerun later; the scene is retried next run")  # fmt: skip

    def get(self, key: str) -> bytes:
        """The whole object ``key``."""
        return self._get(self.url(key), f"s3://{self.settings.bucket}/{key}")

    def list(self, prefix: str) -> dict[str, int]:
        """``{key: size}`` of every object under ``prefix`` (ListObjectsV2, all pages)."""
        out: dict[str, int] = {}
        token: str | None = None
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        for _ in range(1000):
            query = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
            if token:
                query["continuation-token"] = token
            url = self.url() + "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
            body = self._get(url, f"the listing of s3://{self.settings.bucket}/{prefix}")
            try:
                root = ET.fromstring(body)
            except ET.ParseError as err:
                raise ProcessingError(f"the S3 listing of {prefix} is not XML ({err})",
                                      "rerun later") from None  # fmt: skip
            for item in root.iter(f"{ns}Contents"):
                key, size = item.findtext(f"{ns}Key"), item.findtext(f"{ns}Size")
                if key is not None:
                    out[key] = int(size or 0)
            token = root.findtext(f"{ns}NextContinuationToken")
            if root.findtext(f"{ns}IsTruncated") != "true" or not token:
                return out
        raise ProcessingError(f"the S3 listing of {prefix} does not end", "rerun later")
