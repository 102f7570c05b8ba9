"""Calibrated, denoised sigma0 at the output resolution, streamed in strips of whole block rows.

Order of operations (domain brief §5): average DN² over ``block × block`` pixels first, then
subtract noise and calibrate with the LUTs evaluated once per block at its centre:

    sigma0_block = (mean(DN²) − noiseRange·noiseAzimuth) / sigmaNought²

This is ~block² less LUT work than calibrating every pixel. It differs from the mean of the
full-resolution sigma0 only through the variation of the LUTs inside a block (they are smooth,
tabulated every ~40 px, so the error is second order). Negative values (HV near the noise floor)
are clipped to :data:`SIGMA0_FLOOR`; blocks without any valid pixel (DN == 0) are NaN.

**Overviews.** A COG twin's measurement carries RMS overviews (``OVERVIEW_RESAMPLING=RMS``): each
overview pixel is sqrt(weighted mean DN²) of its footprint. GDAL's footprints are not whole
``f × f`` squares (level sizes are halved and floored, so ratios like 4.009; area weighting;
each level made from the one before: :mod:`scanner.safe.footprints`), so they drift from a
uniform block grid. A twin's blocks are therefore groups of whole pixels of the coarsest
overview that tiles ``block`` (:func:`choose_overview`, :func:`block_grid`), and both of its
paths sum the same footprints: the overview path averages the squares of the block's overview
pixels (~f² fewer bytes read), the full-resolution path weights each DN² as GDAL weighted it
into those pixels (:func:`mean_dn2_weighted`). LUTs are evaluated at the blocks' weighted
centres; the mosaic samples the blocks there. Originals keep uniform ``block × block`` blocks.
Before an overview is trusted, once per measurement, one tile of full-resolution DN is compared
with it over the same footprints (:func:`verify_overview`): the mean of the overview's squares
must match within :data:`OVERVIEW_TOLERANCE`, else (an AVERAGE overview: the square of a mean is
not the mean of squares) the reason is logged and the full-resolution path is read.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from scanner.safe.footprints import BlockGrid, cog_grid, overview_weights, uniform_grid
from scanner.safe.footprints import uniform_centres as block_centres  # noqa: F401 - re-exported

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
"""Overview pixels per output pixel side, at least: coarser overviews blur the mosaic."""
OVERVIEW_TOLERANCE = 0.005
"""Relative difference allowed between an overview's squares and the full-resolution DN² of the
same footprints (:mod:`scanner.safe.footprints`). An RMS overview agrees to ~0.1 % (its values
are rounded to integers); an AVERAGE one is low by the amplitude speckle's relative variance,
~2 % at EW's 10.7 looks, more at fewer looks."""
CHECK_PX = 240
"""Side (full-resolution pixels) of the window an overview is checked on, placed just inside a
1024-pixel tile near the scene centre: one tile of a CDSE twin (``BLOCKSIZE=1024``) is read.
Its ~3600 1/4-overview pixels are plenty: RMS and AVERAGE differ systematically, not by chance."""
TILE = 1024
COG_FACTORS = (2, 4, 8, 16, 32, 64)
"""Overview decimations of CDSE's COG twins (``OVERVIEW_COUNT=6``)."""
GRID_RULES = ("auto", "uniform", "cog")


def choose_overview(factors: list[int], block: int, min_px: float = MIN_OVERVIEW_PX) -> int | None:
    """The coarsest overview decimation ``f`` of ``factors`` that leaves at least ``min_px``
    overview pixels per output pixel (``block`` radar pixels: ``block / f ≥ min_px``, e.g. the
    1/8 level, 320 m, for a 500 m grid of 40 m pixels); ``None``: read full resolution. The
    radiometry blocks are then whole overview pixels (:func:`overview_block`)."""
    ok = [f for f in factors if f > 1 and block / f >= min_px]
    return max(ok) if ok else None


