"""The morning report's pictures (matplotlib, Agg): the night's map and one quick-look per low.

Everything is drawn in the output CRS (EPSG:3413 by default) with a computed graticule, so no
coastline or tile is downloaded. Files are PNG, written where the caller says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

QUICKLOOK_MARGIN = 0.6  # quick-look extends this fraction of the footprint size on each side


def _figure(size=(7.5, 7.5)):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=size, dpi=100)


def graticule(ax, crs: Any, bounds: tuple[float, float, float, float]) -> None:
    """Parallels every 2°/5° and meridians every 10°/20°, projected into ``crs``, labelled."""
    from pyproj import Transformer

    fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x0, y0, x1, y1 = bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, 25), np.linspace(y0, y1, 25))
    lon, lat = inv.transform(gx, gy)
    lat_lo, lat_hi = np.nanmin(lat), min(np.nanmax(lat), 89.9)
    step_lat = 2 if lat_hi - lat_lo < 15 else 5
    step_lon = 10 if (np.nanmax(lon) - np.nanmin(lon)) < 90 else 20
    kw = {"color": "0.55", "lw": 0.5, "ls": ":", "zorder": 1}
    for la in np.arange(np.floor(lat_lo / step_lat) * step_lat, lat_hi + step_lat, step_lat):
        xs, ys = fwd.transform(np.linspace(-180, 180, 721), np.full(721, la))
        ax.plot(xs, ys, **kw)
        inside = np.flatnonzero((xs > x0) & (xs < x1) & (ys > y0) & (ys < y1))
        if inside.size:
            i = inside[len(inside) // 2]
            ax.annotate(f"{la:g}°N", (xs[i], ys[i]), fontsize=7, color="0.4", zorder=1)
    for lo in np.arange(-180, 180, step_lon):
        xs, ys = fwd.transform(np.full(200, lo), np.linspace(max(lat_lo - 5, 40), 90, 200))
        ax.plot(xs, ys, **kw)
        inside = np.flatnonzero((xs > x0) & (xs < x1) & (ys > y0) & (ys < y1))
        if inside.size:
            i = inside[0]
            ax.annotate(f"{lo:g}°E", (xs[i], ys[i]), fontsize=7, color="0.4", zorder=1)


def _extent(geoms, margin: float = 0.15) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = np.array([g.bounds for g in geoms]).T
    x0, y0, x1, y1 = x0.min(), y0.min(), x1.max(), y1.max()
    pad = max(x1 - x0, y1 - y0, 200_000.0) * margin
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def plot_night(path: Path, crs: Any, footprints, lows, tracks) -> Path:
    """Scene footprints (outlines), polar lows (points, labelled), tracks (arrows)."""
    plt, fig, ax = _figure()
    geoms = [*footprints.geometry, *lows.geometry, *tracks.geometry]
    if not geoms:
        ax.text(0.5, 0.5, "no mosaic this run", ha="center", transform=ax.transAxes)
    else:
        bounds = _extent(geoms)
        graticule(ax, crs, bounds)
        for g in footprints.geometry:
            for part in getattr(g, "geoms", [g]):
                ax.plot(*part.exterior.xy, color="tab:blue", lw=1.0, zorder=2)
        for line, tid in zip(tracks.geometry, tracks["track_id"], strict=True):
            xs, ys = line.xy
            ax.plot(xs, ys, color="navy", lw=1.5, zorder=3)
            ax.annotate("", xy=(xs[-1], ys[-1]), xytext=(xs[-2], ys[-2]), zorder=3,
                        arrowprops={"arrowstyle": "-|>", "color": "navy", "lw": 1.5})  # fmt: skip
            ax.annotate(tid, (xs[-1], ys[-1]), fontsize=7, color="navy", xytext=(4, -10),
                        textcoords="offset points")  # fmt: skip
        for pt, p, name in zip(lows.geometry, lows["max_probability"], lows["label"], strict=True):
            ax.scatter([pt.x], [pt.y], s=60, c=[[0.85, 0.1, 0.1]], edgecolors="k", zorder=4)
            ax.annotate(f"{name}  p={p:.2f}", (pt.x, pt.y), xytext=(6, 4), fontsize=8,
                        textcoords="offset points", zorder=5)  # fmt: skip
        ax.set_xlim(bounds[0], bounds[2])
        ax.set_ylim(bounds[1], bounds[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("the night: mosaics (blue), polar lows (red), tracks (arrows)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_quicklook(path: Path, rgb_path: Path, gradcam_path: Path | None, footprint, centre,
                   title: str) -> Path:  # fmt: skip
    """The RGB mosaic around ``footprint`` (in the raster's CRS), its Grad-CAM contours, the
    crops' outline and the centre estimate."""
    import rasterio
    from rasterio.windows import from_bounds

    x0, y0, x1, y1 = footprint.bounds
    pad = max(x1 - x0, y1 - y0) * QUICKLOOK_MARGIN
    box = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    with rasterio.open(rgb_path) as ds:
        win = from_bounds(*box, transform=ds.transform).round_offsets().round_lengths()
        rgb = ds.read(window=win, boundless=True, fill_value=0)
        extent = rasterio.windows.bounds(win, ds.transform)
    plt, fig, ax = _figure((4.5, 4.5))
    img = np.moveaxis(rgb, 0, -1)
    ext = (extent[0], extent[2], extent[1], extent[3])
    ax.imshow(img, extent=ext, interpolation="nearest")
    if gradcam_path is not None and Path(gradcam_path).exists():
        with rasterio.open(gradcam_path) as ds:
            cam = ds.read(1, window=win, boundless=True, fill_value=np.nan)
        if np.isfinite(cam).any() and np.nanmax(cam) > 0:
            peak = float(np.nanmax(cam))
            ys = np.linspace(ext[3], ext[2], cam.shape[0])
            xs = np.linspace(ext[0], ext[1], cam.shape[1])
            levels = [peak * f for f in (0.3, 0.6, 0.9)]
            ax.contour(xs, ys, np.nan_to_num(cam, nan=0.0), levels=levels,
                       colors=["gold", "orange", "red"], linewidths=1.0)  # fmt: skip
    for part in getattr(footprint, "geoms", [footprint]):
        ax.plot(*part.exterior.xy, color="cyan", lw=1.2, ls="--")
    ax.scatter([centre[0]], [centre[1]], marker="+", s=120, c="red", zorder=5)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
