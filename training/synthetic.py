"""Synthetic SAR-like images with and without a polar-low signature, seeded.

Why: the real dataset is 0.5 GB behind a download, and tests, demo weights and the scanner's
fake scenes need images that look like Sentinel-1 EW backscatter in the dataset's RGB
convention (R = G = HV dB, B = HH dB; :mod:`polarscan.common.rgb`). The fields here are *smooth* sigma0
in dB (no speckle); :func:`speckle` adds multiplicative noise when a caller wants it.

Physics is caricatured, not simulated: a unitless "wind anomaly" field (multi-scale noise plus
features) drives both channels — HH about -14..-22 dB with a range gradient (columns are the
range direction, near range on the left), HV about -24..-30 dB sitting on a noise floor, land
bright in both, HV steps between the five EW sub-swaths. A polar low is a logarithmic spiral
(or comma) of bright, wind-roughened arms around a calm dark eye.
"""

from __future__ import annotations

import csv
import datetime as dt
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polarscan.common.rgb import RGBRecipe, db_to_rgb

#: dB per unit of the wind anomaly field.
HH_GAIN_DB = 2.0
HV_GAIN_DB = 1.6
#: Cross-pol noise floor (linear power is added, so HV never drops far below it).
HV_FLOOR_DB = -30.0
#: Residual speckle of :func:`make_image` (equivalent number of looks). Real 2 km multilooks
#: average far more looks; a visible residual keeps the images from being unnaturally clean.
IMAGE_LOOKS = 40.0


@dataclass(frozen=True)
class Vortex:
    """A polar-low signature: centre (row, col) and outer radius, in pixels.

    ``arms`` is the number of spiral bands; ``clockwise`` flips the rotation sense (cyclones
    turn anticlockwise in the Northern hemisphere seen from above).
    """

    row: float
    col: float
    radius_px: float
    arms: float = 2.0
    clockwise: bool = False


def _upsample_weights(n_out: int, n_coarse: int, cell: float) -> np.ndarray:
    """(n_out, n_coarse) Gaussian interpolation weights, rows summing to 1 (separable, cheap)."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) / cell + 1.0
    d = pos[:, None] - np.arange(n_coarse, dtype=np.float32)[None, :]
    wts = np.exp(-0.5 * (d / 0.7) ** 2) * (np.abs(d) < 3)
    return (wts / wts.sum(axis=1, keepdims=True)).astype(np.float32)


def smooth_noise(shape: tuple[int, int], cell_px: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance smooth noise with features about ``cell_px`` pixels across.

    Drawn on a coarse grid and upsampled by two small matrix products, so the cost does not
    grow with the feature size (full-swath shapes stay cheap).
    """
    h, w = shape
    cell = max(float(cell_px), 1.0)
    ny, nx = int(np.ceil(h / cell)) + 3, int(np.ceil(w / cell)) + 3
    coarse = rng.standard_normal((ny, nx)).astype(np.float32)
    out = _upsample_weights(h, ny, cell) @ coarse @ _upsample_weights(w, nx, cell).T
    std = float(out.std()) or 1.0
    return ((out - out.mean()) / std).astype(np.float32)


def _wind_texture(shape: tuple[int, int], pixel_m: float, rng: np.random.Generator) -> np.ndarray:
    """Wind-driven roughness: synoptic (~300 km), meso (~60 km) and cell (~12 km) scales."""
    field = np.zeros(shape, np.float32)
    for scale_km, amp in ((300.0, 0.6), (60.0, 0.45), (12.0, 0.25)):
        field += amp * smooth_noise(shape, scale_km * 1000.0 / pixel_m, rng)
    return field


