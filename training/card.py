"""The model card that travels with every model: how the scanner must feed it.

Stored beside a model as ``<model file>.card.yaml``. The authors' legacy ``.h5`` files have no
card; :func:`default_card` derives one (mosaics at 500 m, 800-px windows, upsampled to the model's
input when it is larger, as the authors fed their 1536 model; the 192-px variant at 2 km).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import model_validator

from polarscan.common.config import StrictModel, load_config
from polarscan.common.rgb import RGBRecipe


class ModelCard(StrictModel):
    name: str = "mini-xception"
    input_size: int = 800  # model input, pixels
    crop: int = 512  # central crop the network sees
    window_px: int = 800  # mosaic pixels per window (resized to input_size when different)
    pixel_spacing_m: float = 500.0  # mosaic pixel spacing the model expects
    rgb: RGBRecipe = RGBRecipe()
    # acquisition modes the model accepts (mosaics carry theirs: MosaicResult.mode); the
    # authors' test set holds an IW scene too (domain brief §5), so both by default
    modes: tuple[Literal["EW", "IW"], ...] = ("EW", "IW")
    threshold: float = 0.5  # positive-class probability for a detection
    trained_on: str = "unknown"
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if not 0 < self.crop <= self.input_size:
            raise ValueError("crop must be in 1..input_size")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if not self.modes:
            raise ValueError("modes must name at least one of EW, IW")
        return self

    def accepts(self, mode: str) -> bool:
        """Whether mosaics of acquisition ``mode`` (EW | IW) may be fed to this model."""
        return mode.upper() in self.modes

    @property
    def crop_px(self) -> float:
        """The central crop measured in mosaic pixels."""
        return self.crop * self.window_px / self.input_size


def card_path(model_path: str | Path) -> Path:
    p = Path(model_path)
    return p.with_name(p.name + ".card.yaml")


#: Inputs up to this size are the authors' low-resolution variant (192 px ≈ one 400 km EW swath
#: at 2 km); larger ones were trained on 800-px images at 500 m (domain brief §2, inferred).
LOW_RES_MAX_INPUT = 256


def default_card(input_size: int, crop: int, name: str = "mini-xception") -> ModelCard:
    """The authors' feeding for a model without a card: 800-px windows of a 500 m mosaic
    (upsampled to the input, e.g. 1536, by nearest neighbour), or for the low-resolution
    variant windows of its own size at 2 km."""
    if input_size <= LOW_RES_MAX_INPUT:
        return ModelCard(
            name=name,
            input_size=input_size,
            crop=crop,
            window_px=input_size,
            pixel_spacing_m=2000.0,
        )
    return ModelCard(
        name=name, input_size=input_size, crop=crop, window_px=800, pixel_spacing_m=500.0
    )


def read_card(model_path: str | Path, input_size: int, crop: int) -> ModelCard:
    """The card beside ``model_path``, or the legacy default for its geometry."""
    p = card_path(model_path)
    if p.is_file():
        card = load_config(ModelCard, p)
        if (card.input_size, card.crop) != (input_size, crop):
            from polarscan.common.errors import UsageError

            raise UsageError(
                f"model card {p} says input {card.input_size}/crop {card.crop} but the model is {input_size}/{crop}",
                "fix or delete the card",
            )
        return card
    return default_card(input_size, crop, name=Path(model_path).stem)


def model_card(model_path: str | Path, model) -> ModelCard:
    """The card of a loaded model: :func:`read_card` at the model's own geometry
    (:func:`training.model.model_geometry`)."""
    from training.model import model_geometry

    return read_card(model_path, *model_geometry(model))


def write_card(card: ModelCard, model_path: str | Path) -> Path:
    p = card_path(model_path)
    p.write_text(yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False))
    return p
