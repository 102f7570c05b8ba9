"""CDSE OData, the pure part: building ``$filter`` queries and reading product records.

No network here. :mod:`scanner.sources.cdse` sends the queries and downloads; this module turns
a search into query parameters and a JSON product into a :class:`Scene`, or a :class:`Skipped`
saying why not: ``foreign`` (another mode, product type or polarisation, an AUX file...) or
``unparseable`` (no usable id, dates, footprint, or a name that is not a product name).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from scanner.sources.base import (
    MODES,
    Scene,
    Skipped,
    is_product_name,
    is_wanted_name,
    sample_of,
)

log = logging.getLogger(__name__)

PRODUCT_TYPE = "EW_GRDM_1S"
COG_PRODUCT_TYPE = "EW_GRDM_1S-COG"
POLARISATION = "HH&HV"
#: the CDSE product type searched for each acquisition mode (``…-COG``: its COG twins)
PRODUCT_TYPES = {"EW": PRODUCT_TYPE, "IW": "IW_GRDH_1S"}
#: dual polarisation pairs, as CDSE's ``polarisationChannels`` writes them
POLARISATIONS = (POLARISATION, "VV&VH")
CHECKSUM_PREFERENCE = ("BLAKE3", "MD5", "SHA256")  # BLAKE3 hashes fastest
#: CDSE product ids are UUIDs; the id goes into a download URL, so nothing else is accepted.
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def odata_time(t: datetime) -> str:
    """``2022-11-30T01:43:42.000Z`` (UTC; naive datetimes are taken as UTC)."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(text: str | None) -> datetime | None:
    """OData dates end in ``Z`` or ``+00:00`` and carry 0–7 fraction digits."""
    if not text:
        return None
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    head, sep, tail = s.partition(".")
    if sep:  # normalise the fraction to 6 digits (fromisoformat is picky before 3.11)
        n = len(tail) - len(tail.lstrip("0123456789"))
        digits, zone = tail[:n], tail[n:]
        s = f"{head}.{(digits + '000000')[:6]}{zone}"
    t = datetime.fromisoformat(s)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def polygon_wkt(poly: Polygon, digits: int = 5) -> str:
    """``POLYGON((lon lat, …))`` with a fixed precision (short URLs, stable queries)."""
    coords = ",".join(f"{x:.{digits}f} {y:.{digits}f}" for x, y in poly.exterior.coords)
    return f"POLYGON(({coords}))"


def _string_attr(name: str, value: str) -> str:
    return (
        f"Attributes/OData.CSC.StringAttribute/any(att:att/Name eq '{name}' and "
        f"att/OData.CSC.StringAttribute/Value eq '{value}')"
    )


def _any_of(name: str, values: Sequence[str]) -> str:
    """One attribute condition, or several joined by ``or`` in parentheses."""
    terms = [_string_attr(name, v) for v in values]
    return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"


def _product_types(modes: Sequence[str], twins: bool) -> str:
    """The product types of ``modes``; with ``twins`` their COG twins too (``…-COG``, the only
    form CDSE keeps of scenes older than a year)."""
    originals = _any_of("productType", [PRODUCT_TYPES[m] for m in modes])
    if not twins:
        return originals
    cogs = _any_of("productType", [f"{PRODUCT_TYPES[m]}-COG" for m in modes])
    return f"({originals} or {cogs})"


def build_filter(
    polygon: Polygon | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    published_after: datetime | None = None,
    modes: Sequence[str] = MODES,
    twins: bool = False,
) -> str:
    """The ``$filter`` for dual-pol GRD products of ``modes`` (EW GRDM, IW GRDH; HH+HV or
    VV+VH) touching ``polygon``.

    ``start``/``end`` select products whose sensing interval overlaps [start, end);
    ``published_after`` selects those published since (the nightly "what is new" query);
    ``twins`` also matches the COG twins (``EW_GRDM_1S-COG``, ``IW_GRDH_1S-COG``).
    """
    parts = [
        "Collection/Name eq 'SENTINEL-1'",
        _product_types(modes, twins),
        _any_of("polarisationChannels", POLARISATIONS),
    ]
    if start is not None:
        parts.append(f"ContentDate/End gt {odata_time(start)}")
    if end is not None:
        parts.append(f"ContentDate/Start lt {odata_time(end)}")
    if published_after is not None:
        parts.append(f"PublicationDate gt {odata_time(published_after)}")
    if polygon is not None:
        parts.append(f"OData.CSC.Intersects(area=geography'SRID=4326;{polygon_wkt(polygon)}')")
    return " and ".join(parts)


def build_params(
    polygon: Polygon | None,
    start: datetime | None,
    end: datetime | None,
    published_after: datetime | None,
    top: int = 1000,
    modes: Sequence[str] = MODES,
    twins: bool = False,
) -> dict[str, str]:
    order = "PublicationDate asc" if published_after is not None else "ContentDate/Start asc"
    return {
        "$filter": build_filter(polygon, start, end, published_after, modes, twins),
        "$orderby": order,
        "$top": str(top),
        "$expand": "Attributes",
    }


