"""common/http.py against a real loopback server: resume, retries, checksums, auth, JSON errors."""

from __future__ import annotations

import hashlib
import logging
import time

import blake3
import pytest

from polarscan.common.errors import ProcessingError, UsageError
from polarscan.common.http import (
    MAX_SLEEP,
    AuthError,
    ChecksumError,
    backoff_delay,
    download,
    get_json,
    parse_retry_after,
)
from tests.support.loopback import Fault

DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes
MD5 = ("MD5", hashlib.md5(DATA).hexdigest())
B3 = ("BLAKE3", blake3.blake3(DATA).hexdigest())


def _no_leftovers(dest):
    return not dest.exists() and not dest.with_name(dest.name + ".part").exists()


@pytest.mark.parametrize(
    "checksum", [MD5, B3, ("SHA256", hashlib.sha256(DATA).hexdigest()), None], ids=str
)
def test_plain_download_verified(srv, tmp_path, checksum):
    srv.add_bytes("/f.zip", DATA)
    seen = []
    out = download(
        srv.url + "/f.zip", tmp_path / "f.zip", checksum=checksum, expected_size=len(DATA),
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert out.read_bytes() == DATA
    assert not (tmp_path / "f.zip.part").exists()
    assert seen[-1] == (len(DATA), len(DATA))


def test_existing_complete_file_is_not_refetched(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA)
    dest = tmp_path / "f.zip"
    download(srv.url + "/f.zip", dest, checksum=MD5, expected_size=len(DATA))
    download(srv.url + "/f.zip", dest, checksum=MD5, expected_size=len(DATA))
    assert srv.hits("/f.zip") == 1


def test_429_honours_retry_after(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA, faults=[Fault(status=429, retry_after=1)])
    t0 = time.monotonic()
    download(srv.url + "/f.zip", tmp_path / "f.zip", checksum=B3, backoff=0.01)
    assert time.monotonic() - t0 >= 0.95
    assert srv.hits("/f.zip") == 2
    assert (tmp_path / "f.zip").read_bytes() == DATA


def test_5xx_and_html_error_pages_are_retried(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA, faults=[Fault(status=500), Fault(status=503, html=True)])
    download(srv.url + "/f.zip", tmp_path / "f.zip", checksum=MD5, backoff=0.01)
    assert srv.hits("/f.zip") == 3
    assert (tmp_path / "f.zip").read_bytes() == DATA


def test_dropped_connection_resumes_with_range(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA, faults=[Fault(drop_after=300_000), Fault(drop_after=100)])
    download(srv.url + "/f.zip", tmp_path / "f.zip", checksum=B3, expected_size=len(DATA),
             backoff=0.01)  # fmt: skip
    reqs = srv.requests_to("/f.zip")
    assert [r.headers.get("Range") for r in reqs] == [None, "bytes=300000-", "bytes=300100-"]
    assert (tmp_path / "f.zip").read_bytes() == DATA


def test_server_ignoring_range_restarts_cleanly(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA, faults=[Fault(drop_after=5000), Fault(ignore_range=True)])
    download(srv.url + "/f.zip", tmp_path / "f.zip", checksum=MD5, backoff=0.01)
    assert srv.requests_to("/f.zip")[1].headers.get("Range") == "bytes=5000-"
    assert (tmp_path / "f.zip").read_bytes() == DATA


def test_wrong_checksum_deletes_part_and_rerun_succeeds(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA, faults=[Fault(corrupt=True)])
    dest = tmp_path / "f.zip"
    with pytest.raises(ChecksumError, match="checksum mismatch") as ei:
        download(srv.url + "/f.zip", dest, checksum=B3, backoff=0.01)
    assert ei.value.exit_code == 1
    assert _no_leftovers(dest)
    download(srv.url + "/f.zip", dest, checksum=B3)
    assert dest.read_bytes() == DATA


def test_resume_rehashes_existing_part(srv, tmp_path):
    """A part left by an earlier run is hashed too: a corrupt prefix is caught."""
    srv.add_bytes("/f.zip", DATA)
    dest = tmp_path / "f.zip"
    dest.with_name("f.zip.part").write_bytes(b"X" * 1000)  # wrong prefix from "yesterday"
    with pytest.raises(ChecksumError):
        download(srv.url + "/f.zip", dest, checksum=MD5)
    assert srv.requests_to("/f.zip")[0].headers.get("Range") == "bytes=1000-"
    assert _no_leftovers(dest)
    dest.with_name("f.zip.part").write_bytes(DATA[:1000])  # a good prefix resumes
    download(srv.url + "/f.zip", dest, checksum=MD5)
    assert dest.read_bytes() == DATA


def test_part_larger_than_expected_restarts(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA)
    dest = tmp_path / "f.zip"
    dest.with_name("f.zip.part").write_bytes(b"Y" * (len(DATA) + 10))
    download(srv.url + "/f.zip", dest, checksum=MD5, expected_size=len(DATA))
    assert srv.requests_to("/f.zip")[0].headers.get("Range") is None
    assert dest.read_bytes() == DATA


def test_retries_exhausted_keeps_part_and_rerun_finishes(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA, faults=[Fault(drop_after=1000), Fault(status=500)])
    dest = tmp_path / "f.zip"
    with pytest.raises(ProcessingError, match="failed after 2 attempts") as ei:
        download(srv.url + "/f.zip", dest, checksum=MD5, retries=1, backoff=0.01)
    assert not isinstance(ei.value, UsageError)
    assert not dest.exists()
    assert dest.with_name("f.zip.part").stat().st_size == 1000  # kept, not named as complete
    download(srv.url + "/f.zip", dest, checksum=MD5, retries=1, backoff=0.01)
    assert srv.requests_to("/f.zip")[-1].headers.get("Range") == "bytes=1000-"
    assert dest.read_bytes() == DATA


def test_timeout_is_retried(srv, tmp_path):
    srv.add_bytes("/f.zip", DATA, faults=[Fault(delay=1.5)])
    download(srv.url + "/f.zip", tmp_path / "f.zip", checksum=MD5, timeout=0.5, backoff=0.01)
    assert (tmp_path / "f.zip").read_bytes() == DATA


def test_404_fails_at_once(srv, tmp_path):
    with pytest.raises(ProcessingError, match="HTTP 404"):
        download(srv.url + "/missing", tmp_path / "m.zip", backoff=0.01)
    assert srv.hits("/missing") == 1
    assert _no_leftovers(tmp_path / "m.zip")


def test_401_is_an_auth_error_and_secret_is_never_logged(srv, tmp_path, caplog):
    srv.add_token_endpoint()
    srv.add_bytes("/f.zip", DATA, auth=True)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as ei:
        download(srv.url + "/f.zip", tmp_path / "f.zip",
                 headers={"Authorization": "Bearer SUPERSECRET"})  # fmt: skip
    assert ei.value.exit_code == 2 and "credentials" in str(ei.value)
    assert "SUPERSECRET" not in caplog.text and "SUPERSECRET" not in str(ei.value)
    assert _no_leftovers(tmp_path / "f.zip")


class _Tokens:
    """A headers callable with invalidate(), like a token manager."""

    def __init__(self, srv):
        self.srv, self.token, self.calls = srv, None, 0

    def __call__(self):
        self.calls += 1
        if self.token is None:
            self.token = self._fetch()
        return {"Authorization": f"Bearer {self.token}"}

    def _fetch(self):
        import requests

        r = requests.post(self.srv.url + "/token",
                          data={"grant_type": "password", "username": "user", "password": "secret"})  # fmt: skip
        return r.json()["access_token"]

    def invalidate(self):
        self.token = None


def test_expired_token_is_renewed_once_per_download(srv, tmp_path):
    srv.add_token_endpoint()
    srv.add_bytes("/f.zip", DATA, auth=True, faults=[None, Fault(drop_after=10)])
    tokens = _Tokens(srv)
    download(srv.url + "/f.zip", tmp_path / "a.zip", headers=tokens)
    srv.expire_tokens()
    download(srv.url + "/f.zip", tmp_path / "b.zip", headers=tokens, checksum=MD5, backoff=0.01)
    assert (tmp_path / "b.zip").read_bytes() == DATA
    assert srv.tokens_issued == 2


def test_get_json_ok_and_retry(srv):
    srv.add_json("/api", {"a": 1}, faults=[Fault(status=502, html=True)])
    assert get_json(srv.url + "/api", {"x": "1"}, backoff=0.01) == {"a": 1}
    assert srv.requests_to("/api")[-1].query == {"x": "1"}


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        (Fault(html=True), r"HTML page \(HTTP 200\)"),
        (Fault(body=b'{"value": [{"Id": '), r"malformed JSON \(HTTP 200"),
        (Fault(body=b""), r"malformed JSON"),
        (Fault(status=400, body=b'{"detail": "Invalid filter"}'), r"HTTP 400: .*Invalid filter"),
    ],
    ids=["html", "truncated", "empty", "400"],
)
def test_get_json_bad_answers_name_url_and_status(srv, fault, match):
    srv.add_json("/odata/v1/Products", {"value": []}, faults=[fault])
    with pytest.raises(ProcessingError, match=match) as ei:
        get_json(srv.url + "/odata/v1/Products", {"$top": "5"}, retries=0)
    assert srv.url + "/odata/v1/Products" in str(ei.value)


