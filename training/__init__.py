"""The Grahn & Bianchi (2022) polar-low classifier: model, data, training, evaluation, explanations.

Heavy modules (TensorFlow/Keras) are imported lazily so that ``import training`` stays cheap.
"""

from __future__ import annotations

import importlib

# Bind Python's sqlite3 to the system SQLite before anything loads TensorFlow, which exports the
# symbols of its own SQLite build: that one lacks the R*Tree module of GeoPackage spatial indexes
# (scanner.outputs.gpkg_tx says so if it happens anyway).
import sqlite3  # noqa: F401

_EXPORTS = {
    "build_model": "training.model",
    "GRADCAM_LAYER": "training.model",
    "VARIANTS": "training.model",
    "load_model": "training.io",
    "gradcam": "training.explain",
    "integrated_gradients": "training.explain",
    "ig_magnitude": "training.explain",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
