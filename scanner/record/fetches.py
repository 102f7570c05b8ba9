"""Bytes fetched from each source, per scene and stage, for the provider's monthly quota.

One row per (scene, stage) of a run that fetched anything: a download (bytes received this
time: a resumed download counts what the resume fetched), or a read in place (the S3 listing
and XML counted, the TIFF range reads estimated: ``estimated`` says how much). The month is
the UTC calendar month of ``at``, the time the stage finished, as the provider's quota resets
on the 1st (UTC assumed: CDSE does not say).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scanner.record.db import iso

#: in-place scenes the expected fraction of a product's size is averaged over
RECENT_IN_PLACE = 50


@dataclass(frozen=True)
class FetchRow:
    """Bytes one stage fetched for one scene (``estimated`` of them worked out, not counted)."""

    scene_id: str
    source: str
    stage: str
    access: str
    bytes: int
    at: datetime
    estimated: int = 0
    run_id: str | None = None
    product_size: int | None = None


@dataclass(frozen=True)
class MonthUsage:
    """What a month's rows add up to, for one source."""

    month: str
    source: str
    bytes: int
    estimated: int
    scenes: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def month_of(when: datetime) -> str:
    """``YYYY-MM`` of ``when`` in UTC (a naive time is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return f"{when.astimezone(UTC):%Y-%m}"


def next_month(month: str) -> str:
    """The month after ``YYYY-MM``."""
    year, mon = (int(x) for x in month.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def insert(conn: sqlite3.Connection, rows: list[FetchRow]) -> None:
    conn.executemany(
        "INSERT INTO fetches (at, month, source, scene_id, run_id, stage, access, bytes, "
        "estimated, product_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(iso(r.at), month_of(r.at), r.source, r.scene_id, r.run_id, r.stage, r.access,
          int(r.bytes), int(min(r.estimated, r.bytes)), r.product_size) for r in rows],
    )  # fmt: skip


def month_bytes(conn: sqlite3.Connection, month: str, source: str | None = None) -> int:
    sql, params = "SELECT COALESCE(SUM(bytes), 0) FROM fetches WHERE month = ?", [month]
    if source is not None:
        sql, params = sql + " AND source = ?", [month, source]
    return int(conn.execute(sql, params).fetchone()[0])


def usage(conn: sqlite3.Connection, months: int | None = None) -> list[MonthUsage]:
    """Per month and source, newest month first (the last ``months`` months recorded)."""
    rows = conn.execute(
        "SELECT month, source, SUM(bytes) AS b, SUM(estimated) AS e, "
        "COUNT(DISTINCT scene_id) AS n FROM fetches GROUP BY month, source "
        "ORDER BY month DESC, source"
    ).fetchall()
    keep = sorted({r["month"] for r in rows}, reverse=True)[: months or None]
    return [MonthUsage(r["month"], r["source"], int(r["b"]), int(r["e"]), int(r["n"]))
            for r in rows if r["month"] in keep]  # fmt: skip


def in_place_fraction(
    conn: sqlite3.Connection, source: str | None = None, recent: int = RECENT_IN_PLACE
) -> float | None:
    """Bytes read in place ÷ product size over the ``recent`` latest scenes read in place
    (each scene's rows of one run together), or None when there are none with a size."""
    where, params = "access != 'download' AND product_size > 0", []
    if source is not None:
        where += " AND source = ?"
        params.append(source)
    rows = conn.execute(
        f"SELECT SUM(bytes) AS b, MAX(product_size) AS size FROM fetches WHERE {where} "
        "GROUP BY scene_id, run_id ORDER BY MAX(at) DESC LIMIT ?",
        (*params, int(recent)),
    ).fetchall()
    size = sum(int(r["size"]) for r in rows)
    return sum(int(r["b"]) for r in rows) / size if size else None
