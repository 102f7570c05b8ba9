"""Score images with the classifier: read PNG/JPEG/TIFF, fit them to the model input, batch.

Images are fed as raw 0-255 RGB: the model carries its own CenterCrop and Rescaling. An image
whose size differs from the model input is resized with nearest neighbour — what the authors'
README does to feed 800-px PNGs to their 1536 model — and left untouched otherwise. Inference
goes through ``keras.ops`` only, so any Keras backend works.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from polarscan.common.errors import UsageError

log = logging.getLogger(__name__)

#: Modes converted to RGB without loss of meaning: alpha dropped, palette expanded, grey
#: replicated onto three channels (R = G = B).
CONVERTIBLE = {"RGBA": "alpha dropped", "RGBX": "padding dropped", "P": "palette expanded",
               "L": "grey copied to R, G and B", "LA": "grey copied to R, G and B, alpha dropped",
               "PA": "palette expanded, alpha dropped"}  # fmt: skip


def read_image(path: str | Path) -> np.ndarray:
    """An (H, W, 3) uint8 array. RGB is used as is; modes in :data:`CONVERTIBLE` are converted
    (logged); anything else (16-bit, float, CMYK, bilevel) is a :class:`UsageError`."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"image not found: {p}", "pass existing PNG, JPEG or TIFF files")
    try:
        with Image.open(p) as im:
            im.load()
            mode = im.mode
            if mode == "RGB":
                return np.asarray(im, dtype=np.uint8).copy()
            if mode in CONVERTIBLE:
                log.info("%s: mode %s converted to RGB (%s)", p, mode, CONVERTIBLE[mode])
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UsageError(
            f"cannot read image {p} ({' '.join(str(err).split())[:150]})",
            "pass a valid PNG, JPEG or TIFF file",
        ) from None
    raise UsageError(
        f"image {p} has mode {mode}; the model needs 8-bit RGB",
        "convert it to 8-bit RGB (R = G = HV dB, B = HH dB; 'polarscan mosaic' makes such images)",
    )


def fit_to_input(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size`` by nearest neighbour, only when the size differs."""
    if image.shape[:2] == (size, size):
        return image
    from PIL import Image

    if image.shape[0] != image.shape[1]:
        log.warning("image of %dx%d is not square: stretched to %d", *image.shape[:2], size)
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST))


def model_input_size(model) -> int:
    from training.model import model_geometry

    return model_geometry(model)[0]


def _batches(images: Iterable[np.ndarray], size: int, batch_size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for img in images:
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise UsageError(
                f"image array of shape {img.shape} is not (H, W, 3) RGB", "pass RGB images"
            )
        batch.append(fit_to_input(img.astype(np.uint8, copy=False), size))
        if len(batch) == batch_size:
            yield np.stack(batch).astype(np.float32)
            batch = []
    if batch:
        yield np.stack(batch).astype(np.float32)


def predict_proba(
    model, images: Iterable[np.ndarray] | np.ndarray, batch_size: int = 16
) -> np.ndarray:
    """Positive-class (polar low) probability per image, computed ``batch_size`` at a time.

    ``images`` is an (N, H, W, 3) array or any iterable of (H, W, 3) arrays (consumed lazily,
    so a generator of file reads keeps memory to one batch).
    """
    import keras

    if batch_size < 1:
        raise UsageError(
            f"batch size must be >= 1, got {batch_size}",
            "use a batch size of 1 or more",
            key="batch_size",
        )
    size = model_input_size(model)
    out = [
        keras.ops.convert_to_numpy(model(batch, training=False))[:, 1]
        for batch in _batches(images, size, batch_size)
    ]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def predict_files(model, paths: Sequence[str | Path], batch_size: int = 16) -> np.ndarray:
    """:func:`predict_proba` over image files; every file is checked before any is scored."""
    from PIL import Image, UnidentifiedImageError

    for p in paths:  # fail fast on a bad file instead of after minutes of scoring
        if not Path(p).is_file():
            raise UsageError(f"image not found: {p}", "pass existing PNG, JPEG or TIFF files")
        try:
            with Image.open(p):
                pass
        except (UnidentifiedImageError, OSError) as err:
            raise UsageError(
                f"cannot read image {p} ({type(err).__name__})", "pass a valid PNG, JPEG or TIFF"
            ) from None
    return predict_proba(model, (read_image(p) for p in paths), batch_size)
