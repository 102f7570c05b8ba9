"""From Sentinel-1 EW products to georeferenced RGB mosaics: geocoding, resampling, mosaicking.

Public API: :func:`build_mosaic`, :func:`group_products`, :class:`MosaicResult`,
:class:`MosaicConfig`, :func:`channel_means`.
"""

from scanner.mosaic.config import MosaicConfig
from scanner.mosaic.mosaic import MosaicResult, build_mosaic, group_products
from scanner.mosaic.stats import channel_means

__all__ = ["MosaicConfig", "MosaicResult", "build_mosaic", "channel_means", "group_products"]
