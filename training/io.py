"""Load and save classifier models: the project's ``.keras`` files and the authors' legacy ``.h5``.

Why two routes: the published weights are Keras-2 HDF5 files compiled with a tensorflow-addons
AdamW. tensorflow-addons no longer imports, and Keras 3's ``load_model`` rejects those files
(domain brief §3). Their architecture is fixed, though, so we read the input size and the
CenterCrop size from the file's ``model_config`` (plain JSON, read with h5py — no code runs),
check that the layers are the mini-Xception's, rebuild it with :func:`build_model` and load only
the weights. The optimizer state is ignored. Our own ``.keras`` files load with Keras safe mode,
which refuses serialized Python code (lambdas), so a user's model file cannot execute code.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import yaml

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import UsageError
from training.card import ModelCard, card_path
from training.model import BLOCK_FILTERS, build_model

log = logging.getLogger(__name__)

#: Filters of every SeparableConv2D / shortcut Conv2D of the mini-Xception, in build order.
EXPECTED_SEPCONV = tuple(f for f in BLOCK_FILTERS for _ in (1, 2)) + (1024,)
EXPECTED_CONV = (8, *BLOCK_FILTERS)
EXPECTED_BN = len(EXPECTED_SEPCONV) + 1
SUPPORTED = ".keras (saved by this project) or .h5 (the authors' Keras-2 files)"

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def load_model(path: str | Path):
    """A Keras 3 mini-Xception (uncompiled, inference graph) from a ``.keras`` or legacy ``.h5``.

    Raises :class:`UsageError` for a missing file, an unsupported extension, a file that is not
    a model and a model that is not the mini-Xception.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"model file not found: {p}", f"pass the path of a {SUPPORTED} file")
    name = p.name.lower()
    if name.endswith(".weights.h5"):
        raise UsageError(
            f"{p} holds weights only (no input size or crop)",
            "rebuild with training.build_model(size, crop, augment=False).load_weights(path), "
            "or save the whole model as .keras",
        )
    if name.endswith(".keras"):
        return _load_keras(p)
    if name.endswith((".h5", ".hdf5")):
        return _load_legacy_h5(p)
    raise UsageError(f"unsupported model file extension '{p.suffix}' ({p})", f"use {SUPPORTED}")


def _magic(p: Path, n: int = 8) -> bytes:
    with open(p, "rb") as fh:
        return fh.read(n)


def _load_keras(p: Path):
    import keras

    if _magic(p, 4) != _ZIP_MAGIC:
        raise UsageError(
            f"{p} is not a Keras model (a .keras file is a zip archive)",
            "pass a model saved by 'polarscan train' or keras.Model.save('x.keras')",
        )
    try:
        model = keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for a bad archive
        raise UsageError(
            f"{p} could not be loaded as a Keras model ({type(err).__name__}: {_short(err)})",
            "pass a .keras file saved by this project (safe mode refuses serialized code)",
        ) from None
    _check_keras_model(model, p)
    return model


