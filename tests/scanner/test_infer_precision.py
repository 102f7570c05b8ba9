"""Mixed precision for scoring: the copy agrees with float32, and CPU workers stay float32."""

from __future__ import annotations

import numpy as np
import pytest

from polarscan.common.errors import UsageError


def test_mixed_precision_copy_agrees_with_float32(small_model):
    from scanner.infer import mixed_precision_copy, predict_batch

    fast = mixed_precision_copy(small_model, "mixed_bfloat16")
    assert fast.dtype_policy.name == "mixed_bfloat16"
    assert small_model.dtype_policy.name == "float32"  # the global policy was restored
    x = np.random.default_rng(0).integers(0, 256, (4, 192, 192, 3)).astype(np.float32)
    ref, got = predict_batch(small_model, x), predict_batch(fast, x)
    assert got.shape == ref.shape and np.all(np.isfinite(got))
    # bfloat16 keeps 8 bits of mantissa: probabilities move by well under 0.05
    assert np.max(np.abs(got - ref)) < 0.05


def test_cached_model_keeps_float32_without_a_gpu(tmp_path, small_model):
    from scanner.infer import cached_model, gpu_visible

    path = tmp_path / "m.keras"
    small_model.save(path)
    assert not gpu_visible()  # CI and this machine have no GPU
    m = cached_model(path, "bfloat16")
    assert m.dtype_policy.name == "float32"
    assert cached_model(path) is m  # one float32 model per process
    with pytest.raises(UsageError, match="precision"):
        cached_model(path, "int8")
