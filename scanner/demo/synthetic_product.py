"""Synthetic Sentinel-1 EW and IW GRD products: a real sample's metadata, measurement TIFFs made up.

Why: nothing in tests or the demo may download, yet the reader, the radiometry and the mosaic
must run on products that look exactly like ESA's. The generator keeps the real annotation,
calibration and noise XML of the bundled sample (optionally rescaled to a smaller grid, or moved
to the next slices of the datatake) and writes UInt16 DN so that, through those real LUTs,

    DN² = speckle · (sigma0 · A² + noise · (1 + ε_subswath))

where A is the sigmaNought LUT, noise = noiseRange · noiseAzimuth and ε a small per-sub-swath
error of the noise model (what leaves the familiar HV seams after denoising). sigma0 comes from
:func:`training.synthetic.backscatter_db` (the same caricature the training images use) drawn on
a coarse ~1 km grid over the whole datatake — so slices join seamlessly — and interpolated per
strip. Memory stays at a few strips; the full 10487 × 10708 dual-pol scene takes seconds.

Two real samples are bundled: :data:`SAMPLE` (EW GRDM 1SDH, HH+HV, Kara Sea) and
:data:`SAMPLE_IW` (IW GRDH 1SDV, Adriatic, 26102 × 16705 px at 10 m), whose metadata exists for
VV only: its VH annotation, calibration and noise are DERIVED by copying VV's with the
polarisation changed (:func:`read_sample`), so the synthetic VH shares VV's LUTs. Channels are
drawn by role: the co-pol (HH or VV) gets the caricature's HH field, the cross-pol its HV field.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import UsageError
from scanner.demo.synthetic_xml import (
    Rescale,
    annotation_bytes,
    rewrite_calibration,
    rewrite_noise,
    scale_annotation,
    shift_times,
    shifted_grid,
)
from scanner.safe.xmlparse import parse_annotation, parse_calibration, parse_noise

log = logging.getLogger(__name__)

SAMPLE = (
    Path(__file__).resolve().parent
    / "sample"
    / "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15.SAFE"
)
SAMPLE_IW = (
    Path(__file__).resolve().parent
    / "sample"
    / "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
)
LOOKS = {"EW": 10.7, "IW": 4.4}  # equivalent number of looks, GRDM / GRDH (ESA product spec)
COARSE_M = 1000.0  # resolution of the sigma0 field before interpolation
STRIP_ROWS = 256
NODATA_EDGE = 0.004  # fraction of range samples left as DN 0 at near and far range
KINDS = ("annotation", "calibration", "noise")
ORBIT_PERIOD = timedelta(days=12) / 175  # Sentinel-1: 175 orbits per 12-day repeat cycle
_ORBIT_TAGS = re.compile(
    r"(<(?:\w+:)?(absoluteOrbitNumber|orbitNumber|relativeOrbitNumber|missionDataTakeI[dD])"
    r"\b[^>]*>)(\d+)(<)"
)


@dataclass(frozen=True)
class GeoVortex:
    """A polar low at a geographic position."""

    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class LaterOrbit:
    """Make the datatake a later orbit's: ``orbits`` orbit periods later (times, absolute and
    relative orbit, datatake id + ``orbits``, names), its swath rotated about the pole by
    ``lon_deg`` of longitude. Every orbit's ground track is the previous one's rotated about the
    pole (by ~24.75° west); a caller picks the rotation that puts its storm in view. The orbit
    state vectors are left as they were (nothing reads them)."""

    orbits: int
    lon_deg: float = 0.0

    @property
    def dt(self) -> timedelta:
        return self.orbits * ORBIT_PERIOD


def _relabel(text: str, later: LaterOrbit | None) -> str:
    """Orbit numbers and datatake id of ``text`` (manifest or XML) moved ``later.orbits`` on."""
    if later is None or not later.orbits:
        return text

    def repl(m: re.Match[str]) -> str:
        n = int(m[3]) + later.orbits
        if m[2] == "relativeOrbitNumber":
            n = (int(m[3]) - 1 + later.orbits) % 175 + 1
        return f"{m[1]}{n}{m[4]}"

    return _ORBIT_TAGS.sub(repl, text)


def _orbit_part(name: str, later: LaterOrbit | None) -> tuple[str, str]:
    """(old, new) ``_046117_058549_`` of a product name: absolute orbit and datatake id moved."""
    m = re.search(r"_(\d{6})_([0-9A-F]{6})_", name)
    if later is None or not later.orbits or m is None:
        return ("", "")
    return m[0], f"_{int(m[1]) + later.orbits:06d}_{int(m[2], 16) + later.orbits:06X}_"


def _stem(t0: datetime, t1: datetime) -> str:
    return f"{t0:%Y%m%dT%H%M%S}_{t1:%Y%m%dT%H%M%S}"


def _crc(name: str, seed: int) -> str:
    return hashlib.blake2s(f"{name}:{seed}".encode(), digest_size=2).hexdigest().upper()


def write_datatake(
    dest: str | Path,
    *,
    slices: int = 1,
    scale: float = 1.0,
    vortex: GeoVortex | tuple[float, float, float] | None = None,
    land: bool = False,
    seed: int = 0,
    sample: str | Path = SAMPLE,
    zip: bool = False,  # noqa: A002 - mirrors the CLI flag
    compress: str | None = None,
    looks: float | None = None,
    cog_twins: bool = False,
    later: LaterOrbit | None = None,
) -> list[Path]:
    """Write ``slices`` consecutive products of one datatake into folder ``dest``.

    ``scale`` shrinks the grid (e.g. 1/16 → 655 × 669 pixels at 640 m), ``vortex`` =
    (lat, lon, radius_km) adds a polar low, ``land`` a bright coast, ``zip`` writes ``.zip``
    files as downloaded, ``compress`` (None|"deflate") the TIFF compression. ``looks`` sets
    the speckle's strength as an equivalent number of looks (intensity ~ Gamma(L, 1/L); default
    :data:`LOOKS` of the mode). ``cog_twins`` also writes each product's ``_COG.SAFE`` twin
    beside it (:func:`scanner.demo.cog_twin.write_cog_twin`; not with ``zip``). ``later``
    (:class:`LaterOrbit`) makes it a later orbit's datatake (``vortex`` is then placed in the
    rotated swath). Deterministic in ``seed``. Each product is written under a temporary name
    and renamed when complete. Returns the product paths, in time order.
    """
    dest = Path(dest)
    if not 0 < scale <= 1:
        raise UsageError(f"scale must be in (0, 1], got {scale}", "use e.g. 0.0625", key="scale")
    if slices < 1:
        raise UsageError(f"slices must be >= 1, got {slices}", "use 1 or more", key="slices")
    if vortex is not None and not isinstance(vortex, GeoVortex):
        vortex = GeoVortex(*map(float, vortex))
    src = read_sample(sample)
    texts, names, manifest, pols = src.texts, src.names, src.manifest, src.pols
    src_name, start, stop = src.name, src.start, src.stop
    lines0, samples0 = src.shape
    r = Rescale(lines0, samples0, max(8, round(lines0 * scale)), max(8, round(samples0 * scale)))
    # rescale once; slices differ only in tie-point positions and timestamps
    trees = {p: scale_annotation(texts[("annotation", p)], r) for p in pols}
    luts = {
        p: (
            rewrite_calibration(texts[("calibration", p)], r),
            rewrite_noise(texts[("noise", p)], r),
        )
        for p in pols
    }
    ann0 = parse_annotation(annotation_bytes(trees[pols[0]]))
    if later is not None and later.lon_deg:  # a later orbit's swath: rotated about the pole
        lon_rot = (ann0.grid.lon + later.lon_deg + 180.0) % 360.0 - 180.0
        for p in pols:
            annotation_bytes(trees[p], ann0.grid.lat, lon_rot)  # sets the tie points in place
        ann0 = parse_annotation(annotation_bytes(trees[pols[0]]))
    if looks is not None and not looks > 0:
        raise UsageError(f"looks must be > 0, got {looks}", "use e.g. 4.4 or 10.7", key="looks")
    if cog_twins and zip:
        raise UsageError("COG twins are SAFE folders, not zips", "drop zip", key="zip")
    field = _Field(ann0, r, slices, vortex, land, seed, pols,
                   looks or LOOKS.get(src.mode, LOOKS["EW"]))  # fmt: skip
    duration = stop - start
    orbit_old, orbit_new = _orbit_part(src_name, later)
    out: list[Path] = []
    for k in range(slices):
        dt = duration * k + (later.dt if later is not None else timedelta(0))
        t0, t1 = start + dt, stop + dt
        old_stem = _stem(start, stop)
        name = src_name if not dt else src_name.replace(old_stem, _stem(t0, t1))
        if orbit_old:
            name = name.replace(orbit_old, orbit_new)
        if dt:
            name = name[:-4] + _crc(name, seed)
        lat, lon = shifted_grid(ann0.grid.lat, ann0.grid.lon, ann0.grid.line, k, r.lines_new)
        files: dict[str, bytes] = {}
        rename = (old_stem.lower().replace("_", "-"), _stem(t0, t1).lower().replace("_", "-"))
        if orbit_old:  # file names carry the orbit and datatake after the times
            rename = (
                rename[0] + orbit_old.lower().replace("_", "-")[:-1],
                rename[1] + orbit_new.lower().replace("_", "-")[:-1],
            )
        for pol in pols:
            ann = annotation_bytes(trees[pol], lat, lon)
            cal, noi = luts[pol]
            for kind, data in (("annotation", ann), ("calibration", cal), ("noise", noi)):
                rel = names[(kind, pol)].replace(*rename)
                files[rel] = _relabel(shift_times(data.decode(), dt), later).encode()
        man = _relabel(_rewrite_manifest(manifest, dt, rename, k, lat, lon), later)
        target = dest / (name + (".zip" if zip else ".SAFE"))
        with atomic_path(target) as tmp:
            safe = tmp / f"{name}.SAFE" if zip else tmp
            safe.mkdir(parents=True)
            (safe / "manifest.safe").write_text(man)
            for rel, data in files.items():
                (safe / rel).parent.mkdir(parents=True, exist_ok=True)
                (safe / rel).write_bytes(data)
            for i, pol in enumerate(pols):
                rel = names[("measurement", pol)].replace(*rename)
                (safe / rel).parent.mkdir(parents=True, exist_ok=True)
                field.write_tiff(
                    safe / rel, k, pol, files, names, rename, lat, lon, seed, i, compress
                )
            if zip:
                part = tmp.with_suffix(".zip.part")
                try:
                    _zip_folder(safe, part)
                    shutil.rmtree(safe)
                    tmp.rmdir()
                    part.rename(tmp)  # atomic_path then renames it onto the final name
                finally:
                    part.unlink(missing_ok=True)
        log.info("wrote %s", target)
        out.append(target)
        if cog_twins:
            from scanner.demo.cog_twin import write_cog_twin

            log.info("wrote %s", write_cog_twin(target, dest))
    return out


def true_sigma0(
    pol: str,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    slice_index: int = 0,
    scale: float = 1.0,
    slices: int = 1,
    vortex: GeoVortex | tuple[float, float, float] | None = None,
    land: bool = False,
    seed: int = 0,
    sample: str | Path = SAMPLE,
) -> np.ndarray:
    """The speckle- and noise-free linear sigma0 that :func:`write_datatake` drew with the same
    arguments, at pixel ``rows × cols`` of slice ``slice_index`` (for round-trip tests)."""
    if vortex is not None and not isinstance(vortex, GeoVortex):
        vortex = GeoVortex(*map(float, vortex))
    src = read_sample(sample)
    data = src.texts[("annotation", src.pols[0])]
    lines0, samples0 = src.shape
    r = Rescale(lines0, samples0, max(8, round(lines0 * scale)), max(8, round(samples0 * scale)))
    ann0 = parse_annotation(annotation_bytes(scale_annotation(data, r)))
    field = _Field(ann0, r, slices, vortex, land, seed, src.pols)
    pol = {"HH": src.pols[0], "VV": src.pols[0], "HV": src.pols[1], "VH": src.pols[1]}[pol.upper()]
    rows = np.asarray(rows, dtype=np.float64) + slice_index * r.lines_new
    return field.sigma0(pol, rows, np.asarray(cols, dtype=np.float64))


@dataclass(frozen=True)
class Sample:
    """A real sample's metadata files, with any derived cross-pol twin (see :func:`read_sample`)."""

    name: str
    mode: str
    pols: tuple[str, str]  # (co, cross)
    start: datetime
    stop: datetime
    shape: tuple[int, int]
    manifest: str
    texts: dict[tuple[str, str], bytes]  # (kind, pol) → file bytes
    names: dict[tuple[str, str], str]  # (kind, pol) → path relative to the SAFE root
    derived: tuple[str, ...]  # polarisations whose XML was copied from the other one


