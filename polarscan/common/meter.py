"""Bytes fetched from a data provider, counted where they arrive (a monthly quota is in bytes).

A stage that fetches opens a :func:`metered` scope; code that receives bytes from the network
(:func:`polarscan.common.http.download`, the S3 client, a product read in place) adds them to
:func:`current_meter`. Readers whose work continues in helper threads take the meter when they
are made (``current_meter()`` in the constructor) and keep it, since a context variable is not
seen by other threads. Outside a scope nothing is counted and nothing changes.

``measured`` bytes were counted as they arrived; ``estimated`` ones were worked out (GDAL's
range reads of a TIFF, from the tiles read: :mod:`scanner.safe.tiff_bytes`). ``by_key`` splits
both by product (the product's path), so a stage reading several products can tell them apart.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class ByteMeter:
    """Bytes received, measured and estimated, in all and per key (thread-safe)."""

    measured: int = 0
    estimated: int = 0
    #: key → [measured, estimated]
    by_key: dict[str | None, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, n: int, *, key: str | None = None, estimated: bool = False) -> None:
        if n <= 0:
            return
        with self._lock:
            if estimated:
                self.estimated += n
            else:
                self.measured += n
            self.by_key.setdefault(key, [0, 0])[1 if estimated else 0] += n

    def of(self, key: str | None) -> tuple[int, int]:
        """(measured, estimated) bytes counted under ``key``."""
        with self._lock:
            measured, estimated = self.by_key.get(key, (0, 0))
        return measured, estimated

    @property
    def total(self) -> int:
        return self.measured + self.estimated


_CURRENT: ContextVar[ByteMeter | None] = ContextVar("polarscan_byte_meter", default=None)


def current_meter() -> ByteMeter | None:
    """The meter of the innermost :func:`metered` scope of this thread, or None."""
    return _CURRENT.get()


@contextlib.contextmanager
def metered(meter: ByteMeter | None = None) -> Iterator[ByteMeter]:
    """Count the bytes fetched inside the block (in this thread, and by readers made here)."""
    meter = meter if meter is not None else ByteMeter()
    token = _CURRENT.set(meter)
    try:
        yield meter
    finally:
        _CURRENT.reset(token)


def count_fetched(n: int, key: str | None = None) -> None:
    """Add ``n`` measured bytes to the current meter, if any."""
    meter = _CURRENT.get()
    if meter is not None:
        meter.add(n, key=key)
