"""manifest.safe: what the product is (mission, mode, polarisations, times, orbit, datatake) and
where its files are (the dataObjectSection), parsed without touching any other file."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

from scanner.safe.xmlparse import XmlError, parse_time

_NS = {
    "safe": "http://www.esa.int/safe/sentinel-1.0",
    "s1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1",
    "s1sarl1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1",
}
# repID of each data object → our kind
_KINDS = {
    "s1Level1ProductSchema": "annotation",
    "s1Level1CalibrationSchema": "calibration",
    "s1Level1NoiseSchema": "noise",
    "s1Level1MeasurementSchema": "measurement",
}
_POL_IN_NAME = re.compile(r"-(hh|hv|vv|vh)-", re.IGNORECASE)


@dataclass(frozen=True)
class Manifest:
    mission: str  # "S1A"
    mode: str  # "EW"
    product_type: str  # "GRD"
    polarisations: tuple[str, ...]  # ("HH", "HV")
    start: datetime
    stop: datetime
    abs_orbit: int
    datatake_id: str  # 6 hex digits, as in the product name
    pass_direction: str  # "ASCENDING" | "DESCENDING"
    ipf_version: str
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, pol) → rel path


def _find(root: ET.Element, path: str) -> str:
    el = root.find(path, _NS)
    if el is None or el.text is None:
        raise XmlError(f"missing element {path.split('/')[-1]}")
    return el.text.strip()


def parse_manifest(data: bytes) -> Manifest:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise XmlError(f"not valid XML ({err})") from None
    family = _find(root, ".//safe:platform/safe:familyName")  # SENTINEL-1
    number = _find(root, ".//safe:platform/safe:number")  # A
    mission = "S" + family.rsplit("-", 1)[-1] + number
    pols = tuple(
        (el.text or "").strip().upper()
        for el in root.iterfind(".//s1sarl1:transmitterReceiverPolarisation", _NS)
    )
    software = root.find(".//safe:processing/safe:facility/safe:software", _NS)
    files: dict[tuple[str, str], str] = {}
    for obj in root.iterfind(".//dataObjectSection/dataObject"):
        kind = _KINDS.get(obj.get("repID", ""))
        loc = obj.find("byteStream/fileLocation")
        if kind is None or loc is None:
            continue
        href = loc.get("href", "")
        m = _POL_IN_NAME.search(href.rsplit("/", 1)[-1])
        if m:
            files[(kind, m.group(1).upper())] = href
    return Manifest(
        mission=mission.upper(),
        mode=_find(root, ".//s1sarl1:instrumentMode/s1sarl1:mode").upper(),
        product_type=_find(root, ".//s1sarl1:productType").upper(),
        polarisations=pols,
        start=parse_time(_find(root, ".//safe:acquisitionPeriod/safe:startTime")),
        stop=parse_time(_find(root, ".//safe:acquisitionPeriod/safe:stopTime")),
        abs_orbit=int(_find(root, ".//safe:orbitReference/safe:orbitNumber")),
        datatake_id=f"{int(_find(root, './/s1sarl1:missionDataTakeID')):06X}",
        pass_direction=_find(root, ".//s1:orbitProperties/s1:pass").upper(),
        ipf_version=software.get("version", "") if software is not None else "",
        files=files,
    )