def vortex_field(shape: tuple[int, int], vortex: Vortex, rng: np.random.Generator) -> np.ndarray:
    """Wind anomaly of a polar low: spiral arms (bright), broad wind-up, calm eye (dark)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = yy - vortex.row, xx - vortex.col
    r = np.hypot(dy, dx) / np.float32(vortex.radius_px)
    theta = np.arctan2(dy, dx)
    sense = 1.0 if vortex.clockwise else -1.0
    tightness = rng.uniform(2.0, 3.5)
    phase = vortex.arms * theta + sense * tightness * np.log(np.maximum(r, 1e-3)) * vortex.arms
    phase += rng.uniform(0, 2 * np.pi)
    arm = ((1.0 + np.cos(phase)) / 2.0) ** 2
    envelope = (1.0 - np.exp(-((r / 0.18) ** 2))) * np.exp(-((r / 0.85) ** 2))
    comma = 0.55 + 0.45 * np.cos(theta - rng.uniform(-np.pi, np.pi))  # one side stronger
    eye = np.exp(-((r / 0.12) ** 2))
    field = 3.0 * arm * envelope * comma + 0.8 * envelope - 2.2 * eye
    return field.astype(np.float32)


def front_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A look-alike: a curved front — a wind step with a bright convergence line."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    across = (yy - cy) * np.cos(ang) - (xx - cx) * np.sin(ang)
    along = (yy - cy) * np.sin(ang) + (xx - cx) * np.cos(ang)
    d = across + rng.uniform(-1.5, 1.5) * along**2 / max(h, w)  # gently curved
    width = rng.uniform(0.02, 0.05) * max(h, w)
    step = rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.6) * np.tanh(d / (2 * width))
    line = rng.uniform(1.5, 2.8) * np.exp(-((d / width) ** 2))
    return (step + line).astype(np.float32)


def land_mask(shape: tuple[int, int], pixel_m: float, rng: np.random.Generator) -> np.ndarray:
    """A coastline entering from one random side: True on land (10-35 % of the image)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = rng.integers(4)
    ramp = [xx / w, 1 - xx / w, yy / h, 1 - yy / h][side]  # 1 at the land side
    relief = ramp * 3.0 + 0.5 * smooth_noise(shape, 80_000.0 / pixel_m, rng)
    relief += 0.2 * smooth_noise(shape, 15_000.0 / pixel_m, rng)
    frac = rng.uniform(0.10, 0.35)
    return relief > np.quantile(relief, 1.0 - frac)


