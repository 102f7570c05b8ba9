"""The area of interest: a lon/lat bbox or polygon file, made safe for Arctic searches.

Lon/lat polygons break down exactly where this tool works: an area crossing 180° cannot be one
planar polygon, and a spherical search service cannot tell which side of a ring around the pole
is "inside". So the AOI keeps its geometry in lon/lat split at the antimeridian
(``geometry``), hands searches parts no wider than 90° of longitude (``search_polygons``), and
checks footprints again in EPSG:3413 (NSIDC polar stereographic north), where the pole and 180°
are ordinary points (``intersects``).

Convention: edges are straight lines in lon/lat (what QGIS draws for an EPSG:4326 layer), so
parallels stay parallels; edges are densified before any reprojection.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from polarscan.common.bbox import check_bbox
from polarscan.common.errors import UsageError

ARCTIC_CRS = "EPSG:3413"
MAX_SECTOR_DEG = 90.0  # widest search part: far below 180°, so a sphere reads it unambiguously
DENSIFY_DEG = 2.0  # vertex spacing so great-circle edges stay within ~1 km of the parallels

_TO_ARCTIC = Transformer.from_crs("EPSG:4326", ARCTIC_CRS, always_xy=True)


class AOI:
    """An area of interest in lon/lat (EPSG:4326), split at 180° when it crosses it."""

    def __init__(self, geometry: BaseGeometry, label: str | None = None) -> None:
        geometry = _polygonal(geometry)
        if geometry.is_empty or geometry.area == 0:
            raise UsageError(
                "the area of interest is empty", "give a bbox or polygon with a non-zero area"
            )
        if not geometry.is_valid:
            raise UsageError(
                f"the area of interest is not a valid polygon ({shapely.is_valid_reason(geometry)})",
                "fix the geometry (QGIS: Vector > Geometry Tools > Fix Geometries)",
            )
        minx, miny, maxx, maxy = geometry.bounds
        if minx < -180 - 1e-9 or maxx > 180 + 1e-9 or miny < -90 - 1e-9 or maxy > 90 + 1e-9:
            raise UsageError(
                f"the area of interest lies outside lon [-180, 180] / lat [-90, 90] "
                f"(bounds {minx:g}, {miny:g}, {maxx:g}, {maxy:g})",
                "give lon/lat degrees in EPSG:4326, or a file that declares its CRS",
            )
        if miny < 0:
            raise UsageError(
                f"the area of interest reaches south of the equator (to latitude {miny:g})",
                "give an area in the northern hemisphere: the grids are polar stereographic "
                "north (EPSG:3413) and the classifier learned Arctic polar lows",
            )
        self.geometry: BaseGeometry = shapely.normalize(geometry)
        self.label = label
        self._arctic: BaseGeometry | None = None

    # ---- constructors -------------------------------------------------------------------------

    @classmethod
    def from_bbox(cls, w: float, s: float, e: float, n: float) -> AOI:
        """A lon/lat box; ``w > e`` means it crosses 180° (e.g. ``170, 60, -170, 75``)."""
        check_bbox(w, s, e, n)
        if w < e:
            geom: BaseGeometry = box(w, s, e, n)
        else:  # crosses the antimeridian: two boxes meeting at ±180
            parts = [p for p in (box(w, s, 180, n), box(-180, s, e, n)) if p.area > 0]
            geom = MultiPolygon(parts) if len(parts) > 1 else parts[0]
        return cls(geom, label=f"bbox {w:g} {s:g} {e:g} {n:g}")

    @classmethod
    def from_file(cls, path: str | Path) -> AOI:
        """The union of the polygons in a GeoJSON or GeoPackage file, reprojected to lon/lat.

        A file in a projected CRS (e.g. EPSG:3413) may contain the pole or cross 180°; its rings
        are densified, transformed, unwrapped and split so the lon/lat result means the same area.
        """
        p = Path(path)
        if not p.is_file():
            raise UsageError(
                f"area file not found: {p}", "pass an existing GeoJSON or GeoPackage file"
            )
        import pyogrio

        try:
            info = pyogrio.read_info(p)
            geoms = pyogrio.read_dataframe(p, columns=[]).geometry
        except Exception as err:  # noqa: BLE001 - GDAL raises many types for unreadable files
            raise UsageError(
                f"cannot read area file {p} ({type(err).__name__}: {err})",
                "give a valid GeoJSON (.geojson) or GeoPackage (.gpkg) with polygon features",
            ) from None
        geoms = geoms[~geoms.isna()]
        if len(geoms) == 0 or geoms.is_empty.all():
            raise UsageError(f"area file {p} has no geometries", "add at least one polygon")
        bad = [g.geom_type for g in geoms if g.geom_type not in ("Polygon", "MultiPolygon")]
        if bad:
            raise UsageError(
                f"area file {p} holds {bad[0]} geometries; only polygons define an area",
                "draw the area as a (multi)polygon",
            )
        invalid = [g for g in geoms if not g.is_valid]
        if invalid:
            raise UsageError(
                f"area file {p} has an invalid polygon ({shapely.is_valid_reason(invalid[0])})",
                "fix it (QGIS: Vector > Geometry Tools > Fix Geometries)",
            )
        crs = CRS.from_user_input(info["crs"]) if info.get("crs") else CRS.from_epsg(4326)
        if crs.is_geographic:
            geom = shapely.union_all(list(geoms))
            if not crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
                t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
                geom = shapely.transform(geom, lambda xy: np.column_stack(t.transform(*xy.T)))
        else:
            geom = _projected_to_lonlat(shapely.union_all(list(geoms)), crs)
        return cls(geom, label=p.name)

    # ---- what searches and checks use --------------------------------------------------------

    def search_polygons(self) -> list[Polygon]:
        """Lon/lat parts for a search service: none crosses 180° or spans more than 90° of
        longitude (so none contains the pole), each valid, counter-clockwise and densified so
        a spherical (geography) reading of its edges stays within ~1 km of the planar one."""
        out: list[Polygon] = []
        for part in _parts(self.geometry):
            minx, _, maxx, _ = part.bounds
            n = max(1, math.ceil((maxx - minx) / MAX_SECTOR_DEG - 1e-9))
            step = (maxx - minx) / n
            for i in range(n):
                lo, hi = minx + i * step, (maxx if i == n - 1 else minx + (i + 1) * step)
                piece = part if n == 1 else part.intersection(box(lo, -90, hi, 90))
                for poly in _parts(piece):
                    if poly.area <= 1e-12:
                        continue
                    out.append(orient(_densify_for_sphere(poly), sign=1.0))
        return out

    @property
    def arctic_geometry(self) -> BaseGeometry:
        """The area in EPSG:3413 metres (one piece where the lon/lat parts meet at 180°)."""
        if self._arctic is None:
            pieces = [to_arctic(p) for p in self.search_polygons()]
            geom = shapely.union_all(pieces)
            shapely.prepare(geom)
            self._arctic = geom
        return self._arctic

    def intersects(self, footprint: BaseGeometry) -> bool:
        """Whether a lon/lat footprint touches the area, as judged in EPSG:3413, so footprints
        crossing 180° (even written with a 350° jump) or lying around the pole are read right.

        Fast path: a footprint within [-180, 180] with no jump is tested in lon/lat, which for
        edges straight in lon/lat gives the EPSG:3413 answer without projecting (~20x faster).
        """
        if footprint is None or footprint.is_empty:
            return False
        if not _needs_arctic(footprint):
            return bool(self._lonlat.intersects(footprint))
        return bool(self.arctic_geometry.intersects(to_arctic(footprint)))

    @property
    def _lonlat(self) -> BaseGeometry:
        shapely.prepare(self.geometry)
        return self.geometry

    @property
    def key(self) -> str:
        """A stable short hash of the normalised geometry (names watermarks in the record)."""
        return hashlib.sha256(self.to_wkt().encode()).hexdigest()[:12]

    def to_wkt(self) -> str:
        return shapely.to_wkt(self.geometry, rounding_precision=6, trim=True)

    def __repr__(self) -> str:
        w, s, e, n = self.geometry.bounds
        what = f" {self.label!r}" if self.label else ""
        return (
            f"AOI({what.strip() or 'polygon'}, bounds=({w:g}, {s:g}, {e:g}, {n:g}), key={self.key})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AOI) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


# ---- geometry helpers (pure) -------------------------------------------------------------------


def _parts(geom: BaseGeometry) -> list[Polygon]:
    """The polygons inside any geometry (dropping points and lines left by clipping)."""
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _parts(g)]
    return []


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    parts = _parts(geom)
    if not parts:
        return Polygon()
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _densify_ring(lon: np.ndarray, lat: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert vertices so no edge spans more than ``step`` degrees (straight in lon/lat)."""
    dlon, dlat = np.diff(lon), np.diff(lat)
    n = np.maximum(1, np.ceil(np.maximum(np.abs(dlon), np.abs(dlat)) / step)).astype(int)
    seg = np.repeat(np.arange(len(n)), n)  # segment of each new vertex
    t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 1) / np.repeat(n, n)
    out_lon = np.concatenate([lon[:1], lon[seg] + dlon[seg] * t])
    out_lat = np.concatenate([lat[:1], lat[seg] + dlat[seg] * t])
    return out_lon, out_lat


