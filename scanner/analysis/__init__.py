"""Analysis of a scan archive: the rasters as a lazy xarray data cube, the vectors as GeoDataFrames.

``open_scan(OUT)``, ``open_detections(OUT)`` and ``open_sigma0(PRODUCT)``; xarray, rioxarray and geopandas are imported
when first used, so importing the scanner stays cheap.
"""

from __future__ import annotations

from scanner.analysis.cube import open_scan
from scanner.analysis.detections import ScanDetections, open_detections
from scanner.analysis.sigma0 import open_sigma0

__all__ = ["ScanDetections", "open_detections", "open_scan", "open_sigma0"]
