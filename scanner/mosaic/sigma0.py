"""σ⁰ of a strip on the output grid: the radiometry-and-geocoding half of a mosaic.

Per product: block-averaged σ⁰ (``scanner.safe.radiometry``) → dB → sampled through the inverse
map (``geocode``) onto the union grid of all slices, slices in time order, each output pixel
keeping the first valid value (configurable). The RGB mosaic (:func:`scanner.mosaic.mosaic.
mosaic_strip`) and :func:`scanner.analysis.open_sigma0` are thin layers over
:func:`strip_sigma0`, so both see the same numbers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polarscan.common.errors import UsageError
from scanner.mosaic.config import MosaicConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StripSigma0:
    """Co- and cross-pol σ⁰ in dB (NaN where no slice has data) on ``grid``."""

    grid: Any  # scanner.mosaic.grid.Grid
    co_db: np.ndarray
    cross_db: np.ndarray
    mode: str
    polarisations: tuple[str, str]  # (co, cross), e.g. ("HH", "HV")
    footprint: Any  # shapely lon/lat polygon of the union of the slices
    blocks: list[int]  # radar pixels per block side, per slice
    timings: dict[str, float]


def strip_sigma0(
    group: Sequence, config: MosaicConfig, progress: Callable[[str], None] | None = None
) -> StripSigma0:
    """σ⁰ (dB) of opened products of one strip on the snapped output grid."""
    from shapely.ops import unary_union

    from scanner.mosaic.geocode import footprint_lonlat, make_geocoder
    from scanner.mosaic.grid import snap_grid, union_bounds
    from scanner.mosaic.mosaic import describe_group, strip_acquisition

    mode, pols = strip_acquisition(group)
    timings = {"geocode": 0.0, "radiometry": 0.0, "resample": 0.0, "write": 0.0}
    t0 = time.perf_counter()
    geocoders = []
    for p in group:
        g = p.geolocation_grid()
        try:
            geocoders.append(make_geocoder(g.line, g.pixel, g.lat, g.lon, p.shape, config.crs))
        except ValueError as err:
            raise UsageError(
                f"{p.name}: its geolocation grid cannot be used ({err})",
                "download the product again",
            ) from None
    grid = snap_grid(
        union_bounds([gc.bounds() for gc in geocoders]), config.resolution_m, config.crs
    )
    log.info(
        "%s: %d slice(s) → %d x %d px grid", describe_group(group), len(group), *grid.shape[::-1]
    )
    timings["geocode"] += time.perf_counter() - t0
    co = np.full(grid.shape, np.nan, dtype=np.float32)  # HH or VV dB
    cross = np.full(grid.shape, np.nan, dtype=np.float32)  # HV or VH dB
    blocks_used = []
    for p, gc in zip(group, geocoders, strict=True):
        if progress:
            progress(p.name)
        block = block_size(config, max(p.pixel_spacing_m, p.line_spacing_m))
        rows, cols = grid.window_of(gc.bounds())
        co_p, cross_p, used = _sample_product(p, gc, grid, rows, cols, block, config, timings)
        blocks_used.append(used)
        valid = np.isfinite(co_p) & np.isfinite(cross_p)
        dest_co, dest_cross = co[rows, cols], cross[rows, cols]
        if config.nodata_fill == "first":
            valid &= ~(np.isfinite(dest_co) & np.isfinite(dest_cross))
        dest_co[valid] = co_p[valid]
        dest_cross[valid] = cross_p[valid]
    # Adjacent slices meet edge to edge; a hair of buffer closes float gaps between outlines.
    eps = 1e-4  # degrees, ~10 m
    footprint = unary_union(
        [footprint_lonlat(gc).buffer(eps, join_style="mitre") for gc in geocoders]
    )
    footprint = footprint.buffer(-eps, join_style="mitre")
    return StripSigma0(grid, co, cross, mode, pols, footprint, blocks_used, timings)


def block_size(config: MosaicConfig, pixel_spacing_m: float) -> int:
    """Radar pixels per block side: the config's, else floor(resolution / spacing) (≥ 1)."""
    if config.block is not None:
        return config.block
    return max(1, math.floor(config.resolution_m / pixel_spacing_m + 1e-9))


AUTO_THREADS = 2  # co- and cross-pol: the only independent work of one product


def usable_threads(requested: int | None) -> int:
    """Threads to use for one product: ``requested`` capped at the CPUs this process may run
    on; ``None`` = :data:`AUTO_THREADS` only while a CPU is idle (1-minute load average), else
    1 — on a saturated machine (a busy dask cluster, a shared CI runner) a second thread only
    adds contention (measured: no gain, sometimes 10–20 % slower)."""
    import os

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if requested is None:
        try:
            idle = cpus - os.getloadavg()[0]
        except OSError:  # load average unavailable
            idle = cpus
        requested = AUTO_THREADS if idle >= 1.0 else 1
    return max(1, min(requested, cpus))


def _sample_product(p, gc, grid, rows, cols, block, config, timings):
    """Co-pol and cross-pol dB (HH and HV, or VV and VH) of one product on the window (rows,
    cols) of ``grid`` (NaN outside), and the radiometry block side used (radar pixels).

    With ``config.threads`` > 1 (and as many CPUs), HH and HV radiometry run in two threads
    while this one solves the inverse map: numpy and GDAL release the GIL, so the stages
    overlap and ``timings`` then add up to more than the wall time.
    """
    from concurrent.futures import ThreadPoolExecutor

    from polarscan.common.rgb import to_db
    from scanner.mosaic.resample import BlockSampler
    from scanner.safe.radiometry import block_grid, sigma0_blocks

    # the radiometry blocks: uniform, or whole overview pixels of a COG twin (same for both pols)
    blocks = block_grid(p, p.co_pol, block)
    block = blocks.rows.block  # whole overview pixels may make it smaller than asked

    def radiometry(pol: str) -> np.ndarray:
        return to_db(sigma0_blocks(p, pol, block, grid=blocks), config.rgb.floor_db)

    def geocode() -> BlockSampler:
        t0 = time.perf_counter()
        line, pixel = gc.inverse_map(grid, rows, cols, step_m=config.inverse_step_m)
        t1 = time.perf_counter()
        line, pixel, shape = blocks.sampler_positions(line, pixel)
        sampler = BlockSampler(line, pixel, shape, block, config.resampling)
        timings["geocode"] += t1 - t0
        timings["resample"] += time.perf_counter() - t1
        return sampler

    pols = p.pol_pair  # (co, cross)
    if usable_threads(config.threads) > 1:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(pols), thread_name_prefix="radiometry") as pool:
            futures = [pool.submit(radiometry, pol) for pol in pols]
            try:
                sampler = geocode()
            finally:  # on error, do not leave the radiometry running unobserved
                for f in futures:
                    f.cancel()
            dbs = [f.result() for f in futures]
        timings["radiometry"] += time.perf_counter() - t0
    else:
        sampler = geocode()
        t0 = time.perf_counter()
        dbs = [radiometry(pol) for pol in pols]
        timings["radiometry"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    co, cross = (sampler.sample(db) for db in dbs)
    timings["resample"] += time.perf_counter() - t0
    return co, cross, block
