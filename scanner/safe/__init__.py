"""Reading Sentinel-1 EW and IW GRD dual-pol products (HH+HV or VV+VH): manifest, annotation,
LUTs and measurement windows."""

from scanner.safe.product import Product, open_product
from scanner.safe.xmlparse import GeolocationGrid

__all__ = ["GeolocationGrid", "Product", "open_product"]