def read_sample(sample: str | Path) -> Sample:
    """The sample's annotation, calibration and noise XML per polarisation, by the manifest.

    A polarisation the manifest lists but whose files are absent (the IW sample has VV only) is
    DERIVED from the other one of the pair: the same bytes with ``<polarisation>`` changed, under
    the manifest's file names. Its LUTs are therefore the other polarisation's, which a real
    product would not have; the geometry is the same for both in any case.
    """
    from scanner.safe.container import SafeContainer
    from scanner.safe.manifest import parse_manifest
    from scanner.safe.product import pol_pair, product_name

    path = Path(sample)
    name = product_name(path)
    c = SafeContainer(path, name)
    try:
        m = parse_manifest(c.read("manifest.safe"))
        pair = pol_pair(m.polarisations)
        if pair is None:
            raise UsageError(
                f"{name}: sample polarisations {'+'.join(m.polarisations)} are not a dual-pol pair",
                "use a 1SDH or 1SDV sample",
            )
        present = {p: all(c.resolve(m.files.get((k, p), "")) for k in KINDS) for p in pair}
        if not any(present.values()):
            raise UsageError(f"{name}: no annotation found in the sample", "pass a SAFE sample")
        have = next(p for p in pair if present[p])
        texts: dict[tuple[str, str], bytes] = {}
        names: dict[tuple[str, str], str] = {}
        for p in pair:
            for k in KINDS:
                names[(k, p)] = SafeContainer.norm(m.files[(k, p)])
                if present[p]:
                    texts[(k, p)] = c.read(m.files[(k, p)])
                else:  # derived: the other polarisation's file, relabelled
                    text = c.read(m.files[(k, have)]).decode()
                    texts[(k, p)] = text.replace(
                        f"<polarisation>{have}</polarisation>", f"<polarisation>{p}</polarisation>"
                    ).encode()
            # the sample has no TIFFs: same stem as the annotation, as ESA names them
            stem = names[("annotation", p)].rsplit("/", 1)[-1].rsplit(".", 1)[0]
            names[("measurement", p)] = f"measurement/{stem}.tiff"
        ann = parse_annotation(texts[("annotation", pair[0])])
        return Sample(
            name=name,
            mode=m.mode,
            pols=pair,
            start=m.start,
            stop=m.stop,
            shape=(ann.lines, ann.samples),
            manifest=c.read("manifest.safe").decode(),
            texts=texts,
            names=names,
            derived=tuple(p for p in pair if not present[p]),
        )
    finally:
        c.close()


