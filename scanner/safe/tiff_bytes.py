"""How many bytes GDAL fetched to read a TIFF in place: an estimate from the TIFF's structure.

GDAL reads a remote file (``/vsis3/``, ``/vsicurl/``) in chunks of ``CPL_VSIL_CURL_CHUNK_SIZE``
(16 KB) aligned on multiples of it, cached per file: the header first (the image file
directories, IFDs, and what lies between them, such as the GCPs of a Sentinel-1 measurement),
then the chunks that hold the tiles (or strips) a read needs, asking for twice as many chunks
as last time when a read goes on where the last download ended. A :class:`BlockLog` notes which
blocks of which level of which file a product read, in order; :meth:`BlockLog.estimate` replays
them through that rule with each block's offset and byte count from GDAL's ``TIFF`` metadata
domain (``BLOCK_OFFSET_<x>_<y>``, ``BLOCK_SIZE_<x>_<y>``; the header's extent from
``IFD_OFFSET``). Against a real S3 server's request log (``tests/s3/test_s3_04_fetched_bytes.py``)
it matched to the byte on COG twins read from their overviews, GDAL's cache on or off.

Not modelled: GDAL's multi-range reads (not used by these reads), retries, and another process
or an earlier scene having cached a chunk (each product is counted as if read afresh).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

CHUNK = 16384  # GDAL's default CPL_VSIL_CURL_CHUNK_SIZE
#: bytes past the last IFD GDAL saw that the header read still covers (the rest of the IFD
#: chain, a few hundred bytes per overview level, and the tile offset/size arrays)
IFD_ALLOWANCE = 4096

Level = tuple[str, int | None]  # (file, overview level; None = full resolution)


def chunk_size() -> int:
    try:
        return max(1024, int(os.environ.get("CPL_VSIL_CURL_CHUNK_SIZE") or CHUNK))
    except ValueError:
        return CHUNK


class BlockLog:
    """The blocks a product read, in order, per (file, overview level) (thread-safe)."""

    def __init__(self) -> None:
        self.reads: list[tuple[Level, int, int]] = []  # (level, x, y) in the order read
        self._lock = threading.Lock()

    @property
    def blocks(self) -> dict[Level, set[tuple[int, int]]]:
        out: dict[Level, set[tuple[int, int]]] = {}
        for level, x, y in self.reads:
            out.setdefault(level, set()).add((x, y))
        return out

    def note(self, level: Level, ds: Any, window: Any) -> None:
        """Remember the blocks of ``ds`` (a rasterio dataset of ``level``) under ``window``, in
        the order GDAL reads them (row after row of blocks)."""
        bh, bw = ds.block_shapes[0]
        r0, c0 = max(0, int(window.row_off)), max(0, int(window.col_off))
        r1 = min(ds.height, int(window.row_off + window.height))
        c1 = min(ds.width, int(window.col_off + window.width))
        if r1 <= r0 or c1 <= c0:
            return
        got = [(level, x, y) for y in range(r0 // bh, (r1 - 1) // bh + 1)
               for x in range(c0 // bw, (c1 - 1) // bw + 1)]  # fmt: skip
        with self._lock:
            self.reads.extend(got)

    def estimate(
        self,
        datasets: Mapping[Level, Any],
        file_size: Callable[[str], int | None] = lambda rel: None,
    ) -> int:
        """Bytes GDAL fetched for the files of ``datasets`` (open rasterio datasets by level,
        the file's full resolution first: it was opened first): the header chunks, then the
        chunks of the blocks read, replayed through GDAL's read rule (:class:`_Remote`)."""
        files: dict[str, _Remote] = {}
        where: dict[tuple[Level, int, int], tuple[int, int] | None] = {}
        for (rel, _level), ds in datasets.items():
            ifd = _int(ds.get_tag_item("IFD_OFFSET", "TIFF", bidx=1)) or 0
            f = files.get(rel)
            if f is None:
                f = files[rel] = _Remote(chunk_size(), file_size(rel))
            f.header_end = max(f.header_end, ifd + IFD_ALLOWANCE)
        for rel, f in files.items():
            f.read_header(first=(rel, None))
        for key in self.reads:
            level, x, y = key
            ds = datasets.get(level)
            if ds is None:
                continue
            if key not in where:
                off = _int(ds.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=1))
                n = _int(ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1))
                where[key] = (off, n) if off is not None and n else None  # None: sparse block
            if where[key] is not None:
                files[level[0]].read(level, *where[key])  # type: ignore[misc]
        return sum(f.fetched for f in files.values())


class _Remote:
    """One remote file as GDAL's ``/vsicurl/`` reads it (``cpl_vsil_curl.cpp``,
    ``VSICurlHandle::Read``): chunks cached per file, shared by its handles (one per opened
    dataset, i.e. per level); a handle that reads on from where its last download ended
    doubles how many chunks it asks for (up to 128), any other read asks for what it needs."""

    def __init__(self, chunk: int, size: int | None) -> None:
        self.chunk, self.size = chunk, size
        self.header_end = 0
        self.cached: set[int] = set()
        self.handles: dict[Level, list[int]] = {}  # level → [end of last download, blocks]
        self.fetched = 0

    def read_header(self, first: Level) -> None:
        """At open: the first chunk (GDAL's size probe), then the rest of the header span by
        the first handle."""
        n = max(1, -(-self.header_end // self.chunk))
        self._fetch(0, 1)
        if n > 1:
            self._fetch(1, n - 1)
        self.handles[first] = [n * self.chunk, max(1, n - 1)]

    def read(self, level: Level, offset: int, n: int) -> None:
        h = self.handles.setdefault(level, [-1, 1])
        pos, end = offset, offset + n
        while pos < end:
            c = pos // self.chunk
            if c in self.cached:
                pos = (c + 1) * self.chunk
                continue
            if c * self.chunk == h[0]:  # sequential: read ahead more
                h[1] = h[1] * 2 if h[1] < 128 else h[1]
            else:
                h[1] = 1
            h[1] = max(h[1], -(-end // self.chunk) - c)
            for i in range(1, h[1]):
                if c + i in self.cached:
                    h[1] = i
                    break
            if self.size is not None:
                h[1] = max(1, min(h[1], -(-self.size // self.chunk) - c))
            self._fetch(c, h[1])
            h[0] = (c + h[1]) * self.chunk
            pos = h[0]

    def _fetch(self, first: int, count: int) -> None:
        for c in range(first, first + count):
            if c in self.cached:
                continue
            self.cached.add(c)
            left = self.chunk if self.size is None else self.size - c * self.chunk
            self.fetched += max(0, min(self.chunk, left))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None
