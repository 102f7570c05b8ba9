"""``open_product``: one Sentinel-1 EW or IW GRD dual-pol product (SAFE folder or zip, read
in place; COG twins too).

Supported: modes EW (five sub-swaths, 40 m GRDM / 25 m GRDH) and IW (three sub-swaths, 10 m
GRDH / 40 m GRDM), polarisation pairs HH+HV (``1SDH``) and VV+VH (``1SDV``). Channels are used by
role: :attr:`Product.co_pol` (HH or VV) and :attr:`Product.cross_pol` (HV or VH).

Validation happens at open so a bad product fails before any work is spent on it: wrong mode
(SM S1–S6, WV), product type (SLC, OCN) or polarisations (single-pol 1SSH/1SSV), missing manifest/annotation/calibration/noise/measurement, corrupt zip, or a
measurement TIFF whose size disagrees with its annotation → :class:`UsageError` naming the
product and the file.
"""

from __future__ import annotations

import logging
import re
import warnings
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polarscan.common.errors import ProcessingError, UsageError
from polarscan.common.meter import current_meter
from scanner.access.eodata import is_remote
from scanner.safe.container import SafeContainer
from scanner.safe.lut import VectorLut
from scanner.safe.manifest import Manifest, parse_manifest
from scanner.safe.tiff_bytes import BlockLog, Level
from scanner.safe.xmlparse import (
    Annotation,
    GeolocationGrid,
    NoiseLuts,
    XmlError,
    parse_annotation,
    parse_calibration,
    parse_noise,
)
from scanner.sources.base import NAME_RE

if TYPE_CHECKING:
    from rasterio.windows import Window
    from shapely.geometry import Polygon

SUPPORTED_MODES = ("EW", "IW")
POL_PAIRS = (("HH", "HV"), ("VV", "VH"))
"""Supported dual-pol pairs, (co-pol, cross-pol)."""
REQUIRED_POLS = POL_PAIRS[0]  # kept for callers of the EW-only reader; see Product.pol_pair
log = logging.getLogger(__name__)

_SUPPORTED = "Sentinel-1 EW or IW GRD dual-pol products (HH+HV, 1SDH, or VV+VH, 1SDV)"
_KIND_PATTERNS = {  # fallback when the manifest does not list a file
    "annotation": r"annotation/s1[a-d]-(?:ew|iw)\d?-grd-{pol}-[^/]*\.xml",
    "calibration": r"annotation/calibration/calibration-s1[a-d]-(?:ew|iw)\d?-grd-{pol}-[^/]*\.xml",
    "noise": r"annotation/calibration/noise-s1[a-d]-(?:ew|iw)\d?-grd-{pol}-[^/]*\.xml",
    "measurement": r"measurement/s1[a-d]-(?:ew|iw)\d?-grd-{pol}-[^/]*\.tiff?",
}
_NAME_POLS = {
    "DH": ("HH", "HV"),
    "DV": ("VV", "VH"),
    "SH": ("HH",),
    "SV": ("VV",),
    "HH": ("HH",),
    "VV": ("VV",),
    "HV": ("HV",),
    "VH": ("VH",),
}


def product_name(path: Path) -> str:
    """``S1A_EW_GRDM_…_BB15`` from a ``.SAFE`` folder or ``.zip`` path."""
    name = path.name
    for suffix in (".zip", ".ZIP", ".SAFE", ".safe"):
        name = name.removesuffix(suffix)
    return name


def _reject(name: str, mode: str, pols: tuple[str, ...], what: str) -> UsageError:
    return UsageError(
        f"{name}: {what} mode {mode}, polarisations {'+'.join(pols) or 'none'}; "
        f"polarscan reads only {_SUPPORTED}",
        "select EW or IW GRD products with polarisations HH&HV or VV&VH",
    )


