"""Mosaicking: consecutive slices of one datatake → one RGB COG on a snapped map grid.

Per product: block-averaged sigma0 (``scanner.safe.radiometry``) → dB → sampled through the
inverse map (``geocode``) onto the union grid of all slices. Slices are processed one at a time
in time order and each output pixel keeps the first valid value (configurable), so memory is one
product's blocks plus the output grid, whatever the number of slices.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from polarscan.common.errors import UsageError
from scanner.mosaic.config import MosaicConfig
from scanner.mosaic.result import MosaicResult, mosaic_id
from scanner.mosaic.sigma0 import block_size, usable_threads  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

class _Timed(Protocol):
    name: str
    start: datetime
    stop: datetime


T = TypeVar("T", bound=_Timed)


class _Slice(Protocol):
    name: str
    mission: str
    abs_orbit: int
    datatake_id: str
    start: datetime
    stop: datetime


def datatake_key(p: _Slice) -> tuple[str, int, str]:
    return (p.mission.upper(), int(p.abs_orbit), p.datatake_id.upper())


def acquisition(p: Any) -> tuple[str, tuple[str, ...]] | None:
    """(mode, (co-pol, cross-pol)) of an opened product (``mode``, ``pol_pair``) or of a
    catalogue scene (from its name, :func:`scanner.sources.base.name_acquisition`); None when
    unknown (never refused for it)."""
    pair = getattr(p, "pol_pair", None)
    mode = getattr(p, "mode", None)
    if isinstance(mode, str) and pair is not None:
        return mode.upper(), tuple(pair)
    from scanner.sources.base import name_acquisition

    name = getattr(p, "name", None)
    return name_acquisition(name) if isinstance(name, str) else None


@dataclass(frozen=True)
class Refusal:
    """A slice left out of its strip by :func:`group_products`, and why (problem and fix)."""

    item: Any
    error: UsageError


def _odd_slices(members: list, refused: list[Refusal] | None) -> list:
    """Members whose mode or polarisation pair differ from the strip's majority (ties: the
    earliest slice's) are refused — logged, and appended to ``refused`` — the rest returned."""
    acq = [acquisition(p) for p in members]
    known = [a for a in acq if a is not None]
    if len(set(known)) <= 1:
        return members
    counts: dict[Any, int] = {}
    for a in known:
        counts[a] = counts.get(a, 0) + 1
    best = max(counts.values())
    majority = next(a for a in known if counts[a] == best)  # members are in time order
    kept = []
    for p, got in zip(members, acq, strict=True):
        if got is None or got == majority:
            kept.append(p)
            continue
        err = UsageError(
            f"{p.name}: mode {got[0]}, polarisations {'+'.join(got[1])} differ from the other "
            f"slices of its datatake (mode {majority[0]}, polarisations "
            f"{'+'.join(majority[1])}); a mosaic never mixes modes or polarisation pairs, so "
            "this slice is refused and the others are mosaicked",
            "check the product (a datatake has one mode and one polarisation pair) or "
            "mosaic it on its own",
        )
        log.warning("%s", err)
        if refused is not None:
            refused.append(Refusal(p, err))
    return kept


def group_products(
    products: Iterable[T],
    max_gap_s: float = 5.0,
    key: Callable[[T], tuple[str, int, str] | None] | None = None,
    refused: list[Refusal] | None = None,
) -> list[list[T]]:
    """Split products (or catalogue scenes) into strips: same mission, absolute orbit and
    datatake id (``key``, by default :func:`datatake_key`), contiguous in time (next start ≤
    previous stop + ``max_gap_s``). Sorted by time, groups by first start. An item whose key is
    None stands alone. This is the one grouping of the project: the mosaic command and the scan
    both use it.

    A strip never mixes acquisition modes (EW, IW) or polarisation pairs (HH+HV, VV+VH): a
    slice that disagrees with the rest of its datatake (:func:`acquisition`) is left out with a
    warning naming it, and appended as a :class:`Refusal` to ``refused`` when a list is given;
    the other slices are grouped as usual.

    Raises :class:`UsageError` if one slice is given twice (same datatake and start time, e.g. a
    product and its ``_COG`` twin).
    """
    key_of: Callable[[Any], Any] = key or datatake_key
    by_key: dict[Any, list[T]] = {}
    for i, p in enumerate(products):
        k = key_of(p)
        by_key.setdefault(k if k is not None else ("", -1, f"#{i}"), []).append(p)
    groups: list[list[T]] = []
    for members in by_key.values():
        members.sort(key=lambda p: p.start)
        members = _odd_slices(members, refused)
        for a, b in itertools.pairwise(members):
            if abs((b.start - a.start).total_seconds()) < 1.0:
                raise UsageError(
                    f"the same slice is given twice: {a.name} and {b.name}",
                    "pass each slice once (drop the duplicate or the _COG twin)",
                )
        strip = [members[0]]
        for b in members[1:]:
            if (b.start - strip[-1].stop).total_seconds() > max_gap_s:
                groups.append(strip)
                strip = [b]
            else:
                strip.append(b)
        groups.append(strip)
    groups.sort(key=lambda g: g[0].start)
    return groups


def describe_group(group: Sequence[_Slice]) -> str:
    """``S1A orbit 46117 datatake 058549 01:43:42–01:44:46`` for messages."""
    m, orbit, dt = datatake_key(group[0])
    return (
        f"{m} orbit {orbit} datatake {dt} "
        f"{group[0].start:%Y-%m-%dT%H:%M:%S}–{group[-1].stop:%H:%M:%S}"
    )