def _needs_arctic(geom: BaseGeometry) -> bool:
    """Whether a lon/lat footprint only makes sense projected: outside ±180, or a ring
    whose longitude jumps by more than 180° (across the antimeridian or around the pole)."""
    minx, _, maxx, _ = geom.bounds
    if minx < -180 or maxx > 180:
        return True
    if maxx - minx <= 180:
        return False
    for part in _parts(geom):
        for ring in (part.exterior, *part.interiors):
            lon = np.asarray(ring.coords)[:, 0]
            if np.abs(np.diff(lon)).max(initial=0) > 180:
                return True
    return False


def _sphere_ring(coords: np.ndarray) -> np.ndarray:
    out = [coords[:1]]
    for i in range(len(coords) - 1):
        a, b = coords[i], coords[i + 1]
        meridian = a[0] == b[0]
        at_pole = abs(a[1]) == 90 and a[1] == b[1]
        n = 1 if meridian or at_pole else max(1, math.ceil(abs(b[0] - a[0]) / DENSIFY_DEG))
        t = (np.arange(1, n + 1) / n)[:, None]
        out.append(a + (b - a) * t)
    return np.concatenate(out)


def _densify_for_sphere(poly: Polygon) -> Polygon:
    """Densify edges that a sphere would bend (meridians and the pole edge are left alone)."""
    return Polygon(
        _sphere_ring(np.asarray(poly.exterior.coords)),
        [_sphere_ring(np.asarray(r.coords)) for r in poly.interiors],
    )


