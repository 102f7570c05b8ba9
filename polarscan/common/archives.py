"""Limits on what a zip may unpack to, checked from its central directory before any read.

A zip bomb is small on disk and huge when read: one member of zeros (ratio ~1000:1), thousands
of members, or a central directory claiming sizes the data does not have. The sizes are checked
here before anything is decompressed; a member that lies about its size is stopped by
:mod:`zipfile` itself, which never returns more than the declared size and then fails the CRC.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from polarscan.common.errors import PolarScanError

GIB = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    """Most a zip may unpack to: per member, in total, members, and the compression ratio of
    any member larger than ``ratio_floor`` bytes (small text files compress well)."""

    max_member: int
    max_total: int
    max_ratio: float
    max_members: int = 100_000
    ratio_floor: int = 16 * MIB


def check_zip_sizes(
    infos: Iterable[zipfile.ZipInfo],
    limits: ZipLimits,
    label: str,
    error: type[PolarScanError],
    fix: str,
) -> int:
    """The total declared uncompressed size, or ``error`` naming the member and the limit."""
    total = 0
    for n, info in enumerate(infos, 1):
        if n > limits.max_members:
            raise error(f"{label} has more than {limits.max_members} entries", fix)
        size, packed = info.file_size, info.compress_size
        if size > limits.max_member:
            raise error(
                f"{label}: entry {info.filename!r} unpacks to {size / GIB:.2f} GiB, more than "
                f"the {limits.max_member / GIB:.2f} GiB allowed per entry",
                fix,
            )
        ratio = size / max(packed, 1)
        if size > limits.ratio_floor and ratio > limits.max_ratio:
            raise error(
                f"{label}: entry {info.filename!r} is compressed {ratio:.0f}:1 "
                f"({packed} bytes → {size} bytes), more than the {limits.max_ratio:.0f}:1 "
                "allowed (a zip bomb?)",
                fix,
            )
        total += size
        if total > limits.max_total:
            raise error(
                f"{label} unpacks to more than the {limits.max_total / GIB:.2f} GiB allowed "
                f"in total (reached at entry {info.filename!r})",
                fix,
            )
    return total
