"""Reading Sentinel-1 EW GRD products: manifest, annotation, LUTs and measurement windows."""

from scanner.safe.product import Product, open_product
from scanner.safe.xmlparse import GeolocationGrid

__all__ = ["GeolocationGrid", "Product", "open_product"]
