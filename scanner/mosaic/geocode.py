"""Geocoding: from the annotation's geolocation grid to an inverse map (output pixel → radar).

The geolocation grid gives lat/lon at a coarse regular lattice of (line, pixel). We project the
lattice to the target CRS with pyproj first (projected x/y vary smoothly; lon/lat wrap and
converge at the pole) and fit interpolating bicubic splines x(line, pixel), y(line, pixel), so
every annotated point is reproduced exactly. Beyond the lattice the map is continued linearly
with the edge derivatives (fitpack would clamp, which makes the map non-invertible there).

Resampling is by inverse mapping: for each output pixel we need the (line, pixel) it comes
from. Newton's method on the splines gives it exactly but costs a dozen spline evaluations per
point, so we solve it on a coarse lattice of output pixels (every ``inverse_step_m``) and
interpolate bilinearly in between: the inverse map is as smooth as the forward one, so this is
accurate to metres over sea and ~100x cheaper than solving every pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import RectBivariateSpline

from scanner.mosaic.grid import OutputGrid

NEWTON_ITERATIONS = 12
NEWTON_TOL_PX = 1e-3
TABLE_STEP_PX = 16  # radar pixels between nodes of the forward table used by Newton


@dataclass(frozen=True, eq=False)
class _Table:
    """x, y tabulated on a regular (line, pixel) lattice: bilinear, with the Jacobian.

    Newton needs many forward evaluations; fitpack costs ~0.5 µs per point and derivative, a
    bilinear table lookup a few ns. At 16 px (~640 m) between nodes the table differs from the
    spline by millimetres over sea and a few metres where terrain bends the grid. Beyond the
    table the edge cells extend linearly (the fraction simply runs past 0 or 1).
    """

    l0: float
    dl: float
    p0: float
    dp: float
    x: np.ndarray  # (n_l, n_p)
    y: np.ndarray

    def eval(self, line: np.ndarray, pixel: np.ndarray):
        u = (line - self.l0) / self.dl
        v = (pixel - self.p0) / self.dp
        i = np.clip(np.floor(u).astype(np.intp), 0, self.x.shape[0] - 2)
        j = np.clip(np.floor(v).astype(np.intp), 0, self.x.shape[1] - 2)
        fu, fv = u - i, v - j
        out = []
        for t in (self.x, self.y):
            a, b, c, d = t[i, j], t[i, j + 1], t[i + 1, j], t[i + 1, j + 1]
            ab = a + (b - a) * fv
            cd = c + (d - c) * fv
            val = ab + (cd - ab) * fu
            d_line = (cd - ab) / self.dl
            d_pixel = ((b - a) + ((d - c) - (b - a)) * fu) / self.dp
            out.append((val, d_line, d_pixel))
        (x, xl, xp), (y, yl, yp) = out
        return x, y, (xl, xp, yl, yp)


@dataclass(frozen=True, eq=False)
class RadarGeocoder:
    """Forward map (line, pixel) → (x, y) in ``crs`` for one product, and its inverse."""

    crs: str
    lines: int  # image size in radar geometry
    samples: int
    node_lines: np.ndarray  # the annotation lattice (1D, increasing)
    node_pixels: np.ndarray
    node_x: np.ndarray  # projected lattice (2D, lines x pixels)
    node_y: np.ndarray
    _sx: RectBivariateSpline
    _sy: RectBivariateSpline
    _table: _Table

    # -- forward -------------------------------------------------------------------------------
    def xy(self, line, pixel) -> tuple[np.ndarray, np.ndarray]:
        """Projected coordinates of radar positions (fractional lines/pixels allowed), from the
        splines; continued linearly with the edge derivatives outside the lattice."""
        line = np.asarray(line, dtype=np.float64)
        pixel = np.asarray(pixel, dtype=np.float64)
        lc = np.clip(line, self.node_lines[0], self.node_lines[-1])
        pc = np.clip(pixel, self.node_pixels[0], self.node_pixels[-1])
        dl, dp = line - lc, pixel - pc
        x = self._sx.ev(lc, pc) + self._sx.ev(lc, pc, dx=1) * dl + self._sx.ev(lc, pc, dy=1) * dp
        y = self._sy.ev(lc, pc) + self._sy.ev(lc, pc, dx=1) * dl + self._sy.ev(lc, pc, dy=1) * dp
        return x, y

    def outline(self, step_px: float = 256.0) -> tuple[np.ndarray, np.ndarray]:
        """The image border (pixel-area edges) as a closed ring of (x, y), densified."""
        lo_l, hi_l = -0.5, self.lines - 0.5
        lo_p, hi_p = -0.5, self.samples - 0.5
        nl = max(2, int(np.ceil((hi_l - lo_l) / step_px)) + 1)
        npx = max(2, int(np.ceil((hi_p - lo_p) / step_px)) + 1)
        ls, ps = np.linspace(lo_l, hi_l, nl), np.linspace(lo_p, hi_p, npx)
        ring_l = np.concatenate([np.full(npx, lo_l), ls[1:], np.full(npx - 1, hi_l), ls[::-1][1:]])
        ring_p = np.concatenate([ps, np.full(nl - 1, hi_p), ps[::-1][1:], np.full(nl - 1, lo_p)])
        return self.xy(ring_l, ring_p)

    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the image in the target CRS."""
        x, y = self.outline()
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())

    def pixel_spacing(self) -> float:
        """Median ground spacing of one radar pixel in CRS units (the larger of line/pixel)."""
        dl = np.hypot(np.diff(self.node_x, axis=0), np.diff(self.node_y, axis=0))
        dl = dl / np.diff(self.node_lines)[:, None]
        dp = np.hypot(np.diff(self.node_x, axis=1), np.diff(self.node_y, axis=1))
        dp = dp / np.diff(self.node_pixels)[None, :]
        return float(max(np.median(dl), np.median(dp)))

    # -- inverse -------------------------------------------------------------------------------
    def invert(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(line, pixel) of map points by Newton's method (on the forward table), started
        from an affine fit.

        Points far outside the image still get an answer (from the linear continuation);
        callers decide validity by range.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        line, pixel = self._affine_guess(x, y)
        for _ in range(NEWTON_ITERATIONS):
            fx, fy, (xl, xp, yl, yp) = self._table.eval(line, pixel)
            ex, ey = x - fx, y - fy
            det = xl * yp - xp * yl
            det = np.where(np.abs(det) < 1e-12, 1e-12, det)
            d_line = (yp * ex - xp * ey) / det
            d_pixel = (xl * ey - yl * ex) / det
            line, pixel = line + d_line, pixel + d_pixel
            if (
                np.nanmax(np.abs(d_line), initial=0) < NEWTON_TOL_PX
                and np.nanmax(np.abs(d_pixel), initial=0) < NEWTON_TOL_PX
            ):
                break
        return line, pixel

    def _affine_guess(self, x, y):
        a = np.column_stack([self.node_x.ravel(), self.node_y.ravel(), np.ones(self.node_x.size)])
        ll, pp = np.meshgrid(self.node_lines, self.node_pixels, indexing="ij")
        cl = np.linalg.lstsq(a, ll.ravel(), rcond=None)[0]
        cp = np.linalg.lstsq(a, pp.ravel(), rcond=None)[0]
        return cl[0] * x + cl[1] * y + cl[2], cp[0] * x + cp[1] * y + cp[2]

    def inverse_map(
        self,
        grid: OutputGrid,
        rows: slice = slice(None),
        cols: slice = slice(None),
        step_m: float = 2000.0,
        mask: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(line, pixel) float32 arrays for every pixel centre of a window of ``grid``.

        Pixels whose source lies outside the image get NaN (unless ``mask`` is False). Newton
        runs on a lattice every ``step_m`` (at least every 2nd pixel; always including the
        window's last row/column); bilinear in between.
        """
        xs, ys = grid.centres(rows, cols)
        h, w = ys.size, xs.size
        if h == 0 or w == 0:
            empty = np.empty((h, w), dtype=np.float32)
            return empty, empty.copy()
        # at least every 2nd pixel: at coarse resolutions a lattice still beats solving each
        k = max(2, round(step_m / grid.resolution))
        if h < 3 or w < 3:
            fx, fy = np.meshgrid(xs, ys)
            line, pixel = self.invert(fx, fy)
        else:
            ri, ci = _lattice(h, k), _lattice(w, k)
            gx, gy = np.meshgrid(xs[ci.astype(np.intp)], ys[ri.astype(np.intp)])
            cl, cp = self.invert(gx, gy)
            line = _upsample(cl, ri, h, ci, w)
            pixel = _upsample(cp, ri, h, ci, w)
        if not mask:
            return line.astype(np.float32), pixel.astype(np.float32)
        outside = (
            (line < -0.5)
            | (line > self.lines - 0.5)
            | (pixel < -0.5)
            | (pixel > self.samples - 0.5)
        )
        line = line.astype(np.float32)
        pixel = pixel.astype(np.float32)
        line[outside] = np.nan
        pixel[outside] = np.nan
        return line, pixel


def _upsample(a: np.ndarray, ri: np.ndarray, h: int, ci: np.ndarray, w: int) -> np.ndarray:
    """Bilinear from lattice values ``a`` at rows ``ri`` x cols ``ci`` to every pixel of h x w
    (separable: along columns first, then rows)."""

    def weights(idx: np.ndarray, n: int):
        pos = np.arange(n, dtype=np.float64)
        k = np.clip(np.searchsorted(idx, pos, side="right") - 1, 0, idx.size - 2)
        f = (pos - idx[k]) / (idx[k + 1] - idx[k])
        return k, f

    kc, fc = weights(ci, w)
    tmp = a[:, kc] * (1.0 - fc) + a[:, kc + 1] * fc  # (lattice rows, w)
    kr, fr = weights(ri, h)
    return tmp[kr] * (1.0 - fr)[:, None] + tmp[kr + 1] * fr[:, None]


def _lattice(n: int, k: int) -> np.ndarray:
    idx = np.arange(0, n, k, dtype=np.float64)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


def make_geocoder(
    node_lines,
    node_pixels,
    lat,
    lon,
    shape: tuple[int, int],
    crs: str = "EPSG:3413",
) -> RadarGeocoder:
    """Build the forward/inverse map of one product from its geolocation grid.

    ``node_lines``/``node_pixels`` are the lattice axes (1D), ``lat``/``lon`` the 2D grid
    (lines x pixels), ``shape`` the image (lines, samples).
    """
    from pyproj import Transformer

    node_lines = np.asarray(node_lines, dtype=np.float64)
    node_pixels = np.asarray(node_pixels, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if lat.shape != (node_lines.size, node_pixels.size) or lon.shape != lat.shape:
        raise ValueError(
            f"geolocation grid {lat.shape} does not match axes "
            f"({node_lines.size}, {node_pixels.size})"
        )
    if node_lines.size < 2 or node_pixels.size < 2:
        raise ValueError("geolocation grid needs at least 2 lines and 2 pixels")
    if np.any(np.diff(node_lines) <= 0) or np.any(np.diff(node_pixels) <= 0):
        raise ValueError("geolocation grid axes must increase strictly")
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise ValueError("geolocation grid has missing points")
    to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_map.transform(lon, lat)
    x, y = np.asarray(x), np.asarray(y)
    kl = min(3, node_lines.size - 1)
    kp = min(3, node_pixels.size - 1)
    sx = RectBivariateSpline(node_lines, node_pixels, x, kx=kl, ky=kp, s=0)
    sy = RectBivariateSpline(node_lines, node_pixels, y, kx=kl, ky=kp, s=0)
    n_l = max(2, int(np.ceil((node_lines[-1] - node_lines[0]) / TABLE_STEP_PX)) + 1)
    n_p = max(2, int(np.ceil((node_pixels[-1] - node_pixels[0]) / TABLE_STEP_PX)) + 1)
    tl = np.linspace(node_lines[0], node_lines[-1], n_l)
    tp = np.linspace(node_pixels[0], node_pixels[-1], n_p)
    table = _Table(
        l0=float(tl[0]),
        dl=float(tl[1] - tl[0]),
        p0=float(tp[0]),
        dp=float(tp[1] - tp[0]),
        x=sx(tl, tp),
        y=sy(tl, tp),
    )
    return RadarGeocoder(
        crs=crs,
        lines=int(shape[0]),
        samples=int(shape[1]),
        node_lines=node_lines,
        node_pixels=node_pixels,
        node_x=x,
        node_y=y,
        _sx=sx,
        _sy=sy,
        _table=table,
    )


def footprint_lonlat(geocoder: RadarGeocoder):
    """The image outline as a lon/lat shapely polygon (longitudes unwrapped across 180°)."""
    from pyproj import Transformer
    from shapely.geometry import Polygon

    x, y = geocoder.outline()
    to_ll = Transformer.from_crs(geocoder.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(x, y)
    lon = np.degrees(np.unwrap(np.radians(lon)))
    return Polygon(np.column_stack([lon, lat]))
