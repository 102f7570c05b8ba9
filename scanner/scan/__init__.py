"""The scan: find scenes over an area, mosaic, score and explain them, publish the results.

One module per responsibility, in the order the data meets them:

- :mod:`~scanner.scan.config` — the typed scan configuration (``configs/scan.yaml``);
- :mod:`~scanner.scan.request` — where and when to look;
- :mod:`~scanner.scan.stages` — the per-mosaic stages (fetch → mosaic → score → explain);
- :mod:`~scanner.scan.runner` — sequential, LocalCluster or scheduler: the only dask code;
- :mod:`~scanner.scan.publish` — the single writer of the record, GeoPackage and STAC;
- :mod:`~scanner.scan.summary` — what the run did, as one value;
- :mod:`~scanner.scan.run` — :func:`scan`, which ties them together.
"""

from scanner.scan.config import ScanConfig
from scanner.scan.request import ScanRequest
from scanner.scan.run import scan
from scanner.scan.summary import ScanSummary

__all__ = ["ScanConfig", "ScanRequest", "ScanSummary", "scan"]
