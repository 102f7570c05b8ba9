"""Reading the dataset layout, grouped splits and the authors' oversampling."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import cli
from polarscan.common.errors import UsageError
from training.data import (
    Sample,
    counts,
    footprint_id,
    grouped_split,
    list_split,
    oversampled_dataset,
    plain_dataset,
    steps_per_epoch,
)


def test_footprint_id():
    assert footprint_id("0a1B2c_20190101T000000_20190101T000500_mos_rgb.png") == "0a1b2c"
    assert footprint_id("/x/y/abcdef_rest.png") == "abcdef"
    assert footprint_id("image.png") is None
    assert footprint_id("abcdeg_x.png") is None  # g is not hex


def test_list_split_labels(tiny_dataset):
    samples = list_split(tiny_dataset / "train")
    assert counts(samples) == (10, 6)
    assert all((s.label == 1) == (s.path.parent.name == "pos") for s in samples)


def test_missing_folder_and_empty_class(tmp_path, tiny_dataset):
    with pytest.raises(UsageError, match="dataset folder not found"):
        list_split(tmp_path / "nothing")
    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset / "train", root)
    shutil.rmtree(root / "pos")
    with pytest.raises(UsageError, match="class folder missing"):
        list_split(root)
    (root / "pos").mkdir()
    (root / "pos" / "notes.txt").write_text("no images here")
    with pytest.raises(UsageError, match="has no images"):
        list_split(root)


def test_unreadable_image(tmp_path, tiny_dataset):
    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset / "train", root)
    bad = root / "neg" / "abcdef_20200101T000000_20200101T000500_mos_rgb.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(UsageError, match="unreadable image .*abcdef"):
        list_split(root)


def test_wrong_image_mode_is_refused_before_training(tmp_path, tiny_dataset, capsys):
    from PIL import Image

    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset / "train", root)
    grey = root / "pos" / "0000aa_20200101T000000_20200101T000500_mos_rgb.png"
    Image.fromarray(np.zeros((96, 96), np.uint8)).save(grey)  # mode L: converted, accepted
    assert counts(list_split(root)) == (10, 7)
    bad = root / "neg" / "0000bb_20200101T000000_20200101T000500_mos_rgb.png"
    Image.fromarray(np.zeros((96, 96), np.uint16)).save(bad)  # 16-bit: refused
    with pytest.raises(UsageError, match="0000bb.*has mode I;16"):
        list_split(root)
    code = cli.main(["train", "--data", str(root), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs 8-bit RGB" in err[0]
    assert not (tmp_path / "o").exists()


def test_grouped_split_never_shares_an_id():
    samples = [
        Sample(path=__import__("pathlib").Path(f"{i % 13:06x}_{i:04d}.png"), label=i % 3 == 0)
        for i in range(200)
    ]
    for seed in range(5):
        train, val = grouped_split(samples, 0.25, seed=seed)
        ids_t = {footprint_id(s.path) for s in train}
        ids_v = {footprint_id(s.path) for s in val}
        assert ids_t and ids_v and not ids_t & ids_v
        assert len(train) + len(val) == 200
    a = grouped_split(samples, 0.25, seed=1)
    b = grouped_split(samples, 0.25, seed=1)
    assert a == b  # seeded
    with pytest.raises(UsageError):
        grouped_split(samples, 1.5)


def test_steps_per_epoch_is_the_authors():
    assert steps_per_epoch(1293, 16) == 162  # ceil(2586 / 16), the real training set
    assert steps_per_epoch(10, 16) == 2
    assert steps_per_epoch(0, 16) == 1


def test_oversampling_is_50_50(tiny_dataset):
    samples = list_split(tiny_dataset / "train")  # 6 pos vs 10 neg
    ds = oversampled_dataset(samples, 96, batch_size=8, seed=0)
    labels = []
    for x, y in ds.take(25):
        assert tuple(x.shape) == (8, 96, 96, 3)
        assert float(np.max(x)) > 1.0  # raw 0-255: the model rescales itself
        labels.append(np.argmax(y.numpy(), axis=1))
    frac = np.concatenate(labels).mean()
    assert 0.4 < frac < 0.6  # the raw share would be 6/16 = 0.375
    val = plain_dataset(samples, 96, batch_size=5)
    got = np.concatenate([np.argmax(y.numpy(), 1) for _, y in val])
    np.testing.assert_array_equal(got, [s.label for s in samples])


def test_cli_train_missing_data_exit_2(tmp_path, capsys):
    code = cli.main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset folder not found" in err[0]
    assert not (tmp_path / "o").exists()
