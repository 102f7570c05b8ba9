"""A real S3 server on 127.0.0.1 for tests and benchmarks: moto's server in its own process,
behind a thin WSGI layer that logs every request (method, path, Range, status, body bytes sent)
and injects faults.

Start it with :class:`S3Server` (a context manager; also a pytest fixture, see
``tests/s3/conftest.py``)::

    with S3Server() as s3:
        s3.upload_tree(local_safe, "Sentinel-1/SAR/EW_GRDM_1S/2022/11/30/X.SAFE")
        s3.set_faults([{"match": "-hh-", "status": 503, "times": 5}])
        ...
        s3.log()            # [{method, path, range, status, bytes}, ...]

Faults, consumed in order by requests whose path contains ``match`` (and, with ``ranged``, that
carry a Range header): ``status`` (403 AccessDenied, 404 NoSuchKey, 503 SlowDown… as S3 XML),
or ``drop_after`` N body bytes (the connection closes with the Content-Length unmet); ``times``
requests each. Control lives under ``/_loopback/`` (never an S3 path).

Run as ``python -m tests.support.s3server --port 0`` it prints its port on the first line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ACCESS_KEY, SECRET_KEY = "testing-access", "testing-secret"
CONTROL = "/_loopback/"
_CODES = {403: "AccessDenied", 404: "NoSuchKey", 500: "InternalError", 503: "SlowDown"}


class _Layer:
    """WSGI middleware: request log and faults in front of moto's app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.entries: list[dict] = []
        self.faults: list[dict] = []

    def _control(self, environ: dict, start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"][len(CONTROL) :]
        body = b""
        if environ["REQUEST_METHOD"] == "POST":
            n = int(environ.get("CONTENT_LENGTH") or 0)
            data = json.loads(environ["wsgi.input"].read(n) or b"null")
            with self.lock:
                if path == "faults":
                    self.faults = [dict(f) for f in data or []]
                elif path == "reset":
                    self.entries.clear()
        with self.lock:
            if path == "log":
                body = json.dumps(self.entries).encode()
            elif path == "faults":
                body = json.dumps(self.faults).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])  # fmt: skip
        return [body]

    def _fault(self, path: str, ranged: bool) -> dict | None:
        with self.lock:
            for f in self.faults:
                if f.get("times", 1) > 0 and f.get("match", "") in path:
                    if f.get("ranged") and not ranged:
                        continue
                    f["times"] = f.get("times", 1) - 1
                    return dict(f)
        return None

    def __call__(self, environ: dict, start_response: Any):
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL):
            return self._control(environ, start_response)
        entry = {
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "range": environ.get("HTTP_RANGE"),
            "status": 0,
            "bytes": 0,
        }
        with self.lock:
            self.entries.append(entry)
        fault = self._fault(path, bool(entry["range"]))
        if fault and fault.get("status"):
            code = int(fault["status"])
            body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>"
                    f"{_CODES.get(code, 'Error')}</Code><Message>injected</Message></Error>").encode()  # fmt: skip
            start_response(f"{code} Injected", [("Content-Type", "application/xml"),
                                                ("Content-Length", str(len(body)))])  # fmt: skip
            entry["status"], entry["bytes"] = code, len(body)
            return [body]
        status: list[str] = []

        def sr(st: str, headers: list, exc_info: Any = None):
            status.append(st)
            return start_response(st, headers, exc_info)

        result = self.app(environ, sr)
        drop = fault.get("drop_after") if fault else None
        return self._counted(result, entry, status, drop)

    def _counted(self, result: Any, entry: dict, status: list[str], drop: int | None):
        try:
            for chunk in result:
                entry["status"] = int(status[0].split()[0]) if status else 0
                if drop is not None and entry["bytes"] + len(chunk) > drop:
                    part = chunk[: max(0, drop - entry["bytes"])]
                    entry["bytes"] += len(part)
                    if part:
                        yield part
                    raise ConnectionAbortedError("injected: connection dropped mid-body")
                entry["bytes"] += len(chunk)
                yield chunk
            entry["status"] = int(status[0].split()[0]) if status else 0
        finally:
            if hasattr(result, "close"):
                result.close()


def serve(port: int, max_lifetime: float, parent: int) -> None:
    import logging

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = _Layer(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(server.server_port, flush=True)

    def watchdog() -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < max_lifetime and os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    server.serve_forever()


class S3Server:
    """moto's S3 in a child process on 127.0.0.1, with the bucket ``eodata`` created."""

    def __init__(self, bucket: str = "eodata", max_lifetime: float = 900.0) -> None:
        self.bucket = bucket
        self.max_lifetime = max_lifetime
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> S3Server:
        import requests

        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.s3server", "--port", "0",
             "--max-lifetime", str(self.max_lifetime), "--parent", str(os.getpid())],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=root, env=env, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the moto S3 server did not start ({line!r})")
        self.port = int(line)
        for _ in range(100):
            try:
                requests.get(self.url + CONTROL + "log", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        self.client().create_bucket(Bucket=self.bucket)
        self.reset_log()
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables that point polarscan's S3 access at this server."""
        return {"CDSE_S3_ENDPOINT": self.url, "CDSE_S3_ACCESS_KEY": ACCESS_KEY,
                "CDSE_S3_SECRET_KEY": SECRET_KEY}  # fmt: skip

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip

    def upload_tree(self, folder: str | Path, key: str) -> int:
        """Every file below ``folder`` under ``key/…``; returns the bytes uploaded."""
        c, total = self.client(), 0
        for f in sorted(Path(folder).rglob("*")):
            if f.is_file():
                c.upload_file(str(f), self.bucket, f"{key}/{f.relative_to(folder).as_posix()}")
                total += f.stat().st_size
        return total

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=key)

    def _post(self, what: str, data: Any) -> None:
        import requests

        requests.post(f"{self.url}{CONTROL}{what}", json=data, timeout=10).raise_for_status()

    def set_faults(self, faults: list[dict]) -> None:
        self._post("faults", faults)

    def reset_log(self) -> None:
        self._post("reset", None)

    def log(self) -> list[dict]:
        import requests

        return requests.get(f"{self.url}{CONTROL}log", timeout=10).json()

    def bytes_sent(self, match: str = "") -> int:
        """Body bytes the server sent for requests whose path contains ``match``."""
        return sum(e["bytes"] for e in self.log() if match in e["path"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-lifetime", type=float, default=900.0)
    ap.add_argument("--parent", type=int, default=os.getppid())
    a = ap.parse_args()
    serve(a.port, a.max_lifetime, a.parent)