def _unwrap(lon: np.ndarray) -> np.ndarray:
    """Longitudes with jumps of more than 180° between neighbours removed (shortest way)."""
    d = np.diff(lon)
    if not len(d) or np.abs(d).max() <= 180:
        return lon
    return np.concatenate([lon[:1], lon[0] + np.cumsum(d - 360 * np.round(d / 360))])


def _arctic_ring(coords: np.ndarray, unwrap: bool) -> np.ndarray:
    lon, lat = coords[:, 0], coords[:, 1]
    if unwrap:
        lon = _unwrap(lon)
    lon, lat = _densify_ring(lon, lat, 0.5)
    x, y = _TO_ARCTIC.transform(lon, lat)
    return np.column_stack([x, y])


def to_arctic(geom: BaseGeometry, unwrap: bool = True) -> BaseGeometry:
    """A lon/lat (multi)polygon in EPSG:3413 metres.

    With ``unwrap`` (footprints), a ring whose longitudes jump by more than 180° is read the
    short way across the antimeridian, as a provider means it. A ring around the pole closes by
    itself in EPSG:3413, and degenerate slivers (an edge along lat 90°) are cleaned by buffer(0).
    """
    polys = []
    for part in _parts(geom):
        shell = _arctic_ring(np.asarray(part.exterior.coords), unwrap)
        holes = [_arctic_ring(np.asarray(r.coords), unwrap) for r in part.interiors]
        poly = Polygon(shell, holes)
        if not poly.is_valid:
            poly = poly.buffer(0)
        polys.append(poly)
    if len(polys) == 1:
        return polys[0]
    return shapely.union_all(polys) if polys else Polygon()


def _projected_to_lonlat(geom: BaseGeometry, crs: CRS) -> BaseGeometry:
    """Transform a projected (multi)polygon to lon/lat: densify, unwrap longitudes, close rings
    that circle a pole along the pole, and fold the result back into [-180, 180]."""
    t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    minx, miny, maxx, maxy = geom.bounds
    seg = max(maxx - minx, maxy - miny) / 400 or 1.0
    dense = shapely.segmentize(geom, seg)
    out = []
    for part in _parts(dense):
        rings = []
        for ring in [part.exterior, *part.interiors]:
            xy = np.asarray(ring.coords)
            lon, lat = t.transform(xy[:, 0], xy[:, 1])
            lon = _unwrap(np.asarray(lon))
            lat = np.asarray(lat)
            turn = lon[-1] - lon[0]
            if abs(turn) > 180:  # circles a pole: close the ring along it
                pole = 90.0 if lat.mean() > 0 else -90.0
                lon = np.concatenate([lon, [lon[-1], lon[0], lon[0]]])
                lat = np.concatenate([lat, [pole, pole, lat[0]]])
            rings.append(np.column_stack([lon, lat]))
        poly = Polygon(rings[0], rings[1:]).buffer(0)
        for k in (-2, -1, 0, 1, 2):
            piece = poly.intersection(box(-180 + 360 * k, -90, 180 + 360 * k, 90))
            if not piece.is_empty:
                out.append(shapely.affinity.translate(piece, xoff=-360 * k))
    return shapely.union_all(out) if out else Polygon()