def write_product(dest: str | Path, **kwargs) -> Path:
    """One product (slice 1 of the sample's datatake); see :func:`write_datatake`."""
    return write_datatake(dest, slices=1, **kwargs)[0]


def _rewrite_manifest(text: str, dt: timedelta, rename: tuple[str, str], k: int, lat, lon) -> str:
    import re

    text = shift_times(text, dt).replace(*rename)
    text = text.replace(rename[0].replace("-", ""), rename[1].replace("-", ""))
    if k:
        text = re.sub(
            r"(<s1sarl1:sliceNumber>)(\d+)(<)", lambda m: f"{m[1]}{int(m[2]) + k}{m[3]}", text
        )
    corners = [
        (lat[-1, 0], lon[-1, 0]),
        (lat[-1, -1], lon[-1, -1]),
        (lat[0, -1], lon[0, -1]),
        (lat[0, 0], lon[0, 0]),
    ]
    coords = " ".join(f"{a:.6f},{b:.6f}" for a, b in corners)
    return re.sub(r"(<gml:coordinates>)[^<]*(<)", lambda m: f"{m[1]}{coords}{m[2]}", text)


def _zip_folder(folder: Path, target: Path) -> None:
    """Zip ``folder`` as ``<name>.SAFE/…`` (TIFFs stored, XML deflated, like ESA's archives)."""
    with zipfile.ZipFile(target, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                arc = f"{folder.name}/{f.relative_to(folder).as_posix()}"
                method = zipfile.ZIP_STORED if f.suffix == ".tiff" else zipfile.ZIP_DEFLATED
                zf.write(f, arc, compress_type=method)


class _Field:
    """The smooth sigma0 field (dB) of the whole datatake on a coarse grid, and its rendering."""

    def __init__(
        self,
        ann,
        r: Rescale,
        slices: int,
        vortex: GeoVortex | None,
        land: bool,
        seed: int,
        pols: tuple[str, str] = ("HH", "HV"),
        looks: float = LOOKS["EW"],
    ):
        from training.synthetic import Vortex as PxVortex
        from training.synthetic import backscatter_db

        self.ann = ann
        self.lines, self.samples = r.lines_new, r.samples_new
        self.step_l = COARSE_M / ann.line_spacing_m  # full-res lines per coarse cell
        self.step_p = COARSE_M / ann.pixel_spacing_m
        n_l = int(np.ceil((self.lines * slices - 1) / self.step_l)) + 2
        n_p = int(np.ceil((self.samples - 1) / self.step_p)) + 2
        px_vortex = None
        if vortex is not None:
            row, col = _locate(ann.grid, self.lines, slices, vortex)
            px_vortex = PxVortex(
                row / self.step_l, col / self.step_p, vortex.radius_km * 1000 / COARSE_M
            )
        rng = np.random.default_rng([seed, 4])
        hh, hv = backscatter_db(
            (n_l, n_p), COARSE_M, rng, vortex=px_vortex, land=land, swath_steps=False
        )
        self.db = {pols[0]: hh, pols[1]: hv}  # by role: co-pol, cross-pol
        self.looks = looks
        # noise-model error per (pol, sub-swath): own stream, so adding a vortex changes nothing else
        self.eps = np.random.default_rng([seed, 5]).uniform(-0.06, 0.06, size=(2, 5))

    def sigma0(self, pol: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of the coarse dB field at global (rows, cols) → linear."""
        c = self.db[pol]
        fr, fc = rows / self.step_l, cols / self.step_p
        i0 = np.clip(np.floor(fr).astype(int), 0, c.shape[0] - 2)
        j0 = np.clip(np.floor(fc).astype(int), 0, c.shape[1] - 2)
        wr = (fr - i0).astype(np.float32)[:, None]
        wc = (fc - j0).astype(np.float32)[None, :]
        rows_i = c[i0] * (1 - wr) + c[i0 + 1] * wr
        db = rows_i[:, j0] * (1 - wc) + rows_i[:, j0 + 1] * wc
        return np.power(np.float32(10.0), db / np.float32(10.0))

    def write_tiff(self, path, k, pol, files, names, rename, lat, lon, seed, ipol, compress):
        import rasterio
        from rasterio.control import GroundControlPoint
        from rasterio.windows import Window

        from scanner.safe.lut import azimuth_noise

        cal = parse_calibration(files[names[("calibration", pol)].replace(*rename)])
        noise = parse_noise(files[names[("noise", pol)].replace(*rename)])
        cols = np.arange(self.samples, dtype=np.float64)
        a_cols = cal.along_pixels(cols).astype(np.float32)
        n_cols = noise.range.along_pixels(cols).astype(np.float32)
        # sub-swath of each column (from the azimuth noise blocks' range extents)
        swath = np.zeros(self.samples, dtype=int)
        for b in noise.azimuth:
            if b.swath[-1:].isdigit():
                swath[b.first_sample : b.last_sample + 1] = int(b.swath[-1]) - 1
        eps = np.float32(1.0) + self.eps[ipol][np.clip(swath, 0, 4)].astype(np.float32)[None, :]
        edge = int(round(NODATA_EDGE * self.samples))
        ann = self.ann
        gcps = [
            GroundControlPoint(
                row=float(li), col=float(pi), x=float(lon[i, j]), y=float(lat[i, j]), z=0.0
            )
            for i, li in enumerate(ann.grid.line)
            for j, pi in enumerate(ann.grid.pixel)
        ]
        profile = dict(
            driver="GTiff",
            width=self.samples,
            height=self.lines,
            count=1,
            dtype="uint16",
            gcps=gcps,
            crs="EPSG:4326",
        )
        if compress:
            profile.update(compress=compress, tiled=False, blockysize=16)
        with rasterio.open(path, "w", **profile) as dst:
            for s, r0 in enumerate(range(0, self.lines, STRIP_ROWS)):
                rows = np.arange(r0, min(r0 + STRIP_ROWS, self.lines), dtype=np.float64)
                rng = np.random.default_rng([seed, k, ipol, s])
                a = cal.along_lines(a_cols, rows)
                n = noise.range.along_lines(n_cols, rows)
                if noise.azimuth:
                    n *= azimuth_noise(noise.azimuth, rows, cols).astype(np.float32)
                power = self.sigma0(pol, rows + k * self.lines, cols) * np.square(a) + n * eps
                power *= rng.standard_gamma(
                    self.looks, size=power.shape, dtype=np.float32
                ) / np.float32(self.looks)
                dn = np.clip(np.rint(np.sqrt(power)), 1, 65535).astype(np.uint16)
                if edge:
                    dn[:, :edge] = 0
                    dn[:, -edge:] = 0
                dst.write(dn, 1, window=Window(0, r0, self.samples, len(rows)))


def _locate(grid, lines: int, slices: int, vortex: GeoVortex) -> tuple[float, float]:
    """(global line, pixel) of a lat/lon over the datatake, via the tie points in EPSG:3413."""
    from pyproj import Transformer
    from scipy.interpolate import LinearNDInterpolator

    fwd = Transformer.from_crs("EPSG:4326", "EPSG:3413", always_xy=True)
    xs, ys, ls, ps = [], [], [], []
    for k in range(slices):
        lat, lon = shifted_grid(grid.lat, grid.lon, grid.line, k, lines)
        x, y = fwd.transform(lon, lat)
        xs.append(np.ravel(x))
        ys.append(np.ravel(y))
        ls.append(np.repeat(grid.line + k * lines, len(grid.pixel)).astype(float))
        ps.append(np.tile(grid.pixel, len(grid.line)).astype(float))
    interp = LinearNDInterpolator(
        np.column_stack([np.concatenate(xs), np.concatenate(ys)]),
        np.column_stack([np.concatenate(ls), np.concatenate(ps)]),
    )
    vx, vy = fwd.transform(vortex.lon, vortex.lat)
    line, pixel = np.ravel(interp(vx, vy))[:2]
    if not np.isfinite(line):
        raise UsageError(
            f"vortex at {vortex.lat}, {vortex.lon} is outside the synthetic datatake",
            "choose a position inside the sample's footprint (76.9–82.0°N, 75–103°E) or add slices",
        )
    return float(line), float(pixel)
