"""Where scenes come from: CDSE OData (default), ASF, DHuS (sentinelsat), a local folder, the demo.

``get_source(spec, modes)`` turns a ``--source`` value into a :class:`~scanner.sources.base.Source`
that searches the given acquisition modes (EW and IW unless narrowed).
Every source also has ``check_credentials()``, which the scanner calls before any work so that a
missing login fails at once with a message naming what to set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from polarscan.common.errors import UsageError
from scanner.sources.base import check_modes

if TYPE_CHECKING:
    from scanner.sources.base import Source

SOURCE_SPECS = ("cdse", "asf", "dhus", "local:PATH", "demo")


def get_source(spec: str, modes: str | Iterable[str] | None = None) -> Source:
    """``cdse`` | ``asf`` | ``dhus`` | ``local:PATH`` | ``demo`` → a source object searching
    ``modes`` (:func:`~scanner.sources.base.check_modes`: ``None`` = EW and IW; an unknown
    mode is a :class:`UsageError` with ``key="modes"``, raised before the source is made)."""
    wanted = check_modes(modes)
    source = _make_source(spec)
    source.modes = wanted
    return source


def _make_source(spec: str) -> Source:
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
