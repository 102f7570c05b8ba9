# %% [markdown]
# # A scan archive as a data cube
#
# Open a scan output folder as a lazy xarray Dataset (``open_scan``) and its GeoPackage as
# GeoDataFrames (``open_detections``); count polar lows per day, map the maximum probability over
# the winter, and look at one detection's Grad-CAM over its probability.
#
#     python cli.py scan --source demo --out demo-output --sequential
#     python docs/example_datacube.py demo-output figures/
#
# Runs as a script or cell by cell (``# %%``) in VS Code / Jupytext. With the demo weights the
# numbers are as synthetic as the demo scene.

# %%
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd()
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scanner import open_detections, open_scan  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("demo-output")
FIGURES = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("figures")
FIGURES.mkdir(parents=True, exist_ok=True)

ds = open_scan(OUT)  # lazy: nothing but headers read yet
vectors = open_detections(OUT)
print(ds)

# %% [markdown]
# ## Polar lows per day
# A detection is a window whose probability is at or above the model's threshold (the
# ``detections`` layer holds exactly those). Days are UTC days of the mosaic's sensing start.

# %%
windows = vectors.windows
hits = windows[windows["probability"] >= windows["threshold"]]
per_day = hits.groupby(hits["start"].dt.strftime("%Y-%m-%d")).size().rename("polar_lows")
print(per_day.to_string())
assert per_day.sum() == len(vectors.detections), "the detections layer disagrees"

# %% [markdown]
# ## Maximum probability over time
# ``max("time")`` skips NaN (outside each night's swath); dask reads one block of one mosaic at a
# time, so this works for a whole winter.

# %%
peak = ds.probability.max("time").compute()
left, bottom, right, top = ds.rio.bounds()
fig, ax = plt.subplots(figsize=(8, 6))
im = ax.imshow(peak.values, extent=(left, right, bottom, top), vmin=0, vmax=1, cmap="magma")
vectors.detections.boundary.plot(ax=ax, color="cyan", linewidth=0.8)
fig.colorbar(im, ax=ax, label="maximum probability")
ax.set_title(f"maximum probability over {ds.sizes['time']} mosaic(s)")
ax.set_xlabel(f"x ({ds.rio.crs.to_string()}, m)")
ax.set_ylabel("y (m)")
fig.savefig(FIGURES / "max_probability.png", dpi=100, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ## One detection's Grad-CAM over its probability
# The strongest detection: its mosaic's time step, cut to its window (plus a margin).

# %%
best = vectors.detections.sort_values("probability", ascending=False).iloc[0]
step = ds.sel(time=ds.time[list(ds.mosaic_id.values).index(best["mosaic_id"])])
x0, y0, x1, y1 = best.geometry.bounds
margin = 0.25 * (x1 - x0)
cut = step.sel(x=slice(x0 - margin, x1 + margin), y=slice(y1 + margin, y0 - margin)).compute()
extent = (
    float(cut.x.min()) - ds.rio.resolution()[0] / 2,
    float(cut.x.max()) + ds.rio.resolution()[0] / 2,
    float(cut.y.min()) + ds.rio.resolution()[1] / 2,
    float(cut.y.max()) - ds.rio.resolution()[1] / 2,
)
fig, ax = plt.subplots(figsize=(7, 6))
im = ax.imshow(cut.probability.values, extent=extent, vmin=0, vmax=1, cmap="gray")
if "gradcam" in cut:
    cam = ax.imshow(cut.gradcam.values, extent=extent, vmin=0, vmax=1, cmap="jet", alpha=0.45)
    fig.colorbar(cam, ax=ax, label="Grad-CAM")
ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="cyan", linewidth=1)
ax.set_title(f"{best['mosaic_id']} {best['window_id']}: p = {best['probability']:.3f}")
fig.savefig(FIGURES / "detection_gradcam.png", dpi=100, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ## The same place before it became RGB: σ⁰ in dB
# ``open_sigma0`` reads one product through the mosaic's own code path (the RGB mosaic is a colour
# stretch of exactly these values). The scan record knows where each processed product lies.

# %%
from scanner import open_sigma0  # noqa: E402
from scanner.record import Record  # noqa: E402

products = []
if (OUT / "record.sqlite").is_file():
    with Record.open(OUT, create=False) as rec:
        products = [
            r.local_path
            for r in rec.scenes(status="processed")
            if r.name in str(best["scenes"]) and r.local_path and Path(r.local_path).exists()
        ]
if products:
    s0 = open_sigma0(products[0], resolution=ds.rio.resolution()[0], crs=ds.rio.crs.to_string())
    near = s0.sel(x=slice(x0 - margin, x1 + margin), y=slice(y1 + margin, y0 - margin))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, name in zip(axes, list(near.data_vars), strict=True):
        im = near[name].plot.imshow(ax=ax, cmap="gray", add_colorbar=False)
        fig.colorbar(im, ax=ax, label=f"{near[name].attrs['polarisation']} σ⁰ (dB)")
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="cyan", linewidth=1)
        ax.set_title(name)
    fig.suptitle(Path(products[0]).name, fontsize=9)
    fig.savefig(FIGURES / "detection_sigma0.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
print(f"figures in {FIGURES}")
