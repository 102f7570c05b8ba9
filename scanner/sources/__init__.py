"""Where scenes come from: CDSE OData (default), ASF, DHuS (sentinelsat), a local folder, the demo.

``get_source(spec)`` turns a ``--source`` value into a :class:`~scanner.sources.base.Source`.
Every source also has ``check_credentials()``, which the scanner calls before any work so that a
missing login fails at once with a message naming what to set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polarscan.common.errors import UsageError

if TYPE_CHECKING:
    from scanner.sources.base import Source

SOURCE_SPECS = ("cdse", "asf", "dhus", "local:PATH", "demo")


def get_source(spec: str) -> Source:
    """``cdse`` | ``asf`` | ``dhus`` | ``local:PATH`` | ``demo`` → a source object."""
    spec = (spec or "").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "cdse" and not arg:
        from scanner.sources.cdse import CDSESource

        return CDSESource()
    if kind == "asf" and not arg:
        from scanner.sources.asf import ASFSource

        return ASFSource()
    if kind == "dhus":
        from scanner.sources.dhus import DHuSSource

        return DHuSSource(arg or None)
    if kind == "local":
        from scanner.sources.local import LocalSource

        if not arg:
            raise UsageError("'local' needs a folder", "write the source as local:PATH", key="source")
        return LocalSource(arg)
    if kind == "demo" and not arg:
        from scanner.demo.source import DemoSource

        return DemoSource()
    raise UsageError(
        f"unknown scene source {spec!r}",
        f"use one of: {', '.join(SOURCE_SPECS)}",
    )
