"""Training: the config, two tiny steps, checkpoints with cards, resume."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

import cli
from polarscan.common.config import load_config
from polarscan.common.errors import UsageError
from training.card import read_card
from training.io import load_model
from training.model import model_geometry
from training.train import TrainConfig, train


def test_shipped_config_is_the_authors_recipe(repo_root):
    cfg = load_config(TrainConfig, repo_root / "configs" / "train.yaml")
    shipped = yaml.safe_load((repo_root / "configs" / "train.yaml").read_text())
    assert set(shipped) == set(TrainConfig.model_fields)  # every key documented in the file
    assert cfg.geometry == (800, 512)
    assert (cfg.lr, cfg.batch_size, cfg.epochs) == (1e-3, 16, 200)
    assert cfg.weight_decay_keras == pytest.approx(0.1)  # TFA 1e-4 at lr 1e-3
    assert (cfg.early_stopping_patience, cfg.reduce_lr_factor, cfg.reduce_lr_patience) == (
        20,
        0.5,
        10,
    )
    assert cfg.monitor == "loss"
    assert cfg.model_copy(update={"val_fraction": 0.2}).monitor == "val_loss"


def test_unknown_key_and_bad_variant_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 0.001\nlearning_rate: 0.1\n")
    assert cli.main(["train", "--config", str(bad)]) == 2
    assert "unknown key 'learning_rate'" in capsys.readouterr().err
    bad.write_text("variant: 999-1\n")
    assert cli.main(["train", "--config", str(bad)]) == 2
    assert "unknown variant" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    cfg = TrainConfig(
        input_size=96, crop=64, data=tiny_dataset, out=out, epochs=1, steps_per_epoch=2,
        batch_size=4, pixel_spacing_m=2000.0, seed=3, run_eagerly=True,
    )  # fmt: skip
    history = train(cfg, verbose=0)
    return cfg, out, history


def test_two_steps_write_checkpoints_and_cards(tiny_run):
    cfg, out, history = tiny_run
    assert len(history.history["loss"]) == 1
    for name in ("best.keras", "best.keras.card.yaml", "last.keras", "state.json",
                 "history.csv", "config.yaml"):  # fmt: skip
        assert (out / name).is_file(), name
    best = load_model(out / "best.keras")
    assert model_geometry(best) == (96, 64)
    assert "augmentation" not in [lyr.name for lyr in best.layers]  # inference graph
    card = read_card(out / "best.keras", 96, 64)
    assert card.pixel_spacing_m == 2000.0 and card.window_px == 96
    assert json.loads((out / "state.json").read_text())["epoch"] == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_refuses_to_overwrite_and_resumes(tiny_run):
    cfg, out, _ = tiny_run
    with pytest.raises(UsageError, match="not empty"):
        train(cfg, verbose=0)
    more = cfg.model_copy(update={"epochs": 2})
    history = train(more, resume=True, verbose=0)
    assert history.epoch == [1]  # continued at epoch 2, not from scratch
    with open(out / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert json.loads((out / "state.json").read_text())["epoch"] == 2


def test_resume_without_a_run(tmp_path, tiny_dataset):
    cfg = TrainConfig(input_size=96, crop=64, data=tiny_dataset, out=tmp_path / "none")
    with pytest.raises(UsageError, match="nothing to resume"):
        train(cfg, resume=True, verbose=0)
