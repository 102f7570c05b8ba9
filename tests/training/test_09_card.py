"""Model cards: the legacy defaults the scanner tiles with, and the card file round trip."""

from __future__ import annotations

import pytest

from polarscan.common.errors import UsageError
from training.card import ModelCard, default_card, read_card, write_card


@pytest.mark.parametrize(
    ("size", "crop", "window", "spacing", "crop_px"),
    [
        (800, 512, 800, 500.0, 512.0),  # the training script's default
        (1536, 1024, 800, 500.0, 800 * 1024 / 1536),  # 800-px windows upsampled to 1536
        (192, 128, 192, 2000.0, 128.0),  # the low-resolution model at ~2 km
    ],
)
def test_legacy_defaults_follow_the_authors_feeding(size, crop, window, spacing, crop_px):
    card = default_card(size, crop)
    assert (card.window_px, card.pixel_spacing_m) == (window, spacing)
    assert card.crop_px == pytest.approx(crop_px)


def test_card_round_trip_and_mismatch(tmp_path):
    model = tmp_path / "m.keras"
    card = ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000, threshold=0.7)
    write_card(card, model)
    assert read_card(model, 192, 128) == card
    with pytest.raises(UsageError, match="card"):
        read_card(model, 800, 512)
    # no card: the legacy default for the model's geometry
    assert read_card(tmp_path / "other.h5", 800, 512) == default_card(800, 512, name="other")


def test_invalid_card_values_are_refused(tmp_path):
    (tmp_path / "m.keras.card.yaml").write_text("input_size: 192\ncrop: 128\nthreshold: 1.5\n")
    with pytest.raises(UsageError, match="threshold"):
        read_card(tmp_path / "m.keras", 192, 128)
    (tmp_path / "m.keras.card.yaml").write_text("input_size: 192\ncrop: 128\ncolour: red\n")
    with pytest.raises(UsageError, match="unknown key 'colour'"):
        read_card(tmp_path / "m.keras", 192, 128)