def pol_pair(pols: tuple[str, ...] | list[str]) -> tuple[str, str] | None:
    """(co, cross) of a supported dual-pol set in any order, else None."""
    got = set(p.upper() for p in pols)
    return next((pair for pair in POL_PAIRS if set(pair) == got and len(pols) == 2), None)


def is_supported(mode: str, product_type: str, pols: tuple[str, ...]) -> bool:
    return (
        mode.upper() in SUPPORTED_MODES
        and product_type.upper() == "GRD"
        and pol_pair(pols) is not None
    )


def check_name(name: str) -> None:
    """Reject from the product name alone (fast, before reading anything) when it is standard."""
    m = NAME_RE.match(name)
    if m is None:
        return
    mode, pols = m["mode"].upper(), _NAME_POLS.get(m["pol"].upper(), ())
    if not is_supported(mode, m["ptype"], pols):
        raise _reject(
            name, mode, pols, f"{m['ptype'].upper()}{m['res'].upper()} product, name says"
        )


class Product:
    """An opened product. Metadata is parsed eagerly from the first annotation; LUTs lazily."""

    def __init__(self, path: Path, container: SafeContainer, manifest: Manifest) -> None:
        self.path = path
        self.name = product_name(path)
        self._c = container
        self._m = manifest
        self._files: dict[tuple[str, str], str] = {}
        self._rasters: dict[str, Any] = {}
        self._annotations: dict[str, Annotation] = {}
        self._luts: dict[tuple[str, str], Any] = {}
        #: (pol, overview factor) → ``None`` if that overview passed the radiometry check,
        #: else why not (:func:`scanner.safe.radiometry.overview_for`)
        self.overview_checks: dict[tuple[str, int], str | None] = {}
        # opened in a metered scope (reading in place): the blocks read, per (file, overview
        # level), so that what GDAL fetched is estimated into that meter at close
        self._meter = current_meter()
        self._blocks = BlockLog()
        self._levels: dict[str, Level] = {}  # key of _rasters → (file, overview level)

    # --- identity -------------------------------------------------------------------------
    @property
    def mission(self) -> str:
        """``S1A`` | ``S1B`` | ``S1C`` …"""
        return self._m.mission

    @property
    def mode(self) -> str:
        return self._m.mode

    @property
    def polarisations(self) -> tuple[str, ...]:
        """Sorted: ``("HH", "HV")`` or ``("VH", "VV")``; see :attr:`pol_pair` for roles."""
        return tuple(sorted(self._m.polarisations))

    @property
    def pol_pair(self) -> tuple[str, str]:
        """(co-pol, cross-pol): ``("HH", "HV")`` or ``("VV", "VH")``."""
        pair = pol_pair(self._m.polarisations)
        if pair is None:  # open_product refuses these; only a hand-made Product gets here
            raise UsageError(
                f"{self.name}: polarisations {'+'.join(self.polarisations)} are not a supported "
                "dual-pol pair",
                "use a 1SDH (HH+HV) or 1SDV (VV+VH) product",
            )
        return pair

    @property
    def co_pol(self) -> str:
        """``HH`` or ``VV``."""
        return self.pol_pair[0]

    @property
    def cross_pol(self) -> str:
        """``HV`` or ``VH``."""
        return self.pol_pair[1]

    @property
    def abs_orbit(self) -> int:
        return self._m.abs_orbit

    @property
    def datatake_id(self) -> str:
        """Six hex digits, as in the product name (``058549``)."""
        return self._m.datatake_id

    @property
    def pass_direction(self) -> str:
        """``ASCENDING`` | ``DESCENDING``."""
        return self._m.pass_direction

    @property
    def ipf_version(self) -> str:
        return self._m.ipf_version

    @property
    def start(self) -> datetime:
        """Sensing start, timezone-aware UTC."""
        return self._m.start

    @property
    def stop(self) -> datetime:
        return self._m.stop

    # --- geometry -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        a = self.annotation()
        return (a.lines, a.samples)

    @property
    def line_spacing_m(self) -> float:
        return self.annotation().line_spacing_m

    @property
    def pixel_spacing_m(self) -> float:
        return self.annotation().pixel_spacing_m

    def geolocation_grid(self) -> GeolocationGrid:
        return self.annotation().grid

    @cached_property
    def footprint(self) -> Polygon:
        """Lon/lat polygon along the edge of the geolocation grid (first line, last pixel, …).

        A scene crossing the antimeridian gets longitudes in 0..360 so the ring stays simple;
        split it yourself if you need −180..180 (the mosaic geocodes from the grid instead).
        """
        from shapely.geometry import Polygon

        g = self.geolocation_grid()
        lon = g.lon
        if np.ptp(lon) > 180:  # crosses the antimeridian: keep the ring continuous (0..360)
            lon = np.mod(lon, 360.0)
        ring_lat = np.concatenate(
            [g.lat[0, :], g.lat[1:, -1], g.lat[-1, -2::-1], g.lat[-2:0:-1, 0]]
        )
        ring_lon = np.concatenate([lon[0, :], lon[1:, -1], lon[-1, -2::-1], lon[-2:0:-1, 0]])
        return Polygon(zip(ring_lon.tolist(), ring_lat.tolist(), strict=True))

    # --- files ----------------------------------------------------------------------------
    def file(self, kind: str, pol: str) -> str:
        """Relative path of a product file (``kind`` annotation|calibration|noise|measurement)."""
        pol = pol.upper()
        key = (kind, pol)
        if key in self._files:
            return self._files[key]
        if pol not in self.polarisations:
            raise UsageError(
                f"{self.name}: no polarisation {pol} (has {'+'.join(self.polarisations)})",
                f"ask for {' or '.join(self.polarisations)}",
            )
        href = self._m.files.get(key)
        real = self._c.resolve(href) if href else None
        if real is None and href is None:
            pattern = re.compile(_KIND_PATTERNS[kind].format(pol=pol.lower()), re.IGNORECASE)
            found = sorted(n for n in self._c.names() if pattern.fullmatch(n))
            real = found[0] if found else None
        if real is None:
            shown = SafeContainer.norm(href) if href else f"{kind} file for {pol}"
            raise self._c.missing(f"{kind} file {shown}")
        self._files[key] = real
        return real

    def read_file(self, rel: str) -> bytes:
        """Bytes of any file of the product (``rel`` relative to the SAFE root, any case)."""
        return self._c.read(rel)

    def _xml(self, kind: str, pol: str, parse):
        rel = self.file(kind, pol)
        try:
            return parse(self._c.read(rel))
        except XmlError as err:
            raise UsageError(
                f"{self.name}: {rel} is unreadable ({err})", "download the product again"
            ) from None

    def annotation(self, pol: str | None = None) -> Annotation:
        pol = (pol or self.polarisations[0]).upper()
        if pol not in self._annotations:
            self._annotations[pol] = self._xml("annotation", pol, parse_annotation)
        return self._annotations[pol]

    def calibration(self, pol: str) -> VectorLut:
        """The sigmaNought LUT of ``pol`` (parsed on first use, then cached)."""
        return self._cached("calibration", pol, parse_calibration)

    def noise(self, pol: str) -> NoiseLuts:
        """The thermal noise LUTs of ``pol`` (either noise format)."""
        return self._cached("noise", pol, parse_noise)

    def _cached(self, kind: str, pol: str, parse):
        key = (kind, pol.upper())
        if key not in self._luts:
            self._luts[key] = self._xml(kind, pol.upper(), parse)
        return self._luts[key]

    # --- measurement ----------------------------------------------------------------------
    def _io_error(self, problem: str) -> Exception:
        """A read failure: of a product read in place, a network matter (retried next run);
        of a local file, a corrupt or truncated product."""
        if is_remote(self.path):
            return ProcessingError(problem, "check the network and the S3 keys, then rerun")
        return UsageError(problem, "the product is corrupt or truncated; download it again")

    def gdal_env(self):
        """A ``rasterio.Env`` with what GDAL needs to reach this product's TIFFs."""
        return self._c.gdal_env()

    def _open_raster(self, rel: str, overview_level: int | None = None):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        kwargs = {} if overview_level is None else {"overview_level": overview_level}
        try:
            with warnings.catch_warnings(), self.gdal_env():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                return rasterio.open(self._c.raster_path(rel), **kwargs)
        except RasterioIOError as err:
            if is_remote(self.path):
                problem = f"{self.name}: measurement {rel} cannot be opened ({err})"
                raise self._io_error(problem) from None
            raise UsageError(
                f"{self.name}: measurement {rel} cannot be opened ({err})",
                "download the product again",
            ) from None

    def _raster(self, pol: str):
        pol = pol.upper()
        if pol in self._rasters:
            return self._rasters[pol]
        rel = self.file("measurement", pol)
        ds = self._open_raster(rel)
        # Read in place, every byte counts: the first annotation gives the geometry of both
        # polarisations and the measurement's own size is checked against it (a 2.6 MB XML
        # per scene saved); on disk the other annotation is cross-checked too.
        from scanner.safe.remote import RemoteSafeContainer

        in_place = isinstance(self._c, RemoteSafeContainer)
        ann = self.annotation() if in_place else self.annotation(pol)
        lines, samples = ann.lines, ann.samples
        if (ann.lines, ann.samples) != self.shape:
            ds.close()
            raise UsageError(
                f"{self.name}: the {pol} annotation says {samples} x {lines} pixels but the "
                f"{self.polarisations[0]} annotation says {self.shape[1]} x {self.shape[0]}",
                "the product is inconsistent; download it again",
            )
        if (ds.height, ds.width) != (lines, samples) or ds.count < 1:
            ds.close()
            raise UsageError(
                f"{self.name}: measurement {rel} is {ds.width} x {ds.height} pixels but the "
                f"annotation says {samples} x {lines}",
                "the product is inconsistent or truncated; download it again",
            )
        self._rasters[pol] = ds
        self._levels[pol] = (rel, None)
        return ds

    def read_dn(self, pol: str, window: Window) -> np.ndarray:
        """DN (uint16) of ``pol`` inside ``window`` (rasterio Window in measurement pixels)."""
        from rasterio.errors import RasterioIOError

        ds = self._raster(pol)
        if self._meter is not None:
            self._blocks.note(self._levels[pol.upper()], ds, window)
        try:
            with self.gdal_env():
                return ds.read(1, window=window, out_dtype=np.uint16)
        except RasterioIOError as err:
            raise self._io_error(
                f"{self.name}: reading {self.file('measurement', pol)} failed ({err})"
            ) from None

    def overview_factors(self, pol: str) -> list[int]:
        """Decimation factors of the measurement's overviews (``[]`` without any)."""
        return list(self._raster(pol).overviews(1))

    def overview_shape(self, pol: str, factor: int) -> tuple[int, int]:
        """(lines, samples) of the overview of decimation ``factor``."""
        ds = self._overview(pol, factor)
        return (ds.height, ds.width)

    def _overview(self, pol: str, factor: int):
        factors = self.overview_factors(pol)
        if factor not in factors:
            raise ValueError(f"{self.name} {pol}: no overview of factor {factor} ({factors})")
        key = f"{pol.upper()}/{factor}"
        ds = self._rasters.get(key)
        if ds is None:
            rel, level = self.file("measurement", pol), factors.index(factor)
            ds = self._rasters[key] = self._open_raster(rel, level)
            self._levels[key] = (rel, level)
        return ds

    def read_overview(self, pol: str, factor: int, window: Window) -> np.ndarray:
        """Values (uint16) of the overview of decimation ``factor`` inside ``window`` (in that
        overview's pixels)."""
        from rasterio.errors import RasterioIOError

        ds = self._overview(pol, factor)
        if self._meter is not None:
            self._blocks.note(self._levels[f"{pol.upper()}/{factor}"], ds, window)
        try:
            with self.gdal_env():
                return ds.read(1, window=window, out_dtype=np.uint16)
        except RasterioIOError as err:
            raise self._io_error(
                f"{self.name}: reading the 1/{factor} overview of "
                f"{self.file('measurement', pol)} failed ({err})"
            ) from None

    def check_measurements(self) -> None:
        """Open every measurement TIFF once: present, readable, and of the annotated size."""
        for pol in self.pol_pair:
            self._raster(pol)

    # --- bytes fetched ----------------------------------------------------------------------
    def tiff_bytes_estimate(self) -> int:
        """Bytes GDAL fetched so far to read the measurement TIFFs in place: the header and the
        chunks of the blocks read (:mod:`scanner.safe.tiff_bytes`; an estimate). Blocks are
        noted only when the product was opened in a metered scope."""
        opened = {self._levels[k]: ds for k, ds in self._rasters.items() if k in self._levels}
        with self.gdal_env():
            return self._blocks.estimate(opened, self._c.file_size)

    def _report_fetched(self) -> None:
        """Add the TIFF estimate to the meter the product was opened under (if any); never
        raises: a count must not fail a scene."""
        if self._meter is None or not self._rasters:
            return
        try:
            self._meter.add(self.tiff_bytes_estimate(), key=str(self.path), estimated=True)
        except Exception as err:  # noqa: BLE001 - informative
            log.warning("%s: could not estimate the TIFF bytes read: %s", self.name, err)

    # --- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        self._report_fetched()
        self._meter = None  # counted once, whatever calls close() again
        for ds in self._rasters.values():
            ds.close()
        self._rasters.clear()
        self._c.close()

    def __enter__(self) -> Product:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Product({self.name!r})"


