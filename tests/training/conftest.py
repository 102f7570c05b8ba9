"""Session fixtures for the training tests: models are slow to build, load them once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def legacy_h5(test_data):
    return test_data / "legacy-h5" / "paper_tf25_192.h5"


@pytest.fixture(scope="session")
def legacy_model(legacy_h5):
    from training.io import load_model

    return load_model(legacy_h5)


@pytest.fixture(scope="session")
def saved_small(tmp_path_factory, small_model):
    """``small_model`` saved once as .keras with a card (threshold 0.5)."""
    from training.card import ModelCard
    from training.io import save_model

    path = tmp_path_factory.mktemp("saved") / "small.keras"
    card = ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000.0)
    return save_model(small_model, path, card)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A small synthetic dataset at 96 px: train 6 pos / 10 neg, test 4 pos / 4 neg."""
    from training.synthetic import write_dataset

    root = tmp_path_factory.mktemp("tiny_ds")
    write_dataset(root, n_pos=6, n_neg=10, size=96, seed=1, split="train")
    write_dataset(root, n_pos=4, n_neg=4, size=96, seed=1, split="test")
    return root