def group_id(group: Sequence[Any], key: Callable[[Any], Any] | None = None) -> str:
    """The mosaic id of a strip (:func:`scanner.mosaic.result.mosaic_id`)."""
    k = (key or datatake_key)(group[0])
    return mosaic_id(k, group[0].start, group[-1].stop, group[0].name)


def mosaic_name(group: Sequence[_Slice]) -> str:
    """A file name for a strip: ``S1A_046117_058549_20221130T014342_20221130T014446_rgb.tif``."""
    return f"{group_id(group)}_rgb.tif"


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"polarscan {version('polarscan')}"
    except PackageNotFoundError:
        return "polarscan (not installed)"


def build_mosaic(
    paths: Sequence[str | Path],
    out_path: str | Path,
    config: MosaicConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    refused: list[Refusal] | None = None,
) -> MosaicResult:
    """Mosaic the products at ``paths`` (SAFE folders or zips) of ONE strip into an RGB COG.

    Every product is opened and validated before anything is computed; the COG is written to
    a temporary name and renamed, so an error leaves nothing at ``out_path``. A slice whose
    mode or polarisation pair differs from the others is left out (:func:`group_products`;
    appended to ``refused`` if given, its product closed) and the rest mosaicked.
    """
    config = config or MosaicConfig()
    products = open_products(paths)
    try:
        groups = group_products(products, config.max_gap_s, refused=refused)
        if len(groups) > 1:
            listing = "; ".join(describe_group(g) for g in groups)
            raise UsageError(
                f"the products form {len(groups)} strips, which never mix in one mosaic: {listing}",
                "mosaic each datatake separately, or write into a directory (one mosaic per strip)",
                key="out",
            )
        return mosaic_strip(groups[0], Path(out_path), config, progress)
    finally:
        for p in products:
            p.close()


def open_products(paths: Sequence[str | Path]) -> list:
    """Open and validate every product (all fail fast before any work); closes them on error."""
    from scanner.safe import open_product

    if not paths:
        raise UsageError("no products to mosaic", "pass at least one SAFE folder or zip")
    products = []
    try:
        for path in paths:
            products.append(open_product(path))
    except BaseException:
        for product in products:
            product.close()
        raise
    return products


def mosaic_strip(
    group: Sequence, out_path: Path, config: MosaicConfig, progress=None
) -> MosaicResult:
    """Mosaic opened products of one strip (see :func:`group_products`) into ``out_path``."""
    from polarscan.common.rgb import db_to_rgb
    from scanner.cog import write_cog
    from scanner.mosaic.sigma0 import strip_sigma0

    sig = strip_sigma0(group, config, progress)
    mode, pols, grid, timings = sig.mode, sig.polarisations, sig.grid, sig.timings
    blocks, footprint = sig.blocks, sig.footprint
    t0 = time.perf_counter()
    rgb = db_to_rgb(sig.co_db, sig.cross_db, config.rgb, mode)
    del sig  # the two float32 dB grids: only the RGB is kept from here
    m, orbit, dt = datatake_key(group[0])
    tags = {
        "products": ",".join(p.name for p in group),
        "start": group[0].start.isoformat(),
        "stop": group[-1].stop.isoformat(),
        "mission": m,
        "abs_orbit": str(orbit),
        "datatake_id": dt,
        "mode": mode,
        "polarisations": "+".join(pols),  # co-pol first: HH+HV or VV+VH
        "crs": config.crs,
        "resolution_m": f"{config.resolution_m:g}",
        "resampling": config.resampling,
        "block_px": ",".join(str(b) for b in blocks),
        "rgb_recipe": json.dumps(config.rgb.model_dump(mode="json"), sort_keys=True),
        "software": software_version(),
    }
    r = config.rgb
    role_pol = {"co": pols[0], "cross": pols[1]}
    write_cog(
        out_path,
        np.moveaxis(rgb, -1, 0),
        transform=grid.transform,
        crs=config.crs,
        nodata=0,
        tags=tags,
        band_names=[f"{role_pol[c]} dB" for c in (r.red, r.green, r.blue)],
        colorinterp=["red", "green", "blue"],
    )
    timings["write"] += time.perf_counter() - t0
    log.debug("mosaic timings: %s", timings)
    return MosaicResult(
        mosaic_id=group_id(group),
        path=out_path,
        transform=grid.transform,
        crs=config.crs,
        shape=grid.shape,
        products=tuple(p.name for p in group),
        start=group[0].start,
        stop=group[-1].stop,
        footprint=footprint,
        mode=mode,
        polarisations=pols,
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def strip_acquisition(group: Sequence) -> tuple[str, tuple[str, str]]:
    """The one (mode, (co, cross)) of a strip's products; refuses a mixed strip."""
    acq = {(p.mode.upper(), tuple(p.pol_pair)) for p in group}
    if len(acq) > 1:
        listing = "; ".join(f"{p.name}: {p.mode} {'+'.join(p.pol_pair)}" for p in group)
        raise UsageError(
            f"a mosaic never mixes modes or polarisation pairs, but these slices do: {listing}",
            "group the products with group_products first (it leaves the odd slice out)",
        )
    mode, pair = acq.pop()
    return mode, (pair[0], pair[1])


