"""What a scan leaves behind: COG rasters, the detections GeoPackage with QGIS styles, a STAC
catalog. Every file is written under a temporary name and renamed."""