def overview_block(block: int, factor: int) -> int:
    """The radiometry block (radar pixels) on the 1/``factor`` level: the most whole overview
    pixels that fit in ``block`` (at least one)."""
    return factor * max(1, block // factor)


def block_grid(product: Product, pol: str, block: int, rule: str = "auto") -> BlockGrid:
    """The radiometry blocks of ``pol``: ``"auto"`` — of whole overview pixels when the
    measurement has power-of-two overviews that tile ``block`` (a COG twin, level sizes read
    from the file), else uniform ``block``-pixel blocks (an original: unchanged); ``"uniform"``;
    ``"cog"`` — the blocks a COG twin of this product would have (GDAL's level sizes), to read
    an original on its twin's footprints."""
    if rule not in GRID_RULES:
        raise ValueError(f"unknown block grid rule {rule!r} (known: {', '.join(GRID_RULES)})")
    if rule == "cog":
        factor = choose_overview(list(COG_FACTORS), block)
        return uniform_grid(product.shape, block) if factor is None else cog_grid(
            product.shape, overview_block(block, factor), factor)  # fmt: skip
    factors = product.overview_factors(pol) if rule == "auto" else []
    factor = choose_overview(factors, block)
    chain = [2**k for k in range(1, factor.bit_length())] if factor else []
    if factor is None or factor & (factor - 1) or any(f not in factors for f in chain):
        return uniform_grid(product.shape, block)
    return cog_grid(product.shape, overview_block(block, factor), factor,
                    [product.overview_shape(pol, f) for f in chain])  # fmt: skip


def verify_overview(product: Product, pol: str, grid: BlockGrid) -> str | None:
    """``None`` if the overview of ``grid.factor`` squares to the full-resolution mean DN² of
    the same footprints on one tile near the scene centre (within :data:`OVERVIEW_TOLERANCE`),
    else why not."""
    from rasterio.windows import Window

    factor = int(grid.factor or 0)
    side = max(4, min(CHECK_PX, *product.shape) // factor)  # overview pixels
    sel = []
    for ax in (grid.rows, grid.cols):
        start = (ax.n // 2 // TILE) * TILE + 8  # full-resolution pixel, inside a tile
        j0 = min(int(np.ceil(start / (ax.n / ax.n_overview))), max(0, ax.n_overview - side))
        j1 = min(ax.n_overview, j0 + side)
        w = overview_weights(ax.n, _level_sizes(product, pol, factor, ax is grid.rows))[j0:j1]
        used = np.flatnonzero(np.asarray(w.sum(axis=0)).ravel() > 0)
        p0, p1 = int(used[0]), int(used[-1]) + 1
        sel.append((j0, j1, p0, p1, w[:, p0:p1]))
    (i0, i1, r0, r1, wr), (j0, j1, c0, c1, wc) = sel
    dn = product.read_dn(pol, Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float64)
    ov = product.read_overview(pol, factor, Window(j0, i0, j1 - j0, i1 - i0))
    valid = (dn != 0).astype(np.float64)
    if valid.mean() < 0.5 or not (ov != 0).any():
        return "the check window is mostly nodata"
    full = float((wr @ (wc @ (np.square(dn) * valid).T).T).sum() / (wr @ (wc @ valid.T).T).sum())
    over = float(np.square(ov[ov != 0], dtype=np.float64).mean())
    diff = over / full - 1.0
    if abs(diff) > OVERVIEW_TOLERANCE:
        return (
            f"its squares are {diff:+.1%} off the mean DN² of the same "
            f"{r1 - r0} x {c1 - c0} full-resolution pixels (not an RMS overview?)"
        )
    return None


def _level_sizes(product: Product, pol: str, factor: int, rows: bool) -> list[int]:
    chain = [2**k for k in range(1, factor.bit_length())]
    return [product.overview_shape(pol, f)[0 if rows else 1] for f in chain]


def overview_for(product: Product, pol: str, grid: BlockGrid) -> int | None:
    """The overview decimation to read ``pol``'s block means from on a COG ``grid`` (checked
    once per measurement, the verdict cached on the product), or ``None``: full resolution."""
    if grid.factor is None or grid.factor not in product.overview_factors(pol):
        return None
    factor = grid.factor
    key = (pol.upper(), factor)
    checks = product.overview_checks
    if key not in checks:
        why = verify_overview(product, pol, grid)
        checks[key] = why
        if why is None:
            log.info("%s %s: block radiometry from the 1/%d overview", product.name, pol, factor)
        else:
            log.warning("%s %s: not using the 1/%d overview: %s; reading full resolution",
                        product.name, pol, factor, why)  # fmt: skip
    return factor if checks[key] is None else None


def mean_dn2_from_overview(
    product: Product, pol: str, grid: BlockGrid, rows_per_chunk: int | None = None
) -> np.ndarray:
    """Mean DN² per block of a COG ``grid`` from its RMS overview (float64; NaN where a block
    has no valid pixel): the mean of the squares of the block's valid overview pixels."""
    from rasterio.windows import Window

    factor = int(grid.factor or 0)
    oh, ow = grid.rows.n_overview, grid.cols.n_overview
    per_r = grid.rows.per
    hb, wb = grid.shape
    col_starts = grid.cols.starts
    out = np.empty((hb, wb), dtype=np.float64)
    step = max(1, (rows_per_chunk or DEFAULT_CHUNK_ROWS) // grid.rows.block)  # block rows
    for b0 in range(0, hb, step):
        b1 = min(hb, b0 + step)
        i0, i1 = b0 * per_r, min(oh, b1 * per_r)
        ov = product.read_overview(pol, factor, Window(0, i0, ow, i1 - i0))
        sq = np.square(ov, dtype=np.float64)
        valid = (ov != 0).astype(np.float64)
        starts = np.arange(0, i1 - i0, per_r)
        sums = np.add.reduceat(np.add.reduceat(sq, starts, axis=0), col_starts, axis=1)
        counts = np.add.reduceat(np.add.reduceat(valid, starts, axis=0), col_starts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b0:b1] = np.where(counts > 0, sums / counts, np.nan)
    return out


def mean_dn2_weighted(
    product: Product, pol: str, grid: BlockGrid, rows_per_chunk: int | None = None
) -> np.ndarray:
    """Mean DN² per block of a COG ``grid`` from full resolution, each pixel weighted as the
    overview weights it (:mod:`scanner.safe.footprints`): what the overview path sums, read
    from the DN themselves (the fallback when an overview fails its check)."""
    import rasterio
    from rasterio.windows import Window

    lines, samples = product.shape
    wr = sparse.csc_matrix(grid.rows.weights)
    wc = sparse.csr_matrix(grid.cols.weights)
    sums = np.zeros(grid.shape)
    counts = np.zeros(grid.shape)
    chunk = rows_per_chunk or DEFAULT_CHUNK_ROWS
    for r0 in range(0, lines, chunk):
        with rasterio.Env(**GDAL_READ_OPTIONS):
            dn = product.read_dn(pol, Window(0, r0, samples, min(chunk, lines - r0)))
        part = wr[:, r0 : r0 + dn.shape[0]]
        valid = (dn != 0).astype(np.float64)
        sums += part @ (wc @ (np.square(dn, dtype=np.float64)).T).T
        counts += part @ (wc @ valid.T).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 1e-9, sums / counts, np.nan)


def mean_dn2_blocks(
    product: Product,
    pol: str,
    block: int,
    rows_per_chunk: int | None = None,
    *,
    overviews: bool = True,
    grid: BlockGrid | None = None,
) -> np.ndarray:
    """Mean DN² of valid pixels per block of ``grid`` (default :func:`block_grid`; float64,
    NaN where a block has none). On a COG grid: from the RMS overview when ``overviews`` and
    it passes its check (:func:`overview_for`), else from full resolution weighted the same way;
    on a uniform grid: plain means over ``block × block`` pixels."""
    grid = grid if grid is not None else block_grid(product, pol, block)
    if not grid.uniform:
        if overviews and overview_for(product, pol, grid) is not None:
            return mean_dn2_from_overview(product, pol, grid, rows_per_chunk)
        return mean_dn2_weighted(product, pol, grid, rows_per_chunk)
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
    grid: BlockGrid | None = None,
) -> np.ndarray:
    """Linear sigma0 per block of ``grid`` (default :func:`block_grid`): float32 of
    ``grid.shape`` — for uniform ``block × block`` blocks (ceil(lines/block),
    ceil(samples/block)). LUTs are evaluated at the blocks' centres.

    Reads the measurement in strips of ``rows_per_chunk`` rows (rounded to whole block rows):
    memory stays at a few strips, never the scene in float32.
    """
    if block < 1:
        raise ValueError("block must be >= 1")
    grid = grid if grid is not None else block_grid(product, pol, block)
    rows, cols = grid.rows.centres, grid.cols.centres
    dn2 = mean_dn2_blocks(product, pol, block, rows_per_chunk, overviews=overviews, grid=grid)
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
