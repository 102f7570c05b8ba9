"""An output folder as two nights of scanning leave it: mosaics with RGB and Grad-CAM COGs,
detections.gpkg with polar lows linked into one track (second run = the morning to report)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from scanner.forecast import TrackingConfig, find_polar_lows
from scanner.outputs.gpkg import write_results
from scanner.outputs.gpkg_forecast import forecast_update
from scanner.scan.config import ScanConfig
from scanner.scan.summary import Counts, ScanSummary
from tests.forecast.helpers import T0, H, W, crop, mosaic, prov, transform_at, write_gradcam
from tests.support.outputs_mosaics import rgb_array

DX = 150_000.0


@dataclass(frozen=True)
class Scanned:
    out: Path
    summary: ScanSummary
    mosaic_ids: tuple[str, str]


def write_night(out: Path, mid: str, hours: float, dx: float, run_id: str) -> Path:
    from scanner.cog import write_cog
    from scanner.outputs.rasters import write_float_cog

    folder = out / "mosaics" / mid
    folder.mkdir(parents=True)
    t = transform_at(-500_000.0 + dx)
    write_cog(folder / f"{mid}_rgb.tif", np.moveaxis(rgb_array(H, W, seed=1), -1, 0),
              transform=t, crs="EPSG:3413", nodata=0, colorinterp=["red", "green", "blue"])  # fmt: skip
    cam = np.full((H, W), np.nan, np.float32)
    yy, xx = np.mgrid[0:32, 0:48]
    cam[0:32, 0:48] = np.exp(-((yy - 14) ** 2 + (xx - 24) ** 2) / 60.0) * 0.9
    gradcam = write_gradcam(folder / f"{mid}_gradcam.tif", cam, t)
    write_float_cog(folder / f"{mid}_probability.tif", np.where(np.isfinite(cam), 0.9, np.nan),
                    transform=t, crs="EPSG:3413", name="probability")  # fmt: skip
    ws = [crop(0, 0), crop(0, 16), crop(60, 40)]
    m = mosaic(mid, ws, [0.8, 0.9, 0.3], start=T0 + timedelta(hours=hours), transform=t,
               rasters={"gradcam": gradcam, "rgb": str(folder / f"{mid}_rgb.tif")})  # fmt: skip
    p = prov(run_id)
    step = forecast_update(find_polar_lows(m, p), [mid], TrackingConfig())
    write_results(out / "detections.gpkg", [m], p, {"run_id": run_id}, also=[step])
    return folder


def summary_for(run_id: str, folder: Path) -> ScanSummary:
    return ScanSummary(run_id=run_id, source="demo", model="demo.keras", threshold=0.5,
                       counts=Counts(found=1, processed=1, mosaics=1, windows=3, detections=2),
                       mosaic_dirs=frozenset({str(folder)}))  # fmt: skip


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Scanned:
    out = tmp_path_factory.mktemp("out")
    write_night(out, "m1", 0, 0.0, "run-1")
    folder = write_night(out, "m2", 6, DX, "run-2")
    return Scanned(out, summary_for("run-2", folder), ("m1", "m2"))


def config(**notify) -> ScanConfig:
    return ScanConfig(out="x", notify=notify)
