"""Parsers for the SAFE XML files (annotation, calibration, noise): bytes in, typed records out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from scanner.safe.lut import AzimuthBlock, VectorLut


class XmlError(ValueError):
    """A SAFE XML file lacks an element we need (the caller names the product and file)."""


def parse_time(text: str) -> datetime:
    """SAFE times are UTC without a zone suffix: ``2022-11-30T01:43:42.546629``."""
    t = datetime.fromisoformat(text.strip().rstrip("Z"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def numbers(text: str | None) -> np.ndarray:
    return np.array((text or "").split(), dtype=np.float64)


def _root(data: bytes) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as err:
        raise XmlError(f"not valid XML ({err})") from None


def _text(el: ET.Element, path: str) -> str:
    found = el.find(path)
    if found is None or found.text is None:
        raise XmlError(f"missing element <{path}>")
    return found.text.strip()


@dataclass(frozen=True)
class GeolocationGrid:
    """The annotation's regular tie-point grid: values at (line[i], pixel[j])."""

    line: np.ndarray  # (n_line,) int
    pixel: np.ndarray  # (n_pixel,) int
    lat: np.ndarray  # (n_line, n_pixel)
    lon: np.ndarray
    height: np.ndarray
    incidence: np.ndarray


@dataclass(frozen=True)
class Annotation:
    mission: str
    mode: str
    product_type: str
    polarisation: str
    lines: int
    samples: int
    line_spacing_m: float
    pixel_spacing_m: float
    first_line_time: datetime
    last_line_time: datetime
    pass_direction: str
    grid: GeolocationGrid


def parse_annotation(data: bytes) -> Annotation:
    root = _root(data)
    info = root.find("imageAnnotation/imageInformation")
    if info is None:
        raise XmlError("missing element <imageAnnotation/imageInformation>")
    points = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    if not points:
        raise XmlError("missing element <geolocationGrid/geolocationGridPointList>")
    cols = ("line", "pixel", "latitude", "longitude", "height", "incidenceAngle")
    table = np.array([[float(_text(p, c)) for c in cols] for p in points])
    line = np.unique(table[:, 0]).astype(np.int64)
    pixel = np.unique(table[:, 1]).astype(np.int64)
    if len(line) * len(pixel) != len(points):
        raise XmlError("geolocation grid is not regular (lines × pixels ≠ points)")
    order = np.lexsort((table[:, 1], table[:, 0]))
    shaped = table[order].reshape(len(line), len(pixel), len(cols))
    grid = GeolocationGrid(
        line=line,
        pixel=pixel,
        lat=shaped[..., 2],
        lon=shaped[..., 3],
        height=shaped[..., 4],
        incidence=shaped[..., 5],
    )
    pass_el = root.find("generalAnnotation/productInformation/pass")
    return Annotation(
        mission=_text(root, "adsHeader/missionId"),
        mode=_text(root, "adsHeader/mode"),
        product_type=_text(root, "adsHeader/productType"),
        polarisation=_text(root, "adsHeader/polarisation").upper(),
        lines=int(_text(info, "numberOfLines")),
        samples=int(_text(info, "numberOfSamples")),
        line_spacing_m=float(_text(info, "azimuthPixelSpacing")),
        pixel_spacing_m=float(_text(info, "rangePixelSpacing")),
        first_line_time=parse_time(_text(info, "productFirstLineUtcTime")),
        last_line_time=parse_time(_text(info, "productLastLineUtcTime")),
        pass_direction=(pass_el.text or "").strip().upper() if pass_el is not None else "",
        grid=grid,
    )


def _vector_lut(vectors: list[ET.Element], value_tag: str) -> VectorLut:
    if not vectors:
        raise XmlError(f"no vectors with <{value_tag}>")
    lines = np.array([float(_text(v, "line")) for v in vectors])
    pixels = tuple(numbers(_text(v, "pixel")) for v in vectors)
    values = tuple(numbers(_text(v, value_tag)) for v in vectors)
    for p, val in zip(pixels, values, strict=True):
        if len(p) != len(val) or len(p) == 0:
            raise XmlError(f"<{value_tag}> and <pixel> differ in length")
    return VectorLut(lines=lines, pixels=pixels, values=values)


def parse_calibration(data: bytes) -> VectorLut:
    """The sigmaNought LUT (A in sigma0 = DN² / A²)."""
    root = _root(data)
    return _vector_lut(root.findall("calibrationVectorList/calibrationVector"), "sigmaNought")


@dataclass(frozen=True)
class NoiseLuts:
    """Thermal noise power N = range(line, pixel) · azimuth(line, pixel)."""

    range: VectorLut
    azimuth: tuple[AzimuthBlock, ...]  # empty before IPF 2.9 (azimuth = 1)

    def evaluate(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        from scanner.safe.lut import azimuth_noise

        out = self.range.evaluate(rows, cols)
        if self.azimuth:
            out *= azimuth_noise(self.azimuth, rows, cols)
        return out


def parse_noise(data: bytes) -> NoiseLuts:
    """Both formats: ``noiseRangeVectorList`` + ``noiseAzimuthVectorList`` (IPF >= 2.9) or the
    older single ``noiseVectorList`` (range only, ``noiseLut``)."""
    root = _root(data)
    if root.find("noiseRangeVectorList") is not None:
        rng = _vector_lut(root.findall("noiseRangeVectorList/noiseRangeVector"), "noiseRangeLut")
        blocks = tuple(
            AzimuthBlock(
                swath=(b.findtext("swath") or "").strip(),
                first_line=int(_text(b, "firstAzimuthLine")),
                last_line=int(_text(b, "lastAzimuthLine")),
                first_sample=int(_text(b, "firstRangeSample")),
                last_sample=int(_text(b, "lastRangeSample")),
                lines=numbers(_text(b, "line")),
                values=numbers(_text(b, "noiseAzimuthLut")),
            )
            for b in root.findall("noiseAzimuthVectorList/noiseAzimuthVector")
        )
        return NoiseLuts(range=rng, azimuth=blocks)
    if root.find("noiseVectorList") is not None:
        rng = _vector_lut(root.findall("noiseVectorList/noiseVector"), "noiseLut")
        return NoiseLuts(range=rng, azimuth=())
    raise XmlError("neither <noiseRangeVectorList> nor <noiseVectorList> found")