def _short(err: Exception, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_keras_model(model, p: Path) -> None:
    """The rest of the project relies on the layer names of :func:`build_model`."""
    names = {layer.name for layer in model.layers}
    missing = {"center_crop", "block7_relu2", "classifier"} - names
    shape = tuple(model.output_shape) if hasattr(model, "output_shape") else ()
    if missing or shape[-1:] != (2,):
        raise UsageError(
            f"{p} is a Keras model but not this project's mini-Xception "
            f"(missing layers {sorted(missing)}, output shape {shape})",
            "expected a model built by training.build_model: layers center_crop, "
            "block7_relu2, classifier and a 2-class softmax output",
        )


def _walk_layers(config: dict) -> Iterator[dict]:
    """Every layer dict in a Keras model_config, descending into nested Sequential/Functional."""
    for layer in config.get("config", {}).get("layers", []):
        yield layer
        if isinstance(layer.get("config"), dict) and "layers" in layer["config"]:
            yield from _walk_layers(layer)


def legacy_geometry(model_config: dict, source: str | Path = "model") -> tuple[int, int]:
    """(input_size, crop) from a Keras-2 ``model_config``; checks the mini-Xception layer stack."""
    layers = list(_walk_layers(model_config))
    by_class: dict[str, list[dict]] = {}
    for layer in layers:
        by_class.setdefault(layer.get("class_name", ""), []).append(layer.get("config", {}))

    size = None
    for cfg in by_class.get("InputLayer", []):
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape and len(shape) == 4 and shape[1] == shape[2] and shape[3] == 3:
            size = int(shape[1])
            break
    crops = by_class.get("CenterCrop", [])
    sep = tuple(int(c.get("filters", -1)) for c in by_class.get("SeparableConv2D", []))
    conv = tuple(int(c.get("filters", -1)) for c in by_class.get("Conv2D", []))
    dense = tuple(int(c.get("units", -1)) for c in by_class.get("Dense", []))
    n_bn = len(by_class.get("BatchNormalization", []))
    problems = []
    if size is None:
        problems.append("no square RGB input layer")
    if len(crops) != 1 or crops[0].get("height") != crops[0].get("width"):
        problems.append(f"{len(crops)} square CenterCrop layers (expected 1)")
    if sep != EXPECTED_SEPCONV:
        problems.append(f"SeparableConv2D filters {list(sep)}")
    if conv != EXPECTED_CONV:
        problems.append(f"Conv2D filters {list(conv)}")
    if n_bn != EXPECTED_BN:
        problems.append(f"{n_bn} BatchNormalization layers")
    if dense != (2,):
        problems.append(f"Dense units {list(dense)}")
    if problems:
        raise UsageError(
            f"{source} is not the mini-Xception of Grahn & Bianchi: found " + "; ".join(problems),
            f"expected a square RGB input, one CenterCrop, SeparableConv2D filters "
            f"{list(EXPECTED_SEPCONV)}, Conv2D filters {list(EXPECTED_CONV)}, "
            f"{EXPECTED_BN} BatchNormalization layers and Dense(2)",
        )
    crop = int(crops[0]["height"])
    assert size is not None  # a missing input is one of the problems raised above
    if not 32 <= crop <= size:
        raise UsageError(
            f"{source} has CenterCrop {crop} for input {size}", "expected 32 <= crop <= input"
        )
    return size, crop


def _load_legacy_h5(p: Path):
    import h5py

    if _magic(p) != _HDF5_MAGIC:
        raise UsageError(f"{p} is not an HDF5 model file", f"pass a model file: {SUPPORTED}")
    try:
        with h5py.File(p, "r") as fh:
            raw = fh.attrs.get("model_config")
    except OSError as err:
        raise UsageError(
            f"{p} is not a readable HDF5 file ({_short(err)})", "re-download it"
        ) from None
    if raw is None:
        raise UsageError(
            f"{p} is an HDF5 file without a model_config (weights only, or not a Keras model)",
            "rebuild with training.build_model(size, crop, augment=False).load_weights(path)",
        )
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{p} has an unreadable model_config", "re-save the model") from None
    size, crop = legacy_geometry(config, p)
    model = build_model(size, crop, augment=False)
    try:
        model.load_weights(p)
    except Exception as err:  # noqa: BLE001 - shape mismatches surface as several types
        raise UsageError(
            f"the weights in {p} do not fit a mini-Xception {size}->{crop} ({_short(err)})",
            "check that the file is one of the authors' models, not a modified architecture",
        ) from None
    log.info("loaded legacy Keras-2 model %s (input %d, crop %d)", p, size, crop)
    return model


def save_model(model, path: str | Path, card: ModelCard) -> Path:
    """Write ``path`` (``.keras``) and its card ``<path>.card.yaml``, each atomically.

    The card is renamed into place first, then the model: a reader never sees a model without
    its card. Keras insists on the ``.keras`` suffix, so the temporary file keeps it.
    """
    import keras

    dest = Path(path)
    if dest.suffix != ".keras":
        raise UsageError(f"model path must end in .keras: {dest}", "rename the output file")
    from training.model import model_geometry

    if (card.input_size, card.crop) != model_geometry(model):
        raise UsageError(
            f"card says {card.input_size}->{card.crop} but the model is "
            f"{'->'.join(map(str, model_geometry(model)))}",
            "build the card from the model's geometry",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.{uuid.uuid4().hex[:8]}.keras")
    try:
        keras.saving.save_model(model, tmp)
        with atomic_path(card_path(dest)) as tmp_card:
            tmp_card.write_text(yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False))
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest
