"""Shared helpers for the scan tests: a private demo cache, a model with the demo card, and
``cli.main`` driven in-process (so TensorFlow and the model load once per session)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """A private ``POLARSCAN_CACHE`` for the session (the demo generator runs once)."""
    root = tmp_path_factory.mktemp("polarscan-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("POLARSCAN_CACHE", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def scan_model(tmp_path_factory, small_model) -> Path:
    """The demo weights when built, else the untrained 192→128 model with the demo card."""
    from scanner.scan.config import DEMO_MODEL

    if DEMO_MODEL.is_file():
        return DEMO_MODEL
    from training.card import ModelCard, write_card

    path = tmp_path_factory.mktemp("model") / "untrained-192.keras"
    small_model.save(path)
    write_card(ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000.0), path)
    return path


def run_scan(*args: str) -> tuple[int, dict | None, str]:
    """``cli.main(["-q", "scan", …, "--json"])`` → (exit code, summary or None, stderr)."""
    import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["-q", "scan", *args, "--json"])
    text = out.getvalue()
    return rc, (json.loads(text) if text.strip() else None), err.getvalue()


def layer_counts(gpkg: Path) -> dict[str, int]:
    """Feature count of every layer of a GeoPackage."""
    import pyogrio

    return {
        name: pyogrio.read_info(gpkg, layer=name)["features"]
        for name, _ in pyogrio.list_layers(gpkg)
    }
