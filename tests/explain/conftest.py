"""Models shared by the explanation tests: built once per session, never trained in place."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.legacy import reference_images


@pytest.fixture(scope="session")
def model_800():
    import keras

    from training.model import build_model

    keras.utils.set_random_seed(1)
    return build_model(800, 512, augment=False)


@pytest.fixture(scope="session")
def model_1536():
    import keras

    from training.model import build_model

    keras.utils.set_random_seed(2)
    return build_model(1536, 1024, augment=False)


@pytest.fixture(scope="session")
def legacy_model(test_data):
    """The authors' Keras-2 format (192 -> 128), outputs well away from 0.5 (see its README)."""
    from training.io import load_model

    return load_model(test_data / "legacy-h5" / "paper_tf25_192.h5")


@pytest.fixture(scope="session")
def legacy_images() -> np.ndarray:
    """The four reference images of tests/data/legacy-h5/README.md."""
    return reference_images()


def _patch_model(size: int = 96, crop: int | None = 64):
    """A model whose Grad-CAM is known in closed form: a non-negative 8x8/8 "patch sum"
    convolution, global average pooling and a head where more brightness means more positive.
    Its channel weight is positive, so Grad-CAM = patch sums / their maximum, on an 8-px grid."""
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    if crop is not None:
        x = layers.CenterCrop(crop, crop, name="center_crop")(x)
    x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
    x = layers.Conv2D(1, 8, strides=8, use_bias=False, kernel_initializer="ones", name="patches")(x)
    x = layers.Activation("relu", name="patch_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    dense = layers.Dense(2, activation="softmax", name="classifier")
    out = dense(x)
    dense.set_weights([np.array([[-0.01, 0.01]], np.float32), np.zeros(2, np.float32)])
    return keras.Model(inputs, out, name="patch_model")


@pytest.fixture(scope="session")
def make_patch_model():
    return _patch_model
