"""Fixtures the scanner tests share."""

from __future__ import annotations

import pytest

from tests.support.outputs_mosaics import write_rgb_mosaic


@pytest.fixture(scope="module")
def mosaic(request, tmp_path_factory):
    """``(path, rgb, transform)`` of a synthetic position-encoded RGB COG, written once per
    test module and sized by that module's ``H`` and ``W`` (each module picks sizes that
    exercise its own edge cases)."""
    height, width = request.module.H, request.module.W
    path = tmp_path_factory.mktemp("mosaic") / "rgb.tif"
    rgb, transform = write_rgb_mosaic(path, height, width)
    return path, rgb, transform
