"""Calibrated, denoised sigma0 at the output resolution, streamed in strips of whole block rows.

Order of operations (domain brief §5): average DN² over ``block × block`` pixels first, then
subtract noise and calibrate with the LUTs evaluated once per block at its centre:

    sigma0_block = (mean(DN²) − noiseRange·noiseAzimuth) / sigmaNought²

This is ~block² less LUT work than calibrating every pixel. It differs from the mean of the
full-resolution sigma0 only through the variation of the LUTs inside a block (they are smooth,
tabulated every ~40 px, so the error is second order). Negative values (HV near the noise floor)
are clipped to :data:`SIGMA0_FLOOR`; blocks without any valid pixel (DN == 0) are NaN.

**Overviews.** A COG twin's measurement carries RMS overviews (``OVERVIEW_RESAMPLING=RMS``): each
overview pixel is sqrt(mean DN²) of its footprint, so its square is the footprint's mean DN². When
a measurement has overviews, the block means of DN² come from the coarsest overview whose pixels
tile a block (decimation ``f`` dividing ``block``) with at least :data:`MIN_OVERVIEW_PX` of them
per block side (:func:`choose_overview`): ~f² fewer bytes read and pixels summed. Before that is
trusted, once per measurement, one tile of full-resolution DN is compared with the overview over
the same footprint (:func:`verify_overview`): the mean of the overview's squares must match the
mean DN² within :data:`OVERVIEW_TOLERANCE`, else (an AVERAGE overview: the square of a mean is
not the mean of squares) the reason is logged and full resolution is read.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rasterio.windows import Window

    from scanner.safe.product import Product

log = logging.getLogger(__name__)

SIGMA0_FLOOR = np.float32(1e-5)
"""−50 dB: below every RGB stretch window (the recipe's own floor is −40 dB), positive so dB stays
finite. A clipped block thus renders as the darkest valid value, never as nodata."""

DEFAULT_CHUNK_ROWS = 512
GDAL_CACHE_MB = 64
GDAL_READ_OPTIONS = {"GDAL_CACHEMAX": GDAL_CACHE_MB, "GTIFF_DIRECT_IO": "YES"}
"""Every row is read once, so GDAL's block cache (default 5 % of RAM) would only hold a copy of
the scene (measured: +360 MB RSS and slower): keep it small. Direct IO reads uncompressed strips
straight into the destination array (GDAL ignores it for compressed TIFFs)."""
PASS_BYTES = 1 << 20
"""Float32 working set of one arithmetic pass: small enough to stay in L2 cache. Converting,
squaring and summing a whole 512-row strip at once streams ~20 MB through memory three times;
doing it a few block rows at a time makes that step ~2.5x faster and the whole strip reduction
~25 % cheaper in CPU (measured; bit-identical float32 sums, same summation order)."""


def block_centres(n: int, block: int) -> np.ndarray:
    """Centre (in pixel index units) of each block; the last block may be partial."""
    starts = np.arange(0, n, block, dtype=np.float64)
    stops = np.minimum(starts + block, n)
    return (starts + stops - 1.0) / 2.0


def calibrate(dn2: np.ndarray, sigma_nought: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    """(DN² − noise) / A², negatives clipped to the floor, NaN kept → float32."""
    num = dn2.astype(np.float64) - (noise if noise is not None else 0.0)
    out = (num / np.square(sigma_nought)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        np.maximum(out, SIGMA0_FLOOR, out=out, where=~np.isnan(out))
    return out


class BlockAccumulator:
    """Sum of DN² and count of valid pixels per block, fed strip by strip (pure numpy).

    DN² is summed over the rows of each block row a few block rows at a time, through one small
    float32 buffer that stays in cache (:data:`PASS_BYTES`); the column sums of blocks follow
    on the already 1/block-sized result. Counting is the expensive part, so it is done only for
    the block columns that actually contain a DN 0 (nodata sits at the swath edges); elsewhere
    every block is full.
    """

    def __init__(self, samples: int, block: int, strip_rows: int) -> None:
        self.block = block
        self.samples = samples
        self.wb = -(-samples // block)
        per_pass = max(1, PASS_BYTES // (block * samples * 4))  # block rows per pass
        self._per_pass = min(per_pass, max(1, -(-strip_rows // block)))
        self._sq = np.empty((self._per_pass * block, samples), dtype=np.float32)
        # per block row, per column; the padding columns beyond ``samples`` stay 0 forever
        self._rows = np.zeros((max(1, -(-strip_rows // block)), self.wb * block), np.float32)

    def add(self, dn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Block sums of DN² and valid counts of a strip ``dn`` (h ≤ strip_rows rows) → (hb, wb)."""
        b, (h, w) = self.block, dn.shape
        if w != self.samples:
            raise ValueError(f"strip has {w} columns, expected {self.samples}")
        hb = -(-h // b)
        if hb > self._rows.shape[0]:
            raise ValueError(f"strip has {h} rows, more than the accumulator was made for")
        row_sums = self._rows[:hb]  # every block row is overwritten below
        k = self._per_pass
        for i in range(0, hb, k):
            r0, r1 = i * b, min(h, (i + k) * b)
            n_full, rest = divmod(r1 - r0, b)
            v = self._sq[: r1 - r0]
            np.copyto(v, dn[r0:r1], casting="unsafe")
            if n_full:  # square and sum the rows of each block row in one pass, no temporary
                v3 = v[: n_full * b].reshape(n_full, b, w)
                row_sums[i : i + n_full, :w] = np.einsum("hrc,hrc->hc", v3, v3)
            if rest:  # the partial last block row of the strip
                part = v[n_full * b :]
                row_sums[i + n_full, :w] = np.einsum("rc,rc->c", part, part)
        sums = row_sums.reshape(hb, self.wb, b).sum(axis=2)
        counts = np.zeros((hb, self.wb), dtype=np.float64)
        # full blocks: b·b pixels, or fewer in the last (partial) block row / column
        rows_in = np.minimum(b, h - np.arange(hb) * b)[:, None]
        cols_in = np.minimum(b, w - np.arange(self.wb) * b)[None, :]
        counts[:] = rows_in * cols_in
        col_has_zero = dn.min(axis=0) == 0
        if col_has_zero.any():  # count valid pixels of those block columns only, in one go
            blk_cols = np.flatnonzero(np.add.reduceat(col_has_zero, np.arange(0, w, b)) > 0)
            idx = blk_cols[:, None] * b + np.arange(b)[None, :]  # their pixel columns
            inside = (idx < w).ravel()  # the last block column may be partial
            valid = dn[:, np.minimum(idx, w - 1).ravel()] != 0
            valid &= inside
            per_row = valid.reshape(h, blk_cols.size, b).sum(axis=2, dtype=np.int32)
            counts[:, blk_cols] = np.add.reduceat(per_row, np.arange(0, h, b), axis=0)
        return sums.astype(np.float64), counts


MIN_OVERVIEW_PX = 1.5
"""Overview pixels per block side, at least: coarser overviews leave too few samples per block."""
OVERVIEW_TOLERANCE = 0.02
"""Relative difference allowed between an overview's squares and full-resolution DN² (RMS
overviews of uint16 DN round each value by at most 0.5: far less than this on a tile)."""
CHECK_PX = 1024  # side of the full-resolution window an overview is checked on


def choose_overview(factors: list[int], block: int, min_px: float = MIN_OVERVIEW_PX) -> int | None:
    """The coarsest overview decimation ``f`` of ``factors`` whose pixels tile a block
    (``block % f == 0``) with ``block / f ≥ min_px``; ``None``: read full resolution."""
    ok = [f for f in factors if f > 1 and block % f == 0 and block / f >= min_px]
    return max(ok) if ok else None


def aligned_block(block: int, min_px: float = MIN_OVERVIEW_PX, max_factor: int = 64) -> int:
    """The block size nearest ``block`` that a power-of-two overview (≤ ``max_factor``, as in
    CDSE's COG twins) tiles with ≥ ``min_px`` pixels per side at the coarsest such level: 12 →
    16 (1/8 overview), 50 → 64 (1/32). For callers that may choose the block grid (it must be
    the same for a twin's overviews and an original's full resolution)."""
    f = 1
    while f * 2 <= max_factor and block / (f * 2) >= min_px:
        f *= 2
    return max(f, f * round(block / f))


COG_FACTORS = (2, 4, 8, 16, 32, 64)
"""Overview decimations of CDSE's COG twins (``OVERVIEW_COUNT=6``)."""


def overview_size(n: int, factor: int) -> int:
    """Pixels of a COG overview of decimation ``factor`` along a side of ``n``: GDAL halves the
    previous level's size, rounding down (10487 → 5243 → 2621 …)."""
    while factor > 1:
        n, factor = n // 2, factor // 2
    return max(1, n)


def _footprint_groups(n_full: int, n_ov: int, block: int) -> np.ndarray:
    """Start index, in overview pixels, of each block: overview pixel ``j`` (footprint
    ``[j·r, (j+1)·r)``, ``r = n_full / n_ov`` as GDAL builds overviews) belongs to the block
    holding its centre."""
    ratio = n_full / n_ov
    centres = (np.arange(n_ov) + 0.5) * ratio
    return np.searchsorted(centres, np.arange(0, n_full, block, dtype=np.float64))


def _group_sum(a: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """Sums of ``a`` along ``axis`` over the groups beginning at ``starts`` (increasing; a group
    may be empty: its sum is 0)."""
    n = a.shape[axis]
    idx = np.minimum(starts, max(n - 1, 0))
    out = (
        np.add.reduceat(a, idx, axis=axis)
        if n
        else np.zeros(tuple(len(starts) if i == axis else d for i, d in enumerate(a.shape)))
    )
    ends = np.append(starts[1:], n)
    empty = ends <= starts
    if empty.any():
        sl: list[Any] = [slice(None)] * a.ndim
        sl[axis] = np.flatnonzero(empty)
        out[tuple(sl)] = 0.0
    return out


def verify_overview(product: Product, pol: str, factor: int) -> str | None:
    """``None`` if the overview of ``factor`` squares to the full-resolution mean DN² on one
    tile near the scene centre (within :data:`OVERVIEW_TOLERANCE`), else why not."""
    from rasterio.windows import Window

    lines, samples = product.shape
    oh, ow = product.overview_shape(pol, factor)
    ry, rx = lines / oh, samples / ow
    size = max(factor * 16, min(CHECK_PX, lines, samples))
    r0 = max(0, (lines // 2 // size) * size)
    c0 = max(0, (samples // 2 // size) * size)
    h, w = min(size, lines - r0), min(size, samples - c0)
    # overview pixels whose centres lie in the window, and the full-resolution footprint of them
    i0, i1 = int(np.ceil(r0 / ry - 0.5)), int(np.floor((r0 + h) / ry - 0.5)) + 1
    j0, j1 = int(np.ceil(c0 / rx - 0.5)), int(np.floor((c0 + w) / rx - 0.5)) + 1
    i1, j1 = min(i1, oh), min(j1, ow)
    if i1 <= i0 or j1 <= j0:
        return "the check window holds no overview pixel"
    fr0, fr1 = round(i0 * ry), min(lines, round(i1 * ry))
    fc0, fc1 = round(j0 * rx), min(samples, round(j1 * rx))
    dn = product.read_dn(pol, Window(fc0, fr0, fc1 - fc0, fr1 - fr0))
    ov = product.read_overview(pol, factor, Window(j0, i0, j1 - j0, i1 - i0))
    valid = dn != 0
    if valid.sum() < 0.5 * dn.size or not (ov != 0).any():
        return "the check window is mostly nodata"
    full = float(np.square(dn[valid], dtype=np.float64).mean())
    over = float(np.square(ov[ov != 0], dtype=np.float64).mean())
    diff = over / full - 1.0
    if abs(diff) > OVERVIEW_TOLERANCE:
        return (
            f"its squares are {diff:+.1%} off the mean DN² of the same "
            f"{fr1 - fr0} x {fc1 - fc0} full-resolution pixels (not an RMS overview?)"
        )
    return None


def overview_for(product: Product, pol: str, block: int) -> int | None:
    """The overview decimation to read ``pol`` from at this block size (checked once per
    measurement, the verdict cached on the product), or ``None`` for full resolution."""
    factor = choose_overview(product.overview_factors(pol), block)
    if factor is None:
        return None
    key = (pol.upper(), factor)
    checks = product.overview_checks
    if key not in checks:
        why = verify_overview(product, pol, factor)
        checks[key] = why
        if why is None:
            log.info("%s %s: block radiometry from the 1/%d overview", product.name, pol, factor)
        else:
            log.warning("%s %s: not using the 1/%d overview: %s; reading full resolution",
                        product.name, pol, factor, why)  # fmt: skip
    return factor if checks[key] is None else None


def mean_dn2_from_overview(
    product: Product, pol: str, block: int, factor: int, rows_per_chunk: int | None = None
) -> np.ndarray:
    """Mean DN² per block from the RMS overview of ``factor`` (float64; NaN where a block has
    no valid pixel): each overview pixel's square, weighted by its footprint, summed over the
    overview pixels whose centres lie in the block."""
    from rasterio.windows import Window

    lines, samples = product.shape
    oh, ow = product.overview_shape(pol, factor)
    row_starts = _footprint_groups(lines, oh, block)
    col_starts = _footprint_groups(samples, ow, block)
    hb, wb = len(row_starts), len(col_starts)
    out = np.empty((hb, wb), dtype=np.float64)
    per = max(1, (rows_per_chunk or DEFAULT_CHUNK_ROWS) // block)  # block rows per strip
    for b0 in range(0, hb, per):
        b1 = min(hb, b0 + per)
        i0 = int(row_starts[b0])
        i1 = int(row_starts[b1]) if b1 < hb else oh
        ov = product.read_overview(pol, factor, Window(0, i0, ow, max(0, i1 - i0)))
        sq = np.square(ov, dtype=np.float64)
        valid = (ov != 0).astype(np.float64)
        starts = row_starts[b0:b1] - i0
        sums = _group_sum(_group_sum(sq, starts, 0), col_starts, 1)
        counts = _group_sum(_group_sum(valid, starts, 0), col_starts, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b0:b1] = np.where(counts > 0, sums / counts, np.nan)
    return out


def mean_dn2_blocks(
    product: Product,
    pol: str,
    block: int,
    rows_per_chunk: int | None = None,
    *,
    overviews: bool = True,
) -> np.ndarray:
    """Mean DN² of valid pixels per block (float64; NaN where a block has none), from an RMS
    overview when the measurement has a suitable one (:func:`overview_for`) and ``overviews``."""
    if overviews:
        factor = overview_for(product, pol, block)
        if factor is not None:
            return mean_dn2_from_overview(product, pol, block, factor, rows_per_chunk)
    import rasterio
    from rasterio.windows import Window

    lines, samples = product.shape
    chunk = max(block, ((rows_per_chunk or DEFAULT_CHUNK_ROWS) // block) * block)
    acc = BlockAccumulator(samples, block, chunk)
    out = np.empty((-(-lines // block), acc.wb), dtype=np.float64)
    # One reader thread fetches the next strip while this one reduces the current (GDAL and
    # numpy release the GIL): reading and arithmetic overlap; the dataset is only ever touched
    # by the reader thread, one strip at a time. GDAL options set in one thread are not seen
    # by another (rasterio sets them thread-locally outside the main thread): the reader sets
    # its own.
    starts = list(range(0, lines, chunk))

    def read(r0: int) -> np.ndarray:
        with rasterio.Env(**GDAL_READ_OPTIONS):
            return product.read_dn(pol, Window(0, r0, samples, min(chunk, lines - r0)))

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(read, starts[0])
        try:
            for i, r0 in enumerate(starts):
                dn = pending.result()
                if i + 1 < len(starts):
                    pending = pool.submit(read, starts[i + 1])
                sums, counts = acc.add(dn)
                del dn
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[r0 // block : r0 // block + sums.shape[0]] = np.where(
                        counts > 0, sums / counts, np.nan
                    )
        finally:
            pending.cancel()
    return out


def sigma0_blocks(
    product: Product,
    pol: str,
    block: int,
    *,
    rows_per_chunk: int | None = None,
    denoise: bool = True,
    overviews: bool = True,
) -> np.ndarray:
    """Linear sigma0 per ``block × block`` pixels: float32 (ceil(lines/block), ceil(samples/block)).

    Reads the measurement in strips of ``rows_per_chunk`` rows (rounded to whole block rows):
    memory stays at a few strips, never the scene in float32.
    """
    if block < 1:
        raise ValueError("block must be >= 1")
    lines, samples = product.shape
    rows, cols = block_centres(lines, block), block_centres(samples, block)
    dn2 = mean_dn2_blocks(product, pol, block, rows_per_chunk, overviews=overviews)
    a = product.calibration(pol).evaluate(rows, cols)
    noise = product.noise(pol).evaluate(rows, cols) if denoise else None
    return calibrate(dn2, a, noise)


def sigma0_full(product: Product, pol: str, window: Window, *, denoise: bool = True) -> np.ndarray:
    """Full-resolution sigma0 in ``window`` (LUTs at every pixel): the reference for tests."""
    dn = product.read_dn(pol, window)
    r0, c0 = int(window.row_off), int(window.col_off)
    rows = np.arange(r0, r0 + dn.shape[0], dtype=np.float64)
    cols = np.arange(c0, c0 + dn.shape[1], dtype=np.float64)
    a = product.calibration(pol).evaluate(rows, cols)
    noise = product.noise(pol).evaluate(rows, cols) if denoise else None
    dn2 = np.square(dn.astype(np.float64))
    dn2[dn == 0] = np.nan
    return calibrate(dn2, a, noise)
