"""The same maps under JAX as under TensorFlow (the backend is fixed per process: subprocess)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from training import gradcam, integrated_gradients

JAX_SCRIPT = """
import sys
import numpy as np
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from training import gradcam, integrated_gradients
from training.io import load_model
model = load_model(sys.argv[1])
x = np.load(sys.argv[2])
cam = gradcam(model, x, layer="block5_relu2")
ig = integrated_gradients(model, x[[0, 2]], steps=8, batch_size=18)
head = model.get_layer("classifier")
kernel, bias = head.get_weights()
head.set_weights([kernel[:, ::-1], bias[::-1]])  # swap the classes: compiled steps must follow
cam_swapped = gradcam(model, x, layer="block5_relu2")
ig_swapped = integrated_gradients(model, x[[0, 2]], steps=8, batch_size=18)
np.savez(sys.argv[3], cam=cam, ig=ig, cam_swapped=cam_swapped, ig_swapped=ig_swapped)
"""


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="jax is not installed (pip install 'polarscan[jax]' to test the JAX backend)",
)
def test_jax_backend_matches_tensorflow(
    tmp_path, repo_root, test_data, legacy_model, legacy_images
):
    model_path = test_data / "legacy-h5" / "paper_tf25_192.h5"
    np.save(tmp_path / "x.npy", legacy_images)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(repo_root),
        # the test checks numbers, not speed: cheap XLA compiles cut its time by half or more
        "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            JAX_SCRIPT,
            str(model_path),
            str(tmp_path / "x.npy"),
            str(tmp_path / "jax.npz"),
        ],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "jax.npz")
    np.testing.assert_allclose(
        got["cam"], gradcam(legacy_model, legacy_images, layer="block5_relu2"), atol=1e-4
    )
    # ramps and waves: no flat areas, so no max-pooling ties whose gradient routing may differ
    ig = integrated_gradients(legacy_model, legacy_images[[0, 2]], steps=8)
    np.testing.assert_allclose(got["ig"], ig, rtol=1e-3, atol=1e-4 * np.abs(ig).max())
    # new weights reach the compiled JAX steps: swapped classes negate IG, move Grad-CAM
    scale = np.abs(ig).max()  # stale weights would give ig_swapped == +ig
    np.testing.assert_allclose(got["ig_swapped"], -got["ig"], rtol=0, atol=0.02 * scale)
    assert np.nanmax(np.abs(got["cam_swapped"] - got["cam"])) > 0.1


def test_unsupported_backend_is_named(repo_root):
    """Keras' numpy backend cannot differentiate: a clear error naming it, exit code 2."""
    script = (
        "import numpy as np\n"
        "from polarscan.common.errors import UsageError\n"
        "from training import build_model, gradcam\n"
        "model = build_model(64, 32, augment=False)\n"
        "try:\n"
        "    gradcam(model, np.zeros((1, 64, 64, 3), np.float32))\n"
        "except UsageError as err:\n"
        "    print(err.exit_code, err)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=repo_root,
        env={**os.environ, "KERAS_BACKEND": "numpy", "PYTHONPATH": str(repo_root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout.startswith("2 "), proc.stderr[-2000:]
    assert "do not support the Keras backend 'numpy'" in proc.stdout
    assert "KERAS_BACKEND" in proc.stdout
