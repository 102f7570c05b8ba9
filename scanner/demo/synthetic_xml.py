"""Rewrite the real sample's SAFE XML for a synthetic product: a reduced grid, another slice.

Reduced grids (``scale`` < 1) keep the footprint: every line/pixel index in the annotation's
geolocation grid, the calibration vectors and both noise formats is scaled by (n_new − 1) /
(n_old − 1), so edges map to edges; duplicates created by rounding are dropped (interpolation
needs increasing abscissae); pixel spacing grows by the same factor. Later slices of a datatake
shift every timestamp by the slice duration and the geolocation along track (extrapolating the
grid's own along-track motion in EPSG:3413, so nothing wraps at the date line or the pole).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?")


@dataclass(frozen=True)
class Rescale:
    """Index maps old → new along lines (azimuth) and pixels (range)."""

    lines_old: int
    samples_old: int
    lines_new: int
    samples_new: int

    @property
    def fl(self) -> float:
        return (self.lines_new - 1) / max(self.lines_old - 1, 1)

    @property
    def fp(self) -> float:
        return (self.samples_new - 1) / max(self.samples_old - 1, 1)


def shift_times(text: str, dt: timedelta) -> str:
    """Shift every ISO timestamp in ``text`` by ``dt``, keeping the microsecond format."""
    if not dt:
        return text

    def repl(m: re.Match[str]) -> str:
        t = datetime.fromisoformat(m.group(0)) + dt
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f") if "." in m.group(0) else t.isoformat()

    return _TIME.sub(repl, text)


def _fmt_ints(values: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in values)


def _dedupe(idx: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep the first of equal consecutive indices (and matching entries of ``arrays``)."""
    keep = np.concatenate([[True], np.diff(idx) > 0])
    return (idx[keep], *(a[keep] for a in arrays))


def _set(el: ET.Element, tag: str, text: str, count: int | None = None) -> None:
    child = el.find(tag)
    if child is None:
        return
    child.text = text
    if count is not None and "count" in child.attrib:
        child.set("count", str(count))


def _scale_vectors(
    parent: ET.Element, vector_tag: str, value_tags: tuple[str, ...], r: Rescale
) -> None:
    """Scale <line> and <pixel> of every vector, dropping duplicate lines and pixels."""
    last_line = -1
    vectors = list(parent.findall(vector_tag))
    for vec in vectors:
        line = int(round(int(vec.findtext("line", "0")) * r.fl))
        if line <= last_line:
            parent.remove(vec)
            continue
        last_line = line
        vec.find("line").text = str(line)  # type: ignore[union-attr]
        pix = np.round(np.array(vec.findtext("pixel", "").split(), float) * r.fp).astype(int)
        values = [
            np.array(vec.findtext(t, "").split()) for t in value_tags if vec.find(t) is not None
        ]
        pix, *values = _dedupe(pix, *values)
        _set(vec, "pixel", _fmt_ints(pix), len(pix))
        present = [t for t in value_tags if vec.find(t) is not None]
        for tag, vals in zip(present, values, strict=True):
            _set(vec, tag, " ".join(vals.tolist()), len(vals))
    parent.set("count", str(len(parent.findall(vector_tag))))


def scale_annotation(data: bytes, r: Rescale) -> ET.Element:
    """Annotation tree on the new grid (image size, spacing, tie-point line/pixel)."""
    root = ET.fromstring(data)
    info = root.find("imageAnnotation/imageInformation")
    assert info is not None
    _set(info, "numberOfLines", str(r.lines_new))
    _set(info, "numberOfSamples", str(r.samples_new))
    for tag, f in (("azimuthPixelSpacing", r.fl), ("rangePixelSpacing", r.fp)):
        _set(info, tag, f"{float(info.findtext(tag, '0')) / f:.6e}")
    interval = float(info.findtext("azimuthTimeInterval", "0")) / r.fl
    _set(info, "azimuthTimeInterval", f"{interval:.15e}")
    for p in _grid_points(root):
        _set(p, "line", str(int(round(int(p.findtext("line", "0")) * r.fl))))
        _set(p, "pixel", str(int(round(int(p.findtext("pixel", "0")) * r.fp))))
    return root


