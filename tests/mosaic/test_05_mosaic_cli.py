"""``cli.py mosaic`` and ``cli.py mosaic-stats`` through the real entry point: exit codes,
messages, files written — and nothing written when anything fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import cli
from tests.support.mosaic_products import other_datatake
from tests.support.products import copy_product, make_datatake, make_product


def files(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*")) if d.exists() else []


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> Path:
    """A fast config file (2 km pixels)."""
    p = tmp_path_factory.mktemp("cfg") / "mosaic.yaml"
    p.write_text("resolution_m: 2000\nrgb:\n  windows:\n    EW:\n      cross_db: [-35.0, -5.0]\n")
    return p


def test_mosaic_one_product(tmp_path, cfg, capsys):
    import rasterio

    out = tmp_path / "m.tif"
    assert cli.main(["mosaic", str(make_product()), "--out", str(out), "--config", str(cfg)]) == 0
    assert files(tmp_path) == ["m.tif"]
    assert "m.tif" in capsys.readouterr().out
    with rasterio.open(out) as ds:
        assert ds.res == (2000.0, 2000.0) and ds.crs.to_epsg() == 3413
        recipe = json.loads(ds.tags()["rgb_recipe"])
        assert recipe["windows"]["EW"]["cross_db"] == [-35.0, -5.0]
        assert recipe["windows"]["IW"]["cross_db"] == [-36.0, -6.0]  # the default


def test_crs_and_resolution_flags_override(tmp_path, cfg):
    import rasterio

    out = tmp_path / "utm.tif"
    argv = ["mosaic", str(make_product()), "--out", str(out), "--config", str(cfg)]
    assert cli.main([*argv, "--crs", "EPSG:32645", "--resolution", "4000"]) == 0
    with rasterio.open(out) as ds:
        assert ds.res == (4000.0, 4000.0) and ds.crs.to_epsg() == 32645
        assert ds.transform.c % 4000 == 0


def test_refuses_to_overwrite_unless_asked(tmp_path, cfg, capsys):
    out = tmp_path / "m.tif"
    out.write_bytes(b"keep me")
    argv = ["mosaic", str(make_product()), "--out", str(out), "--config", str(cfg)]
    assert cli.main(argv) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert cli.main([*argv, "--overwrite"]) == 0
    assert out.read_bytes()[:2] in (b"II", b"MM")


def test_several_strips_into_a_tif_is_refused(tmp_path, cfg, capsys):
    a = make_datatake(slices=2)[0]
    lonely = [a, make_datatake(slices=3)[2]]  # slice 1 and 3: a gap → two strips
    out = tmp_path / "m.tif"
    argv = ["mosaic", *map(str, lonely), "--out", str(out), "--config", str(cfg)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "2 strips" in err and "directory" in err
    assert files(tmp_path) == []


def test_several_strips_into_a_directory(tmp_path, cfg, capsys):
    a = make_datatake(slices=2)
    other = other_datatake(make_product(), tmp_path / "src")
    out = tmp_path / "mosaics"
    argv = ["mosaic", str(other), *map(str, a), "--out", str(out), "--config", str(cfg)]
    assert cli.main(argv) == 0
    assert files(out) == [
        "S1A_046117_058549_20221130T014342_20221130T014551_rgb.tif",
        "S1A_046117_05854A_20221130T014342_20221130T014446_rgb.tif",
    ]
    printed = capsys.readouterr().out
    assert "2 product(s)" in printed and "1 product(s)" in printed


def test_three_contiguous_slices_make_one_strip(tmp_path, cfg):
    a, b = make_datatake(slices=2)
    c = make_datatake(slices=3)[2]
    out = tmp_path / "mosaics"
    assert (
        cli.main(["mosaic", str(c), str(a), str(b), "--out", str(out), "--config", str(cfg)]) == 0
    )
    assert files(out) == ["S1A_046117_058549_20221130T014342_20221130T014655_rgb.tif"]


def test_bad_inputs_exit_2_and_write_nothing(tmp_path, cfg, capsys):
    good = make_product()
    broken = copy_product(good, tmp_path / "src", good.name.replace("BB15", "BB16"))
    next((broken / "measurement").glob("*-hh-*.tiff")).write_bytes(b"not a tiff")
    trunc = copy_product(make_product(zip=True), tmp_path / "src", None)
    data = trunc.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    iw = (
        tmp_path
        / "src"
        / "S1A_WV_SLC__1SSV_20221130T014342_20221130T014446_046117_058549_AAAA.SAFE"
    )
    iw.mkdir()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("resolutoin_m: 500\n")
    out_dir = tmp_path / "out"
    out = out_dir / "m.tif"
    cases = [
        ([str(good), str(broken)], [], "measurement"),
        ([str(trunc)], [], "zip"),
        ([str(iw)], [], "mode WV"),
        ([str(tmp_path / "nope.SAFE")], [], "not found"),
        ([str(good)], ["--config", str(bad_yaml)], "resolutoin_m"),
        ([str(good)], ["--crs", "EPSG:4326"], "not projected"),
        ([str(good)], ["--resolution", "-5"], "resolution"),
    ]
    for products, extra, needle in cases:
        argv = ["mosaic", *products, "--out", str(out), "--config", str(cfg), *extra]
        assert cli.main(argv) == 2, needle
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err, (needle, err)
        assert files(out_dir) == [], needle


def test_runtime_failure_mid_batch_leaves_nothing(tmp_path, cfg, capsys):
    """The second strip fails while being computed (its HV TIFF is cut short after the open
    check): the first strip, already computed, is not left behind either."""
    first = make_product()
    src = copy_product(make_datatake(slices=3)[2], tmp_path)
    tiff = next((src / "measurement").glob("*-hv-*.tiff"))
    data = tiff.read_bytes()
    tiff.write_bytes(data[: len(data) * 2 // 3])  # header intact, strips missing
    for out in (tmp_path / "out", tmp_path / "new" / "dir" / "m.tif"):
        argv = ["mosaic", str(first), str(src), "--out", str(out), "--config", str(cfg)]
        if out.suffix:  # a file target needs one strip: the broken slice alone
            argv = ["mosaic", str(src), "--out", str(out), "--config", str(cfg)]
        code = cli.main(argv)
        assert code in (1, 2)
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "reading" in err
        assert not out.exists()
    # folders it made are gone too; only the broken source product remains
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_mosaic_stats(tmp_path, cfg, capsys):
    import rasterio

    out = tmp_path / "m.tif"
    assert cli.main(["mosaic", str(make_product()), "--out", str(out), "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert cli.main(["mosaic-stats", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    with rasterio.open(out) as ds:
        data = ds.read()
        profile = ds.profile
    valid = (data != 0).any(axis=0)
    assert got["pixels"] == int(valid.sum())
    assert got["means"] == pytest.approx(list(data[:, valid].mean(axis=1) / 255), abs=1e-9)
    assert got["reference"] == [0.287, 0.287, 0.46]
    # sea mask raster on the mosaic grid: only the top half is "sea"
    mask = np.zeros(valid.shape, dtype=np.uint8)
    mask[: valid.shape[0] // 2] = 1
    mpath = tmp_path / "sea.tif"
    prof = dict(profile, count=1, nodata=None, driver="GTiff")
    with rasterio.open(mpath, "w", **prof) as ds:
        ds.write(mask, 1)
    assert cli.main(["mosaic-stats", str(out), "--sea-mask", str(mpath)]) == 0
    text = capsys.readouterr().out
    assert f"pixels {int((valid & (mask == 1)).sum())}" in text and "dataset" in text
    assert cli.main(["mosaic-stats", str(tmp_path / "none.tif")]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli.main(["mosaic-stats", str(mpath)]) == 2  # 1 band
    assert "not 3" in capsys.readouterr().err
