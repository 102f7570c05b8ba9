"""Shared fixtures. TensorFlow is slow to import and models slow to build: share them per session."""

from __future__ import annotations

import os
import sqlite3  # noqa: F401  before TensorFlow: see scanner/__init__.py
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `import tests.support.…` and the top-level packages


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def test_data() -> Path:
    return DATA


@pytest.fixture(scope="session")
def small_model():
    """The 192→128 variant, untrained but seeded: build once, never train it in place."""
    import keras

    from training.model import build_model

    keras.utils.set_random_seed(0)
    return build_model(192, 128, augment=False)
