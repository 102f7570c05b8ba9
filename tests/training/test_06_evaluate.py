"""Evaluation metrics against a hand-computed case, and the evaluate command's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import cli
from training.evaluate import compute_metrics, plot_curves


def test_metrics_hand_computed():
    # truth:  1    1    1    0    0    0    0    0
    # probs: .9   .6   .3   .8   .4   .2   .1   .05  -> at 0.5: tp=2 fn=1 fp=1 tn=4
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.3, 0.8, 0.4, 0.2, 0.1, 0.05])
    m = compute_metrics(y, p, 0.5)
    assert m["confusion_matrix"] == [[4, 1], [1, 2]]
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    # ROC-AUC = share of (pos, neg) pairs ranked right: pos .9 beats 5, .6 beats 4, .3 beats 3
    assert m["roc_auc"] == pytest.approx(12 / 15)
    # AP: ranks 1 .9 (P=1, R=1/3), 2 .8 neg, 3 .6 (P=2/3, R=2/3), 4 .4, 5 .3 (P=3/5, R=1)
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    m2 = compute_metrics(y, p, 0.25)  # threshold moves the matrix
    assert m2["confusion_matrix"] == [[3, 2], [0, 3]] and m2["recall"] == 1.0


def test_metrics_degenerate_cases():
    m = compute_metrics(np.zeros(4), np.array([0.1, 0.2, 0.7, 0.3]))
    assert m["roc_auc"] is None and m["f1"] == 0.0 and m["precision"] == 0.0
    with pytest.raises(ValueError):
        compute_metrics(np.zeros(3), np.zeros(4))


def test_pngs_are_valid_images(tmp_path):
    y = np.array([1, 0, 1, 0, 0])
    p = np.array([0.8, 0.3, 0.4, 0.6, 0.1])
    m = compute_metrics(y, p)
    files = plot_curves(y, p, m, tmp_path)
    assert sorted(f.name for f in files) == [
        "confusion_matrix.png",
        "pr_curve.png",
        "roc_curve.png",
    ]
    for f in files:
        with Image.open(f) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 100


def test_cli_evaluate_writes_json_and_pngs(saved_small, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "eval"
    # tiny_dataset images are 96 px: the 192 model upsamples them (nearest) on the way in
    assert cli.main(["evaluate", str(saved_small), "--data", str(tiny_dataset / "test"),
                     "--out", str(out)]) == 0  # fmt: skip
    assert "f1=" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 8 and m["n_pos"] == 4
    assert set(m) >= {"f1", "precision", "recall", "accuracy", "roc_auc", "pr_auc",
                      "confusion_matrix", "threshold"}  # fmt: skip
    assert sum(map(sum, m["confusion_matrix"])) == 8
    for name in ("pr_curve.png", "roc_curve.png", "confusion_matrix.png", "scores.csv"):
        assert (out / name).is_file()


def test_cli_evaluate_missing_data_exit_2(saved_small, tmp_path, capsys):
    out = tmp_path / "eval"
    assert cli.main(["evaluate", str(saved_small), "--data", str(tmp_path / "x"),
                     "--out", str(out)]) == 2  # fmt: skip
    assert "dataset folder not found" in capsys.readouterr().err
    assert not out.exists()
