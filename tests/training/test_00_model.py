"""The architecture is the authors' one, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from training.model import (
    GRADCAM_LAYER,
    N_PARAMS,
    N_TRAINABLE,
    VARIANTS,
    build_model,
    model_geometry,
)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_parameter_count_is_the_papers_at_every_variant(name):
    v = VARIANTS[name]
    model = build_model(v.input_size, v.crop)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert model.count_params() == N_PARAMS == 1_260_322
    assert trainable == N_TRAINABLE == 1_254_194
    assert model_geometry(model) == (v.input_size, v.crop)


def test_gradcam_layer_is_last_relu_of_512_block(small_model):
    layer = small_model.get_layer(GRADCAM_LAYER)
    assert layer.output.shape[-1] == 512
    names = [lyr.name for lyr in small_model.layers]
    # the next layer after it is the 512-block pooling: it is the block's last ReLU
    assert names[names.index(GRADCAM_LAYER) + 1] == "block7_pool"


def test_softmax_output_and_crop_only(small_model):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 192, 192, 3)).astype("float32")
    y = small_model.predict(x, verbose=0)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    # the model only sees the central 128 crop: changing the border changes nothing
    x2 = x.copy()
    x2[:, :32] = 0
    x2[:, :, -32:] = 255
    np.testing.assert_allclose(small_model.predict(x2, verbose=0), y, rtol=1e-5, atol=1e-6)


def test_crop_larger_than_input_is_refused():
    with pytest.raises(ValueError, match="crop"):
        build_model(128, 192)