def backscatter_db(
    shape: tuple[int, int],
    pixel_m: float,
    rng: np.random.Generator,
    *,
    vortex: Vortex | None = None,
    land: bool = False,
    swath_steps: bool = True,
    front: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth HH and HV sigma0 in dB (float32, no speckle) over sea, optionally with features.

    Columns are range (near range left: HH falls about 6 dB across the swath). ``vortex`` adds a
    polar low; ``land`` a bright coast; ``swath_steps`` five vertical HV bands with offsets of a
    fraction of a dB (the EW sub-swath seams); ``front`` a frontal look-alike line.
    """
    h, w = shape
    wind = _wind_texture(shape, pixel_m, rng) + np.float32(rng.uniform(-0.5, 0.5))
    if front:
        wind += front_field(shape, rng)
    if vortex is not None:
        wind += vortex_field(shape, vortex, rng)
    x = (np.arange(w, dtype=np.float32) / max(w - 1, 1))[None, :]
    hh = -15.0 - 6.0 * x + HH_GAIN_DB * wind
    hv_signal = -31.0 - 1.0 * x + HV_GAIN_DB * wind
    hv = 10.0 * np.log10(10.0 ** (hv_signal / 10.0) + 10.0 ** (HV_FLOOR_DB / 10.0))
    if swath_steps:
        edges = np.sort(rng.uniform(0.15, 0.85, 4)) if w > 5 else np.array([0.2, 0.4, 0.6, 0.8])
        band = np.searchsorted(edges * w, np.arange(w), side="right")
        offsets = rng.uniform(-1.2, 1.2, 5).astype(np.float32)
        hv = hv + offsets[band][None, :]
        hh = hh + 0.15 * offsets[band][None, :]
    if land:
        mask = land_mask(shape, pixel_m, rng)
        relief = smooth_noise(shape, 20_000.0 / pixel_m, rng)
        hh = np.where(mask, -9.0 + 2.0 * relief, hh)
        hv = np.where(mask, -17.0 + 2.0 * relief, hv)
    return hh.astype(np.float32), hv.astype(np.float32)


def speckle(sigma0_linear: np.ndarray, looks: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative speckle: sigma0 times gamma noise of mean 1 and ``looks`` looks."""
    if looks <= 0:
        raise ValueError(f"looks must be positive, got {looks}")
    noise = rng.gamma(shape=looks, scale=1.0 / looks, size=np.shape(sigma0_linear))
    return (np.asarray(sigma0_linear, dtype=np.float32) * noise.astype(np.float32)).astype(
        np.float32
    )


def random_vortex(size: int, pixel_m: float, rng: np.random.Generator) -> Vortex:
    """A vortex of radius 100-300 km whose centre lies well inside the central 2/3 crop."""
    radius = rng.uniform(100_000.0, 300_000.0) / pixel_m
    lo, hi = size / 6 + size / 12, size * 5 / 6 - size / 12
    return Vortex(
        row=float(rng.uniform(lo, hi)),
        col=float(rng.uniform(lo, hi)),
        radius_px=float(radius),
        arms=float(rng.choice([1.0, 2.0, 3.0])),
        clockwise=bool(rng.random() < 0.2),
    )


def make_image(
    rng: np.random.Generator,
    size: int = 192,
    *,
    positive: bool,
    pixel_m: float = 2000.0,
    recipe: RGBRecipe | None = None,
) -> tuple[np.ndarray, Vortex | None]:
    """One (size, size, 3) uint8 image in the dataset's RGB convention, with speckle.

    Positives carry a vortex of radius 100-300 km (at ``pixel_m``) whose centre lies inside the
    central crop — the model only sees the central 2/3 of its input (e.g. 128 of 192 px), so a
    centre outside it would be a label the model cannot see. Negatives are not just empty sea:
    about half carry a front, a third land, all HV sub-swath steps — hard look-alikes so the
    task is not trivial. Positives get land and fronts too, less often, so neither is a cue.
    """
    vortex = random_vortex(size, pixel_m, rng) if positive else None
    front = rng.random() < (0.2 if positive else 0.5)
    land = rng.random() < (0.25 if positive else 0.35)
    hh, hv = backscatter_db(
        (size, size), pixel_m, rng, vortex=vortex, land=land, swath_steps=True, front=front
    )
    hh = 10.0 * np.log10(speckle(10.0 ** (hh / 10.0), IMAGE_LOOKS, rng))
    hv = 10.0 * np.log10(speckle(10.0 ** (hv / 10.0), IMAGE_LOOKS, rng))
    return db_to_rgb(hh, hv, recipe), vortex


def _file_name(fid: str, start: dt.datetime, stop: dt.datetime) -> str:
    fmt = "%Y%m%dT%H%M%S"
    return f"{fid}_{start.strftime(fmt)}_{stop.strftime(fmt)}_mos_rgb.png"


def write_dataset(
    root: str | Path,
    *,
    n_pos: int,
    n_neg: int,
    size: int = 192,
    seed: int = 0,
    split: str = "train",
    pixel_m: float = 2000.0,
) -> Path:
    """Write ``root/<split>/{pos,neg}/*.png`` named like the real dataset, plus ``vortices.csv``.

    Names are ``<id6>_<start>_<stop>_mos_rgb.png``; footprint ids recur across dates (about
    four images per id, like the real dataset's one positive and several negatives), so grouped
    splits can be tested. Returns ``root/<split>``. Deterministic in (seed, split).
    """
    from PIL import Image

    out = Path(root) / split
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    n_ids = max(1, (n_pos + n_neg) // 4)
    ids = sorted({f"{v:06x}" for v in rng.integers(0, 16**6, n_ids * 2)})[:n_ids]
    rng.shuffle(ids)
    epoch = dt.datetime(2018, 1, 1)
    rows = []
    used: set[str] = set()
    for label, count in (("pos", n_pos), ("neg", n_neg)):
        (out / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            fid = ids[(i if label == "pos" else i + n_pos) % n_ids]
            while True:
                start = epoch + dt.timedelta(seconds=int(rng.integers(0, 4 * 365 * 86400)))
                stop = start + dt.timedelta(seconds=int(rng.integers(120, 600)))
                name = _file_name(fid, start, stop)
                if name not in used:
                    used.add(name)
                    break
            img, vortex = make_image(rng, size, positive=label == "pos", pixel_m=pixel_m)
            Image.fromarray(img).save(out / label / name)
            if vortex is not None:
                rows.append((name, vortex.row, vortex.col, vortex.radius_px))
    with open(out / "vortices.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "row", "col", "radius_px"])
        writer.writerows((n, f"{r:.2f}", f"{c:.2f}", f"{rad:.2f}") for n, r, c, rad in rows)
    return out
