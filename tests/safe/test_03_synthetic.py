"""The synthetic product generator: consistent rescaled metadata, determinism, radiometric round
trip, the vortex where it was asked for, multi-slice datatakes, the command-line wrapper."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window
from scipy.interpolate import RegularGridInterpolator

from polarscan.common.errors import UsageError
from scanner.demo.synthetic_product import write_datatake
from scanner.safe import open_product
from scanner.safe.radiometry import block_centres, sigma0_blocks
from tests.support.products import make_datatake, make_product

VORTEX = (76.0, 80.0, 130.0)  # lat, lon, radius_km: inside the second slice


def test_rescaled_metadata_is_consistent(repo_root):
    sample = next((repo_root / "scanner/demo/sample").glob("S1A_EW_*.SAFE"))
    with open_product(sample, require_measurement=False) as real, open_product(make_product()) as p:
        assert p.shape == (669, 655)
        g, gr = p.geolocation_grid(), real.geolocation_grid()
        assert (g.line[-1], g.pixel[-1]) == (668, 654)  # edges map to edges
        np.testing.assert_array_equal(g.lat, gr.lat)  # same footprint
        assert p.pixel_spacing_m == pytest.approx(40.0 * 10486 / 654, rel=1e-4)
        for pol in ("HH", "HV"):
            cal = p.calibration(pol)
            assert (np.diff(cal.lines) > 0).all()
            assert all((np.diff(px) > 0).all() for px in cal.pixels)
            noise = p.noise(pol)
            assert all((np.diff(px) > 0).all() for px in noise.range.pixels)
            for b in noise.azimuth:
                assert 0 <= b.first_line <= b.last_line < 669
                assert 0 <= b.first_sample <= b.last_sample < 655
                assert (np.diff(b.lines) > 0).all() and len(b.lines) == len(b.values)
            # the LUTs still describe the same physical swath: compare at matching positions
            a_small = cal.evaluate(np.array([334.0]), np.array([100.0, 327.0, 600.0]))
            a_real = real.calibration(pol).evaluate(
                np.array([334.0 * 10707 / 668]), np.array([100.0, 327.0, 600.0]) * 10486 / 654
            )
            np.testing.assert_allclose(a_small, a_real, rtol=2e-3)


def test_deterministic_by_seed(tmp_path):
    a = make_product(seed=0)
    b = make_product(tmp_path / "again", seed=0)
    c = make_product(tmp_path / "other", seed=1)
    win = Window(0, 0, 655, 100)
    with open_product(a) as pa, open_product(b) as pb, open_product(c) as pc:
        for pol in ("HH", "HV"):
            np.testing.assert_array_equal(pa.read_dn(pol, win), pb.read_dn(pol, win))
            assert not np.array_equal(pa.read_dn(pol, win), pc.read_dn(pol, win))


def test_dn_statistics_look_like_ew_grdm():
    with open_product(make_product()) as p:
        hh = p.read_dn("HH", Window(0, 300, 655, 50))
        hv = p.read_dn("HV", Window(0, 300, 655, 50))
        s_hh = sigma0_blocks(p, "HH", 12)
        s_hv = sigma0_blocks(p, "HV", 12)
    valid = hh > 0
    assert 0.95 < valid.mean() < 1.0  # nodata only in a few edge columns
    assert 50 < np.median(hh[valid]) < 2000 and np.median(hv[valid]) < np.median(hh[valid])
    hh_db, hv_db = 10 * np.log10(np.nanmedian(s_hh)), 10 * np.log10(np.nanmedian(s_hv))
    assert -25 < hh_db < -10 and -35 < hv_db < -20 and hv_db < hh_db - 5


def _lonlat_of(grid, line: float, pixel: float) -> tuple[float, float]:
    pts = (grid.line.astype(float), grid.pixel.astype(float))
    lat = RegularGridInterpolator(pts, grid.lat)([[line, pixel]])[0]
    lon = RegularGridInterpolator(pts, grid.lon)([[line, pixel]])[0]
    return float(lat), float(lon)


def test_vortex_appears_at_its_lat_lon_and_slices_join():
    plain = make_datatake(slices=2, seed=5, scale=1 / 32)
    storm = make_datatake(slices=2, seed=5, scale=1 / 32, vortex=VORTEX)
    diffs, grids, names = [], [], []
    for a, b in zip(plain, storm, strict=True):
        with open_product(a) as pa, open_product(b) as pb:
            assert pa.name == pb.name
            names.append(pb.name)
            d = 10 * np.log10(sigma0_blocks(pb, "HH", 4) / sigma0_blocks(pa, "HH", 4))
            diffs.append(d)
            grids.append((pb.geolocation_grid(), pb.shape, pb.start, pb.stop, pb.footprint))
    # same texture and speckle with and without the storm: the north of slice 1 is untouched
    assert np.nanmax(np.abs(diffs[0][: len(diffs[0]) // 2])) < 0.05
    d = np.nan_to_num(diffs[1])
    i, j = np.unravel_index(np.argmin(d), d.shape)  # the calm eye is the darkest change
    assert d[i, j] < -2.0 and d.max() > 1.0  # dark eye, bright arms
    grid, shape = grids[1][0], grids[1][1]
    lat, lon = _lonlat_of(grid, block_centres(shape[0], 4)[i], block_centres(shape[1], 4)[j])
    from pyproj import Geod

    dist_km = Geod(ellps="WGS84").inv(lon, lat, VORTEX[1], VORTEX[0])[2] / 1000
    assert dist_km < 0.25 * VORTEX[2]
    # a datatake: same orbit and datatake id, contiguous times, footprints that touch
    (_, _, s0, e0, f0), (_, _, s1, e1, f1) = grids
    assert e0 == s1 and e1 - s1 == e0 - s0
    assert names[0].split("_")[6:8] == names[1].split("_")[6:8] == ["046117", "058549"]
    assert names[1].startswith("S1A_EW_GRDM_1SDH_20221130T014446_20221130T014551_")
    assert f0.distance(f1) < 0.03  # one radar line apart (~1.3 km here): adjacent, no gap
    assert f0.intersection(f1).area < 0.01 * f0.area


def test_vortex_outside_datatake_is_refused(tmp_path):
    with pytest.raises(UsageError, match="outside the synthetic datatake"):
        write_datatake(tmp_path, scale=1 / 32, vortex=(60.0, 10.0, 100.0))
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_land_is_bright_in_both_channels():
    with (
        open_product(make_product(land=True, seed=2)) as land,
        open_product(make_product(seed=2)) as sea,
    ):
        d_hh = sigma0_blocks(land, "HH", 8) / sigma0_blocks(sea, "HH", 8)
        d_hv = sigma0_blocks(land, "HV", 8) / sigma0_blocks(sea, "HV", 8)
    changed = np.nan_to_num(d_hh) > 1.5
    assert 0.05 < changed.mean() < 0.5
    assert np.nanmedian(d_hv[changed]) > 2.0


def test_command_line_wrapper(repo_root, tmp_path):
    tool = repo_root / "tools" / "make_synthetic_product.py"
    run = subprocess.run(
        [
            sys.executable,
            str(tool),
            "--out",
            str(tmp_path),
            "--scale",
            "0.03",
            "--zip",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = Path(run.stdout.strip())
    assert out.suffix == ".zip" and out.exists()
    with open_product(out) as p:
        assert p.shape == (321, 315)
    bad = subprocess.run(
        [sys.executable, str(tool), "--out", str(tmp_path / "x"), "--scale", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "scale must be in (0, 1]" in bad.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


@pytest.mark.slow
def test_full_size_product_in_bounded_time_and_memory(tmp_path):
    import resource
    import time

    t = time.perf_counter()
    (path,) = write_datatake(tmp_path, scale=1.0, vortex=(79.5, 90.0, 150.0), seed=0)
    took = time.perf_counter() - t
    with open_product(path) as p:
        assert p.shape == (10708, 10487)
        s = sigma0_blocks(p, "HV", 12)
    assert s.shape == (893, 874)
    assert took < 120
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1_500_000  # KiB


def test_radiometric_round_trip():
    """Reader ∘ generator = identity up to speckle (≈1500 looks per 12 × 12 block: ±0.1 dB) and
    the generator's deliberate per-sub-swath noise-model error (HV seams, a fraction of a dB)."""
    from scanner.demo.synthetic_product import true_sigma0

    with open_product(make_product(seed=0)) as p:
        lines, samples = p.shape
        rows, cols = block_centres(lines, 12), block_centres(samples, 12)
        for pol, median_db, p95_db in (("HH", 0.1, 0.4), ("HV", 0.5, 2.0)):
            got = sigma0_blocks(p, pol, 12)
            want = true_sigma0(pol, rows, cols, scale=1 / 16, seed=0)
            ok = np.isfinite(got)
            err = np.abs(10 * np.log10(got[ok] / want[ok]))
            assert np.median(err) < median_db, pol
            assert np.percentile(err, 95) < p95_db, pol
        # and the noise subtraction is what makes HV right: without it HV is biased by > 1 dB
        raw = sigma0_blocks(p, "HV", 12, denoise=False)
        want = true_sigma0("HV", rows, cols, scale=1 / 16, seed=0)
        assert np.nanmedian(10 * np.log10(raw / want)) > 1.0
