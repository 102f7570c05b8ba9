"""Copy the real IW GRDH sample's metadata into the repository, trimmed to what polarscan reads.

    .venv/bin/python tests/data/s1-iw/make_iw_sample.py ../shared/data/s1/S1B_IW_GRDH_1SDV_…_5371.SAFE

Source: the sarsen project's test data (Apache-2.0, ``LICENSE.sarsen``), a real Sentinel-1B IW
GRDH 1SDV product of 2021-12-23 (IPF 003.40) with the annotation, calibration and noise XML of VV
only. Written to ``scanner/demo/sample/<name>.SAFE`` (package data: the demo generator uses it):

- ``manifest.safe`` unchanged (it still lists the VH files and the measurement TIFFs);
- the VV annotation without the lists the reader never parses (antenna pattern, Doppler
  centroid, per-burst noise/replica/downlink lists, coordinate conversion), removed as whole
  elements — every other byte as distributed;
- the VV calibration with only the ``sigmaNought`` LUT (betaNought, gamma and dn removed);
- the VV noise file unchanged (range + azimuth noise, three sub-swaths IW1–IW3).

No VH file is stored: :mod:`scanner.demo.synthetic_product` derives the VH annotation,
calibration and noise by copying VV's with the polarisation changed (see README.md here).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DROP_ANNOTATION = (
    "antennaPattern",
    "dopplerCentroid",
    "coordinateConversion",
    "noiseList",
    "replicaInformationList",
    "downlinkInformationList",
    "rawDataAnalysisList",
    "attitudeList",
)
DROP_CALIBRATION = ("betaNought", "gamma", "dn")


def _drop(text: str, tags: tuple[str, ...]) -> str:
    for t in tags:
        # the closing tag at the opening tag's own indentation: nested namesakes (an
        # <antennaPattern> inside <antennaPatternList>) are deeper, one-line elements close inline
        pattern = rf"\n([ \t]*)<{t}(?: [^>]*)?>(?:[^\n]*?</{t}>|.*?\n\1</{t}>)"
        text = re.sub(pattern, "", text, flags=re.S)
    return text


def main(src: str) -> int:
    src_p = Path(src)
    dest = REPO / "scanner" / "demo" / "sample" / src_p.name
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "annotation" / "calibration").mkdir(parents=True)
    shutil.copyfile(src_p / "manifest.safe", dest / "manifest.safe")
    for f in (src_p / "annotation").glob("s1*-vv-*.xml"):
        (dest / "annotation" / f.name).write_text(_drop(f.read_text(), DROP_ANNOTATION))
    for f in (src_p / "annotation" / "calibration").glob("calibration-*-vv-*.xml"):
        out = dest / "annotation" / "calibration" / f.name
        out.write_text(_drop(f.read_text(), DROP_CALIBRATION))
    for f in (src_p / "annotation" / "calibration").glob("noise-*-vv-*.xml"):
        shutil.copyfile(f, dest / "annotation" / "calibration" / f.name)
    shutil.copyfile(src_p.parent / "LICENSE.sarsen", dest.parent / "LICENSE.sarsen")
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
