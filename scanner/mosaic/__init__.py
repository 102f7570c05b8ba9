"""From Sentinel-1 EW products to georeferenced RGB mosaics: geocoding, resampling, mosaicking.

Public API: :func:`build_mosaic`, :func:`group_products`, :class:`MosaicResult`,
:class:`MosaicConfig`, :func:`channel_means`.
"""

from scanner.mosaic.config import MosaicConfig
from scanner.mosaic.mosaic import build_mosaic, group_id, group_products
from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
from scanner.mosaic.stats import channel_means

__all__ = [
    "MosaicConfig",
    "MosaicResult",
    "Provenance",
    "SceneRecord",
    "build_mosaic",
    "channel_means",
    "group_id",
    "group_products",
]
