"""The nightly batch scanner: sources, SAFE reading, mosaics, tiling, inference, outputs, orchestration."""

# Bind Python's sqlite3 to the system SQLite before anything loads TensorFlow, which exports the
# symbols of its own SQLite build: that one lacks the R*Tree module of GeoPackage spatial indexes
# (scanner.outputs.gpkg_tx says so if it happens anyway).
import sqlite3  # noqa: F401


def __getattr__(name: str):
    # the data-cube API, imported on first use (xarray and dask stay out of `import scanner`)
    if name in ("open_scan", "open_detections", "open_sigma0", "ScanDetections"):
        import scanner.analysis

        return getattr(scanner.analysis, name)
    raise AttributeError(f"module 'scanner' has no attribute {name!r}")
