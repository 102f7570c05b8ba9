"""Credentials and OIDC tokens for providers that need a login to download.

Credentials come from environment variables or ``~/.netrc`` (never from config files, never
logged). A :class:`TokenManager` is the ``headers`` callable that :func:`polarscan.common.http.download`
calls before every attempt: it hands out a cached bearer token, refreshes it shortly before it
expires (CDSE access tokens live 10 minutes, refresh tokens 60), and logs in again when the
refresh token is gone. One manager is shared by all threads of a process, so four parallel
downloads do not mean four logins.
"""

from __future__ import annotations

import logging
import netrc
import os
import shlex
import stat
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from polarscan.common.errors import PolarScanError, ProcessingError, UsageError
from polarscan.common.http import AuthError, request_json

log = logging.getLogger(__name__)

EXPIRY_MARGIN_S = 60.0  # renew this long before the provider says a token expires


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    origin: str  # "environment" or "~/.netrc (machine …)": where they came from, for messages

    def __repr__(self) -> str:  # never show the password, even in tracebacks
        return f"Credentials(username={self.username!r}, origin={self.origin!r})"


def netrc_path() -> Path:
    return Path(os.environ.get("NETRC") or Path.home() / ".netrc")


def find_credentials(
    user_var: str, password_var: str, machines: tuple[str, ...]
) -> Credentials | None:
    """Credentials from ``user_var``/``password_var``, else the first netrc ``machines`` entry."""
    user, password = os.environ.get(user_var), os.environ.get(password_var)
    if user and password:
        return Credentials(user, password, "environment")
    path = netrc_path()
    if not path.is_file():
        return None
    try:
        entries = netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError) as err:
        raise UsageError(
            f"cannot read {path} ({err})",
            "fix the file (it must be readable only by you: chmod 600) or set the variables "
            f"{user_var} and {password_var}",
        ) from None
    refuse_readable_netrc(path, entries)
    for machine in machines:
        auth = entries.authenticators(machine)
        if auth and auth[0] and auth[2]:
            return Credentials(auth[0], auth[2], f"{path} (machine {machine})")
    return None


def refuse_readable_netrc(path: Path, entries: netrc.netrc) -> None:
    """A netrc holding a password that group or others may read is refused (as ``ftp`` and
    ``curl`` do): the fix is the exact ``chmod``. Python's own check covers only ``~/.netrc``
    opened without a path, never a ``NETRC`` file."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    holds_password = any(auth[2] for auth in entries.hosts.values())
    if holds_password and mode & (stat.S_IRGRP | stat.S_IROTH):
        raise UsageError(
            f"{path} holds a password but can be read by other users "
            f"(mode {stat.filemode(mode)}); refusing to use it",
            f"run: chmod 600 {shlex.quote(str(path))}",
        )


def require_credentials(
    user_var: str, password_var: str, machines: tuple[str, ...], service: str
) -> Credentials:
    """:func:`find_credentials`, or a :class:`UsageError` saying exactly what to set."""
    creds = find_credentials(user_var, password_var, machines)
    if creds is None:
        raise UsageError(
            f"no {service} credentials found (downloads need a login)",
            f"set the environment variables {user_var} and {password_var}, or add a line "
            f"'machine {machines[0]} login USER password PASS' to {netrc_path()} (chmod 600)",
        )
    return creds


class TokenManager:
    """Bearer tokens from an OIDC token endpoint (password grant, then refresh grants).

    Call it to get request headers; ``invalidate()`` forgets the access token (after a 401)
    so the next call refreshes it. Thread-safe.
    """

    def __init__(
        self,
        token_url: str,
        credentials: Credentials,
        client_id: str,
        *,
        service: str = "the provider",
        fix: str = "",
        timeout: float = 30.0,
    ) -> None:
        self.token_url = token_url
        self.credentials = credentials
        self.client_id = client_id
        self.service = service
        self.fix = fix
        self.timeout = timeout
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_until = 0.0
        self._refresh: str | None = None
        self._refresh_until = 0.0
        self.logins = 0  # password grants so far (tests and diagnostics)
        self.refreshes = 0

    def __call__(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def __repr__(self) -> str:
        return f"TokenManager({self.token_url!r}, user={self.credentials.username!r})"

    def invalidate(self) -> None:
        with self._lock:
            self._access, self._access_until = None, 0.0

    def token(self) -> str:
        with self._lock:
            now = time.monotonic()
            if self._access and now < self._access_until:
                return self._access
            if self._refresh and now < self._refresh_until:
                try:
                    self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
                    self.refreshes += 1
                    return self._access  # type: ignore[return-value]
                except PolarScanError as err:
                    log.info("%s token refresh failed (%s); logging in again", self.service, err)
            self._grant(
                {
                    "grant_type": "password",
                    "username": self.credentials.username,
                    "password": self.credentials.password,
                }
            )
            self.logins += 1
            return self._access  # type: ignore[return-value]

    def _grant(self, form: dict[str, str]) -> None:
        form = {"client_id": self.client_id, **form}
        t0 = time.monotonic()
        try:
            answer = request_json(
                "POST", self.token_url, data=form, timeout=self.timeout, retries=3
            )
        except (AuthError, ProcessingError) as err:
            if not isinstance(err, AuthError) and "invalid_grant" not in str(err):
                raise
            raise AuthError(
                f"{self.service} refused the login of user {self.credentials.username!r} "
                f"(credentials from {self.credentials.origin})",
                self.fix or "check the username and password",
            ) from None
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise AuthError(
                f"{self.service} token endpoint {self.token_url} answered without an access token",
                self.fix or "check the username and password",
            )
        self._access = str(answer["access_token"])
        self._access_until = t0 + float(answer.get("expires_in", 600)) - EXPIRY_MARGIN_S
        refresh = answer.get("refresh_token")
        self._refresh = str(refresh) if refresh else None
        self._refresh_until = t0 + float(answer.get("refresh_expires_in", 0)) - EXPIRY_MARGIN_S
        log.debug("%s: new access token, valid %s s", self.service, answer.get("expires_in", "?"))


_MANAGERS: dict[tuple[str, str, str], TokenManager] = {}
_MANAGERS_LOCK = threading.Lock()


def shared_token_manager(
    token_url: str, credentials: Credentials, client_id: str, **kw: object
) -> TokenManager:
    """One manager per (endpoint, user, client) per process, shared by all threads."""
    key = (token_url, credentials.username, client_id)
    with _MANAGERS_LOCK:
        mgr = _MANAGERS.get(key)
        if mgr is None or mgr.credentials != credentials:
            mgr = _MANAGERS[key] = TokenManager(token_url, credentials, client_id, **kw)  # type: ignore[arg-type]
        return mgr


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""
