"""The synthetic generator: shapes, determinism, plausible levels, a visible signature."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from training.synthetic import (
    Vortex,
    backscatter_db,
    make_image,
    speckle,
    write_dataset,
)

NAME = re.compile(r"^[0-9a-f]{6}_\d{8}T\d{6}_\d{8}T\d{6}_mos_rgb\.png$")


def test_backscatter_levels_are_ew_like():
    hh, hv = backscatter_db((192, 192), 2000.0, np.random.default_rng(3), swath_steps=False)
    assert hh.dtype == hv.dtype == np.float32 and hh.shape == hv.shape == (192, 192)
    assert -24 < float(np.median(hh)) < -13
    assert -31 < float(np.median(hv)) < -23
    assert float(hv.min()) > -31  # the noise floor holds HV up
    # range gradient: near range (left) brighter than far range (right)
    assert hh[:, :20].mean() > hh[:, -20:].mean() + 2


def test_land_is_bright_in_both_channels():
    rng = np.random.default_rng(5)
    hh, hv = backscatter_db((128, 128), 2000.0, rng, land=True, swath_steps=False)
    sea_hh, sea_hv = backscatter_db((128, 128), 2000.0, np.random.default_rng(5), land=False)
    assert (hh > -12).mean() > 0.08 and (hv > -20).mean() > 0.08
    assert ((sea_hh > -12) & (sea_hv > -20)).mean() < 0.01


def test_swath_steps_make_column_offsets_in_hv():
    rng = np.random.default_rng(1)
    _, flat = backscatter_db((64, 200), 2000.0, np.random.default_rng(1), swath_steps=False)
    _, steps = backscatter_db((64, 200), 2000.0, rng, swath_steps=True)
    diff = (steps - flat).mean(axis=0)
    assert len(np.unique(np.round(diff, 3))) >= 3  # several bands
    assert np.abs(diff).max() > 0.1


def test_vortex_eye_is_dark_and_arms_bright():
    v = Vortex(row=96, col=96, radius_px=70)
    hh, _ = backscatter_db((192, 192), 2000.0, np.random.default_rng(2), vortex=v)
    base, _ = backscatter_db((192, 192), 2000.0, np.random.default_rng(2))
    d = hh - base
    assert d[92:100, 92:100].mean() < -2.5  # calm eye
    ring = d[40:152, 40:152]
    assert ring.max() > 4.0  # wind-roughened arms


def test_speckle_mean_one_and_variance_by_looks():
    rng = np.random.default_rng(0)
    out = speckle(np.ones((400, 400), np.float32), 4.0, rng)
    assert out.dtype == np.float32
    assert abs(out.mean() - 1) < 0.01 and abs(out.var() - 0.25) < 0.02
    with pytest.raises(ValueError):
        speckle(np.ones(3), 0, rng)


def test_make_image_is_deterministic_and_centre_in_crop():
    a, va = make_image(np.random.default_rng(7), 192, positive=True)
    b, vb = make_image(np.random.default_rng(7), 192, positive=True)
    assert a.shape == (192, 192, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert va == vb and va is not None
    assert 32 <= va.row < 160 and 32 <= va.col < 160  # inside the 128 central crop
    assert 50 <= va.radius_px <= 150  # 100-300 km at 2 km
    np.testing.assert_array_equal(a[..., 0], a[..., 1])  # R == G == HV
    assert (a[..., 2].astype(int) - a[..., 0]).mean() > 10  # HH brighter over sea
    n, vn = make_image(np.random.default_rng(7), 192, positive=False)
    assert vn is None


def test_positives_differ_from_negatives_near_centre():
    """Statistically: positives carry a dark eye plus brighter arms near their centre."""
    rng = np.random.default_rng(11)
    pos_contrast, neg_contrast = [], []
    for _ in range(12):
        img, v = make_image(rng, 192, positive=True)
        r, c = int(v.row), int(v.col)
        hh = img[..., 2].astype(float)
        pos_contrast.append(hh[r - 25 : r + 25, c - 25 : c + 25].std())
        img, _ = make_image(rng, 192, positive=False)
        neg_contrast.append(img[71:121, 71:121, 2].astype(float).std())
    assert np.median(pos_contrast) > 1.3 * np.median(neg_contrast)


def test_write_dataset_layout_names_and_determinism(tmp_path):
    out = write_dataset(tmp_path / "a", n_pos=3, n_neg=5, size=64, seed=4)
    assert out == tmp_path / "a" / "train"
    pos = sorted((out / "pos").glob("*.png"))
    neg = sorted((out / "neg").glob("*.png"))
    assert len(pos) == 3 and len(neg) == 5
    assert all(NAME.match(p.name) for p in pos + neg)
    ids = [p.name[:6] for p in pos + neg]
    assert len(set(ids)) < len(ids)  # ids recur across dates, like the real dataset
    with Image.open(pos[0]) as im:
        assert im.mode == "RGB" and im.size == (64, 64)
    with open(out / "vortices.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["file"] for r in rows) == [p.name for p in pos]
    again = write_dataset(tmp_path / "b", n_pos=3, n_neg=5, size=64, seed=4)

    def digest(root):
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file()
        }

    assert digest(out) == digest(again)
    other = write_dataset(tmp_path / "c", n_pos=3, n_neg=5, size=64, seed=5)
    assert digest(other) != digest(out)


def test_tool_writes_both_splits(tmp_path, repo_root):
    cmd = [
        sys.executable,
        str(repo_root / "tools" / "make_synthetic_dataset.py"),
        "--out",
        str(tmp_path / "ds"),
        "--n-pos", "2", "--n-neg", "2", "--test-pos", "1", "--test-neg", "1", "--size", "48",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "ds" / "train").rglob("*.png"))) == 4
    assert len(list((tmp_path / "ds" / "test").rglob("*.png"))) == 2