def test_get_json_gives_up_after_retries(srv):
    srv.add_json("/api", {}, faults=[Fault(status=503)] * 3)
    with pytest.raises(ProcessingError, match=r"failed after 3 attempts \(HTTP 503\)"):
        get_json(srv.url + "/api", retries=2, backoff=0.01)


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_exponential_jittered_honours_retry_after_and_capped():
    delays = [backoff_delay(3, 1.0) for _ in range(200)]
    assert all(4.0 <= d <= 12.0 for d in delays)  # 1 s * 2**3, jittered 0.5-1.5x
    assert len(set(delays)) > 100  # jitter: cron runs hitting a 429 together spread out
    assert min(backoff_delay(0, 0.01, retry_after=5.0) for _ in range(50)) == 5.0
    assert backoff_delay(20, 1.0) == MAX_SLEEP
    assert backoff_delay(0, 0.01, retry_after=10_000.0) == MAX_SLEEP


def test_loopback_redirect_headers_and_head(srv, tmp_path):
    import requests

    srv.add_bytes(
        "/data.zip", DATA, headers={"Content-Disposition": 'attachment; filename="x.zip"'}
    )
    srv.add_redirect("/api/access/datafile/1", "/data.zip")
    out = download(srv.url + "/api/access/datafile/1", tmp_path / "x.zip", checksum=MD5)
    assert out.read_bytes() == DATA
    head = requests.head(srv.url + "/data.zip", timeout=5)
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Content-Disposition"] == 'attachment; filename="x.zip"'
    assert requests.get(srv.url + "/nowhere", timeout=5).status_code == 404
    assert (
        requests.get(srv.url + "/data.zip", headers={"Range": "bytes=-4"}, timeout=5).content
        == b"tail"
    )
    assert requests.get(srv.url + "/data.zip", headers={"Range": f"bytes={len(DATA)}-"},
                        timeout=5).status_code == 416  # fmt: skip


