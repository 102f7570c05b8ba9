"""The notebook-style example on the synthetic archive: several days, known counts."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from tests.analysis import synthetic_scan as syn

REPO = Path(__file__).resolve().parents[2]


def test_example_counts_per_day(synthetic_scan, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["x", str(synthetic_scan), str(tmp_path)])
    ns = runpy.run_path(str(REPO / "docs" / "example_datacube.py"), run_name="__main__")
    assert ns["per_day"].to_dict() == syn.PER_DAY
    assert (tmp_path / "max_probability.png").stat().st_size > 1000
    assert (tmp_path / "detection_gradcam.png").stat().st_size > 1000
    # the strongest detection is the first mosaic's 0.91 window
    assert ns["best"]["probability"] == 0.91
