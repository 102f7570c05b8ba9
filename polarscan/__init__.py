"""polarscan: find polar lows in Sentinel-1 SAR images (Grahn & Bianchi 2022 classifier).

This package holds the project's plumbing — shared infrastructure (:mod:`polarscan.common`), the
command line (:mod:`polarscan.cli`, :mod:`polarscan.commands`) and the packaged resources
(:mod:`polarscan.resources`: default configs, demo weights and sample). The stages live in the
top-level packages :mod:`scanner` and :mod:`training`.
"""

# Bind Python's sqlite3 to the system SQLite before anything loads TensorFlow, which exports the
# symbols of its own SQLite build: that one lacks the R*Tree module of GeoPackage spatial indexes
# (scanner.outputs.gpkg_tx says so if it happens anyway).
import sqlite3  # noqa: F401