def open_product(path: str | Path, *, require_measurement: bool = True) -> Product:
    """Open and validate an EW or IW GRD dual-pol product (HH+HV or VV+VH): a ``.SAFE`` folder
    or its ``.zip``, or a ``.SAFE`` read in place from S3 (``/vsis3/<bucket>/<key>.SAFE``, see
    :mod:`scanner.safe.remote`; a folder on the eodata mount is a plain folder).

    ``require_measurement=False`` allows metadata-only copies (like the bundled sample, which has
    no measurement TIFFs); ``read_dn`` then fails with the same clear error when called.
    """
    path = Path(path)
    name = product_name(path)
    remote = is_remote(path)
    if not remote and not path.exists():
        raise UsageError(f"product not found: {path}", "pass an existing .SAFE folder or .zip")
    check_name(name)
    if remote:
        from scanner.safe.remote import RemoteSafeContainer

        container: SafeContainer = RemoteSafeContainer(path, name)
    else:
        container = SafeContainer(path, name)
    product: Product | None = None
    try:
        if container.resolve("manifest.safe") is None:
            raise UsageError(
                f"{name}: file manifest.safe is missing from the product",
                "pass a complete .SAFE folder or the .zip as downloaded",
            )
        try:
            manifest = parse_manifest(container.read("manifest.safe"))
        except XmlError as err:
            raise UsageError(
                f"{name}: manifest.safe is unreadable ({err})", "download the product again"
            ) from None
        if not is_supported(manifest.mode, manifest.product_type, manifest.polarisations):
            raise _reject(
                name,
                manifest.mode,
                manifest.polarisations,
                f"{manifest.product_type} product, manifest says",
            )
        product = Product(path, container, manifest)
        for pol in product.pol_pair:
            for kind in ("annotation", "calibration", "noise"):
                product.file(kind, pol)
        product.annotation()
        if require_measurement:
            product.check_measurements()
    except BaseException:
        if product is not None:
            product.close()  # also closes any measurement already opened
        container.close()
        raise
    return product