def _grid_points(root: ET.Element) -> list[ET.Element]:
    """Tie points sorted by (line, pixel): the order of :class:`GeolocationGrid` arrays."""
    points = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    return sorted(
        points, key=lambda p: (int(p.findtext("line", "0")), int(p.findtext("pixel", "0")))
    )


def annotation_bytes(
    root: ET.Element, lat: np.ndarray | None = None, lon: np.ndarray | None = None
) -> bytes:
    """Serialise an annotation tree; grid-shaped ``lat``/``lon`` replace the tie points if given."""
    if lat is not None and lon is not None:
        for k, p in enumerate(_grid_points(root)):
            _set(p, "latitude", f"{lat.flat[k]:.15e}")
            _set(p, "longitude", f"{lon.flat[k]:.15e}")
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def rewrite_annotation(
    data: bytes, r: Rescale, lat: np.ndarray | None = None, lon: np.ndarray | None = None
) -> bytes:
    """Annotation on the new grid; ``lat``/``lon`` (grid-shaped) replace the tie points if given."""
    return annotation_bytes(scale_annotation(data, r), lat, lon)


def rewrite_calibration(data: bytes, r: Rescale) -> bytes:
    root = ET.fromstring(data)
    lst = root.find("calibrationVectorList")
    if lst is not None:
        tags = ("sigmaNought", "betaNought", "gamma", "dn")
        _scale_vectors(lst, "calibrationVector", tags, r)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def rewrite_noise(data: bytes, r: Rescale) -> bytes:
    """Both noise formats; azimuth blocks keep contiguous edges ((last + 1) scaled − 1)."""
    root = ET.fromstring(data)
    for lst_tag, vec_tag, val_tag in (
        ("noiseRangeVectorList", "noiseRangeVector", "noiseRangeLut"),
        ("noiseVectorList", "noiseVector", "noiseLut"),
    ):
        lst = root.find(lst_tag)
        if lst is not None:
            _scale_vectors(lst, vec_tag, (val_tag,), r)
    az = root.find("noiseAzimuthVectorList")
    if az is not None:
        for blk in list(az.findall("noiseAzimuthVector")):
            edges = {}
            for first, last, f, n_new in (
                ("firstAzimuthLine", "lastAzimuthLine", r.fl, r.lines_new),
                ("firstRangeSample", "lastRangeSample", r.fp, r.samples_new),
            ):
                a = int(round(int(blk.findtext(first, "0")) * f))
                b = min(int(round((int(blk.findtext(last, "0")) + 1) * f)) - 1, n_new - 1)
                edges[first], edges[last] = a, b
            if edges["lastAzimuthLine"] < edges["firstAzimuthLine"] or (
                edges["lastRangeSample"] < edges["firstRangeSample"]
            ):
                az.remove(blk)
                continue
            for tag, v in edges.items():
                _set(blk, tag, str(v))
            lines = np.round(np.array(blk.findtext("line", "").split(), float) * r.fl).astype(int)
            lines = np.clip(lines, edges["firstAzimuthLine"], edges["lastAzimuthLine"])
            vals = np.array(blk.findtext("noiseAzimuthLut", "").split())
            lines, vals = _dedupe(lines, vals)
            _set(blk, "line", _fmt_ints(lines), len(lines))
            _set(blk, "noiseAzimuthLut", " ".join(vals.tolist()), len(vals))
        az.set("count", str(len(az.findall("noiseAzimuthVector"))))
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def shifted_grid(
    lat: np.ndarray, lon: np.ndarray, line: np.ndarray, k: int, lines: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tie points of the ``k``-th next slice: the grid moved ``k · lines`` lines along track."""
    if k == 0:
        return lat, lon
    from pyproj import Transformer

    fwd = Transformer.from_crs("EPSG:4326", "EPSG:3413", always_xy=True)
    x, y = fwd.transform(lon, lat)
    per_line_x = (x[-1] - x[0]) / (line[-1] - line[0])  # (n_pixel,) along-track motion per line
    per_line_y = (y[-1] - y[0]) / (line[-1] - line[0])
    x = x + k * lines * per_line_x[None, :]
    y = y + k * lines * per_line_y[None, :]
    lon2, lat2 = fwd.transform(x, y, direction="INVERSE")
    return np.asarray(lat2), np.asarray(lon2)
