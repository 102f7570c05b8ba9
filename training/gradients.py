"""The only backend-specific code of the explanations: two gradient functions per Keras backend.

Keras 3 runs the same model on TensorFlow, JAX or torch, but "give me a gradient" is spelled
differently on each. Everything else in :mod:`training.explain` is NumPy, so the backend shows up
here only:

- :func:`input_gradients` — d(class probability)/d(input), for Integrated Gradients;
- :func:`activation_gradients` — the target layer's activations and d(class score)/d(activations),
  for Grad-CAM. It runs a *probe model* (see ``training.explain``) whose target layer output is
  followed by ``+ eps`` with ``eps`` a zero variable: TensorFlow differentiates with respect to the
  activation tensor directly, JAX (which can only differentiate functions of their arguments)
  differentiates with respect to ``eps`` through :class:`keras.StatelessScope`, which gives the
  same numbers.

Both take and return NumPy arrays and compile their step once per model (``tf.function`` /
``jax.jit``; under JAX the weights are arguments of the compiled step, so it never goes stale).
torch is not supported yet: asking for it raises a :class:`UsageError` naming the backend.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from polarscan.common.errors import UsageError

SUPPORTED_BACKENDS = ("tensorflow", "jax")

# compiled step functions, per model object (weak: they go when the model goes)
_INPUT_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ACTIVATION_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def backend_name() -> str:
    """The Keras backend of this process, after checking that explanations support it."""
    import keras

    name = keras.backend.backend()
    if name not in SUPPORTED_BACKENDS:
        raise UsageError(
            "explanations (Grad-CAM, Integrated Gradients) do not support the Keras backend "
            f"{name!r}",
            f"run with KERAS_BACKEND set to one of {', '.join(SUPPORTED_BACKENDS)}",
        )
    return name


def accelerator_present() -> bool:
    """Whether the backend computes on a GPU/TPU (large batches pay off) rather than the CPU."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    import jax

    return jax.default_backend() != "cpu"


def input_gradients(model, images: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, classes), d prob[class_index] / d images (N, H, W, C)), float32."""
    steps = _INPUT_STEPS.setdefault(model, {})
    if class_index not in steps:
        steps[class_index] = _make_input_step(model, class_index)
    step = steps[class_index]
    probs, grads = step(np.asarray(images, dtype=np.float32))
    return np.asarray(probs, dtype=np.float32), np.asarray(grads, dtype=np.float32)


def activation_gradients(
    probe_model, eps, images: np.ndarray, class_index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(activations (N, h, w, c), d score / d activations, probabilities (N, classes)).

    ``probe_model`` maps images to ``[activations + eps, probabilities]``; ``eps`` is its zero
    variable of shape (N, h, w, c). The score is the class probability (the model ends in a
    softmax; the authors' notebook differentiates the same output).
    """
    steps = _ACTIVATION_STEPS.setdefault(probe_model, {})
    if class_index not in steps:
        steps[class_index] = _make_activation_step(probe_model, eps, class_index)
    step = steps[class_index]
    acts, grads, probs = step(np.asarray(images, dtype=np.float32))
    return (
        np.asarray(acts, dtype=np.float32),
        np.asarray(grads, dtype=np.float32),
        np.asarray(probs, dtype=np.float32),
    )


def _make_input_step(model, class_index: int) -> Callable:
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                probs = model(x, training=False)
                score = tf.reduce_sum(probs[:, class_index])
            return probs, tape.gradient(score, x)

        return lambda x: step(tf.convert_to_tensor(x))

    import jax
    import keras

    variables = list(model.variables)

    def score(x, values):
        # weights enter as arguments, not as constants baked in at trace time: the compiled
        # step stays right if the model is trained further
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            probs = model(x, training=False)
        return probs[:, class_index].sum(), probs

    grad = jax.jit(jax.grad(score, has_aux=True))

    def step(x):  # type: ignore[no-redef]  # one step per backend, chosen above
        grads, probs = grad(x, [v.value for v in variables])
        return probs, grads

    return step


def _make_activation_step(probe_model, eps, class_index: int) -> Callable:
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def step(x):
            with tf.GradientTape() as tape:
                acts, probs = probe_model(x, training=False)
                score = tf.reduce_sum(probs[:, class_index])
            return acts, tape.gradient(score, acts), probs

        return lambda x: step(tf.convert_to_tensor(x))

    import jax
    import jax.numpy as jnp
    import keras

    variables = [v for v in probe_model.variables if v is not eps]

    def score(delta, x, values):
        mapping = [(eps, delta), *zip(variables, values, strict=True)]
        with keras.StatelessScope(state_mapping=mapping):
            acts, probs = probe_model(x, training=False)
        return probs[:, class_index].sum(), (acts, probs)

    grad = jax.jit(jax.grad(score, has_aux=True))
    zeros = jnp.zeros(tuple(eps.shape), dtype="float32")

    def step(x):  # type: ignore[no-redef]  # one step per backend, chosen above
        grads, (acts, probs) = grad(zeros, x, [v.value for v in variables])
        return acts, grads, probs

    return step