def test_bytes_received_count_into_the_meter(srv, tmp_path):
    """What a provider's quota counts: every body byte received, once per download; a run
    that gives up mid-way spent what it got, the resume spends only the rest, a file already
    there spends nothing, and a server ignoring Range is paid twice."""
    from polarscan.common.meter import metered

    dest = tmp_path / "f.zip"
    srv.add_bytes("/f.zip", DATA, faults=[Fault(drop_after=300_000), Fault(status=500)])
    with metered() as first, pytest.raises(ProcessingError):
        download(srv.url + "/f.zip", dest, checksum=MD5, retries=1, backoff=0.01)
    with metered() as resumed:
        download(srv.url + "/f.zip", dest, checksum=MD5, expected_size=len(DATA), backoff=0.01)
    with metered() as again:
        download(srv.url + "/f.zip", dest, checksum=MD5, expected_size=len(DATA))
    assert (first.measured, resumed.measured, again.measured) == (300_000, len(DATA) - 300_000, 0)
    assert first.estimated == resumed.estimated == 0
    srv.add_bytes("/g.zip", DATA, faults=[Fault(drop_after=5000), Fault(ignore_range=True)])
    with metered() as twice:
        download(srv.url + "/g.zip", tmp_path / "g.zip", checksum=MD5, backoff=0.01)
    assert twice.measured == 5000 + len(DATA)
    download(srv.url + "/g.zip", tmp_path / "h.zip", checksum=MD5)  # no scope: nothing counted
