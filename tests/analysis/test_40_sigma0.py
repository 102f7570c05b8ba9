"""open_sigma0: one product's σ⁰ in dB, georeferenced, and the mosaic is a thin layer over it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from polarscan.common.errors import UsageError


@pytest.fixture(scope="module")
def product(tmp_path_factory) -> Path:
    from scanner.demo.synthetic_product import write_datatake

    [p] = write_datatake(tmp_path_factory.mktemp("s0"), slices=1, scale=1 / 16, seed=11)
    return p


def test_sigma0_is_what_the_mosaic_colours(product, tmp_path):
    from polarscan.common.rgb import db_to_rgb
    from scanner import open_sigma0
    from scanner.mosaic import MosaicConfig, build_mosaic

    ds = open_sigma0(product, resolution=2000)
    assert set(ds.data_vars) == {"sigma0_hh", "sigma0_hv"}
    assert ds.attrs["mode"] == "EW" and ds.attrs["polarisations"] == "HH+HV"
    assert ds.sigma0_hh.attrs["units"] == "dB" and ds.rio.crs.to_epsg() == 3413
    hh, hv = ds.sigma0_hh.values, ds.sigma0_hv.values
    valid = np.isfinite(hh) & np.isfinite(hv)
    assert valid.mean() > 0.3
    # physics, not construction: co-pol backscatter over the sea is well above cross-pol
    assert np.nanmedian(hh[valid] - hv[valid]) > 5.0

    config = MosaicConfig(resolution_m=2000)
    res = build_mosaic([product], tmp_path / "m.tif", config)
    with rasterio.open(res.path) as src:
        rgb = src.read()
        assert src.transform == ds.rio.transform() and src.shape == hh.shape
    expected = np.moveaxis(db_to_rgb(hh, hv, config.rgb, "EW"), -1, 0)
    np.testing.assert_array_equal(rgb, expected)
    # pixel centres: the x/y coordinates sit half a pixel inside the grid's edges
    assert ds.x.values[0] == pytest.approx(src.transform.c + 1000.0)
    assert ds.y.values[0] == pytest.approx(src.transform.f - 1000.0)


def test_bad_products_and_values(product, tmp_path):
    from scanner import open_sigma0

    with pytest.raises(UsageError, match="resolution"):
        open_sigma0(product, resolution=0)
    single = tmp_path / product.name.replace("1SDH", "1SSH")
    shutil.copytree(product, single)
    with pytest.raises(UsageError, match="(?i)single|polari"):
        open_sigma0(single)
    with pytest.raises(UsageError):
        open_sigma0(tmp_path / "missing.SAFE")
