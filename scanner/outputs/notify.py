"""Telling someone: the night's polar lows as GeoJSON, POSTed to a webhook and/or handed to a
command. Never raises: each outcome is returned as a small dict for the run's summary (and
logged), because a notification that fails must not fail a scan whose outputs are written.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from polarscan.common.atomic import atomic_path

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def lows_geojson(lows: Any, run_id: str) -> dict:
    """A FeatureCollection of polar lows (a GeoDataFrame of the ``polar_lows`` layer), points in
    lon/lat (RFC 7946)."""
    features = []
    for r in lows.itertuples():
        features.append(
            {
                "type": "Feature",
                "id": r.polar_low_id,
                "geometry": {"type": "Point", "coordinates": [round(r.lon, 5), round(r.lat, 5)]},
                "properties": {
                    "polar_low_id": r.polar_low_id,
                    "time": r.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "max_probability": round(float(r.max_probability), 4),
                    "mean_probability": round(float(r.mean_probability), 4),
                    "n_windows": int(r.n_windows),
                    "track_id": r.track_id,
                    "mosaic_id": r.mosaic_id,
                },
            }
        )
    return {"type": "FeatureCollection", "run_id": run_id, "features": features}


def write_geojson(path: Path, collection: dict) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(collection, indent=1), encoding="utf-8")
    return path


def post_geojson(url: str, path: Path, timeout_s: float, retries: int, backoff_s: float) -> dict:
    """POST the file; retried on connection errors, timeouts, 408/425/429/5xx."""
    import requests

    from polarscan.common.http import backoff_delay, parse_retry_after

    body = path.read_bytes()
    error = ""
    for attempt in range(retries + 1):
        retry_after = None
        try:
            resp = requests.post(url, data=body, timeout=timeout_s,
                                 headers={"Content-Type": "application/geo+json"})  # fmt: skip
            if resp.status_code < 300:
                return {"ok": True, "status": resp.status_code, "attempts": attempt + 1}
            error = f"HTTP {resp.status_code}"
            if resp.status_code not in RETRY_STATUS:
                break
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except requests.RequestException as err:
            error = f"{type(err).__name__}: {err}"
        if attempt < retries:
            time.sleep(min(backoff_delay(attempt, backoff_s, retry_after), 60.0))
    log.warning("notification to %s failed: %s", url, error)
    return {"ok": False, "error": error, "attempts": attempt + 1}


def run_command(command: str, path: Path, timeout_s: float) -> dict:
    """Run ``command`` (split like a shell would, not through one) with ``path`` appended."""
    argv = [*shlex.split(command), str(path)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("on-detection command failed: %s", err)
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-300:]
        log.warning("on-detection command exited %d: %s", proc.returncode, tail)
        return {"ok": False, "error": f"exit {proc.returncode}: {tail}"}
    return {"ok": True}


def notify(config: Any, geojson: Path, n_lows: int) -> dict:
    """Webhook and command per ``config`` (:class:`~scanner.forecast.config.NotifyConfig`)."""
    out: dict[str, Any] = {}
    if n_lows == 0 and config.only_with_lows:
        return out
    if config.url:
        out["webhook"] = post_geojson(
            config.url, geojson, config.timeout_s, config.retries, config.backoff_s
        )
    if config.command:
        out["command"] = run_command(config.command, geojson, config.timeout_s)
    return out