def attributes(product: dict) -> dict[str, Any]:
    """``Attributes`` as a flat ``{Name: Value}`` dict."""
    out: dict[str, Any] = {}
    for att in product.get("Attributes") or ():
        if isinstance(att, dict) and "Name" in att:
            out[str(att["Name"])] = att.get("Value")
    return out


def footprint(product: dict) -> BaseGeometry | None:
    """``GeoFootprint`` (GeoJSON), else the ``Footprint`` string ``geography'SRID=4326;…'``."""
    geo = product.get("GeoFootprint")
    if isinstance(geo, dict) and geo.get("type"):
        try:
            return shape(geo)
        except (ValueError, TypeError, AttributeError, KeyError):
            return None
    text = product.get("Footprint")
    if isinstance(text, str) and "(" in text:
        wkt = text.split(";", 1)[-1].rstrip("'")
        try:
            return shapely.from_wkt(wkt)
        except shapely.errors.GEOSException:
            return None
    return None


def checksum(product: dict) -> tuple[str, str] | None:
    """The preferred ``(algorithm, hex)`` of ``Checksum`` (BLAKE3, then MD5), if any."""
    found = {}
    for c in product.get("Checksum") or ():
        if isinstance(c, dict) and c.get("Value") and c.get("Algorithm"):
            found[str(c["Algorithm"]).upper()] = str(c["Value"]).lower()
    for algo in CHECKSUM_PREFERENCE:
        if algo in found:
            return algo, found[algo]
    return None


def base_name(name: str) -> str:
    """Product name without ``.zip``, ``.SAFE`` and ``_COG``: twins share it."""
    for suffix in (".zip", ".SAFE", "_COG"):
        if name.upper().endswith(suffix.upper()):
            name = name[: -len(suffix)]
    return name


def parse_product(product: dict, download_base: str) -> Scene | None:
    """A :class:`Scene` for a wanted product, ``None`` for anything else
    (:func:`read_product` says why)."""
    scene = read_product(product, download_base)
    return scene if isinstance(scene, Scene) else None


def read_product(product: object, download_base: str) -> Scene | Skipped:
    """A :class:`Scene` for a wanted product, else a :class:`Skipped` with the reason."""
    if not isinstance(product, dict):
        return Skipped("unparseable", "?", "not a JSON object", sample_of(product))
    raw_name = product.get("Name")
    if not isinstance(raw_name, str) or not raw_name:
        return Skipped("unparseable", "?", "no Name", sample_of(product))
    attrs = attributes(product)
    ptype = str(attrs.get("productType") or "")
    if ptype and ptype.removesuffix("-COG") not in PRODUCT_TYPES.values():
        log.debug("skipping foreign product %s (%s)", raw_name, ptype)
        return Skipped("foreign", raw_name, ptype)
    if not is_product_name(raw_name):
        return Skipped(
            "unparseable", raw_name, "Name is not a Sentinel-1 product name", sample_of(product)
        )
    name = base_name(raw_name)
    if not is_wanted_name(name):
        log.debug("skipping foreign product %s (%s)", raw_name, ptype or "no productType")
        return Skipped("foreign", raw_name, ptype or "not a dual-pol EW GRDM or IW GRDH")
    pid = product.get("Id")
    content = product.get("ContentDate") or {}
    try:
        start = parse_time(content.get("Start"))
        stop = parse_time(content.get("End"))
        published = parse_time(product.get("PublicationDate"))
    except (ValueError, AttributeError, TypeError):
        log.warning("skipping %s: unreadable dates %r", raw_name, content)
        return Skipped("unparseable", raw_name, "unreadable dates", sample_of(product))
    geom = footprint(product)
    if not isinstance(pid, str) or not UUID_RE.fullmatch(pid):
        log.warning("skipping %s: its Id %r is not a UUID", raw_name, pid)
        return Skipped("unparseable", raw_name, "Id is not a UUID", sample_of(product))
    if start is None or stop is None or geom is None or geom.is_empty:
        log.warning("skipping %s: no dates or footprint in the record", raw_name)
        return Skipped("unparseable", raw_name, "no dates or footprint", sample_of(product))
    size = product.get("ContentLength")
    cog = ptype.endswith("-COG") or "_COG" in raw_name.upper()
    attrs.update(
        {"product_name": raw_name, "cog": cog, "online": product.get("Online", True)},
    )
    if product.get("S3Path"):
        attrs["s3_path"] = product["S3Path"]
    return Scene(
        id=str(pid),
        name=name,
        source="cdse",
        start=start,
        stop=stop,
        footprint=geom,
        size=int(size) if isinstance(size, int) and size > 0 else None,
        checksum=checksum(product),
        published=published,
        url=f"{download_base.rstrip('/')}/odata/v1/Products({pid})/$value",
        attrs=attrs,
    )


def prefer(a: Scene, b: Scene) -> Scene:
    """Of two records of the same scene keep the original SAFE over its COG twin."""
    if a.attrs.get("cog") and not b.attrs.get("cog"):
        return b
    return a
