"""The mini-Xception of Grahn & Bianchi (2022), built by a pure function.

Layer recipe (domain brief §2, checked against the authors' HDF5 ``model_config``):
entry Conv2D(8, 3, stride 2) + BN + ReLU; seven residual blocks with 8…512 filters, each
[SeparableConv2D 3x3 + BN + ReLU] x 2, MaxPool 3x3/2 "same", plus a Conv2D 1x1/2 shortcut from the
block input; exit SeparableConv2D(1024) + BN + ReLU, global average pooling, Dropout 0.5,
Dense(2, softmax). 1,260,322 parameters (1,254,194 trainable) at every input size.

Preprocessing lives inside the model and takes raw 0–255 RGB: random augmentation (active only
in training), then CenterCrop and Rescaling(1/255). The model therefore sees only the central
``crop`` x ``crop`` pixels of its ``input_size`` x ``input_size`` input.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_FILTERS = (8, 16, 32, 64, 128, 256, 512)
#: Stable name of the Grad-CAM target: the last ReLU of the 512-filter block
#: (``activation_14`` in the authors' Keras-2 files).
GRADCAM_LAYER = "block7_relu2"
N_PARAMS = 1_260_322
N_TRAINABLE = 1_254_194


@dataclass(frozen=True)
class Variant:
    """An (input size, central crop) pair the authors used."""

    input_size: int
    crop: int


VARIANTS: dict[str, Variant] = {
    "800-512": Variant(800, 512),  # the training script's default
    "1536-1024": Variant(1536, 1024),  # the released model_1536_F1_095.h5
    "192-128": Variant(192, 128),  # the low-resolution model
}


def build_augmentation(seed: int | None = None):
    """The authors' training-time augmentation: a no-op at inference."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
            layers.RandomFlip("horizontal_and_vertical", seed=seed),
            layers.RandomRotation(0.4, fill_mode="constant", seed=seed),
            layers.RandomZoom(
                height_factor=(-0.15, 0.15), width_factor=None, fill_mode="constant", seed=seed
            ),
        ],
        name="augmentation",
    )


def build_model(
    input_size: int = 800, crop: int = 512, *, augment: bool = True, seed: int | None = None
):
    """Return the (uncompiled) mini-Xception for ``input_size`` inputs and a ``crop`` centre crop.

    ``augment=False`` leaves the random layers out entirely (inference-only graphs); the
    weights are the same either way.
    """
    import keras
    from keras import layers

    if crop > input_size:
        raise ValueError(f"crop {crop} is larger than the input size {input_size}")
    if crop < 32:
        raise ValueError(f"crop {crop} is too small: the network downsamples 128x (use >= 32)")

    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = inputs
    if augment:
        x = build_augmentation(seed)(x)
    x = layers.CenterCrop(crop, crop, name="center_crop")(x)
    x = layers.Rescaling(1.0 / 255, name="rescaling")(x)

    x = layers.Conv2D(8, 3, strides=2, padding="same", name="entry_conv")(x)
    x = layers.BatchNormalization(name="entry_bn")(x)
    x = layers.Activation("relu", name="entry_relu")(x)
    previous = x
    for i, filters in enumerate(BLOCK_FILTERS, start=1):
        for j in (1, 2):
            x = layers.SeparableConv2D(filters, 3, padding="same", name=f"block{i}_sepconv{j}")(x)
            x = layers.BatchNormalization(name=f"block{i}_bn{j}")(x)
            x = layers.Activation("relu", name=f"block{i}_relu{j}")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{i}_pool")(x)
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", name=f"block{i}_shortcut")(
            previous
        )
        x = layers.Add(name=f"block{i}_add")([x, shortcut])
        previous = x

    x = layers.SeparableConv2D(1024, 3, padding="same", name="exit_sepconv")(x)
    x = layers.BatchNormalization(name="exit_bn")(x)
    x = layers.Activation("relu", name="exit_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(2, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"mini_xception_{input_size}_{crop}")


def model_geometry(model) -> tuple[int, int]:
    """(input_size, crop) of a classifier: the side of its square image input, and of the
    central crop its ``center_crop`` layer passes on (the whole input when it has none).

    The one place a model's geometry is read (prediction, explanations, the scanner, model
    cards); a :class:`~polarscan.common.errors.UsageError` for a model without a fixed square
    (N, S, S, C) input."""
    from polarscan.common.errors import UsageError

    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2]:
        raise UsageError(
            f"model input shape {shape} is not a fixed square image batch (N, S, S, C)",
            "use a model with a fixed square input such as build_model(800, 512)",
            key="model",
        )
    size = int(shape[1])
    try:
        layer = model.get_layer("center_crop")
    except ValueError:  # no crop: the network sees its whole input
        return size, size
    return size, int(layer.height)
