"""Where does the model see a polar low? Grad-CAM and Integrated Gradients as arrays.

Both methods take a loaded model and a batch of images ``(N, H, W, 3)`` (raw 0–255, the model's
input frame) and return maps **in that same input frame**, so that the scanner can georeference
them with the window's transform unchanged.

The model only ever sees the central ``crop`` x ``crop`` pixels of its input (a ``CenterCrop``
layer inside it). Grad-CAM is therefore upsampled onto that crop and placed there; outside it the
map is NaN (undefined), never a zero that looks like "no evidence". This fixes the authors'
notebook, which stretched the heatmap over the whole input. Integrated Gradients is exactly zero
outside the crop by construction (the model ignores those pixels).

Only :mod:`training.gradients` knows the Keras backend; the arithmetic here is NumPy.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

import numpy as np

from polarscan.common.errors import UsageError
from training.model import GRADCAM_LAYER, model_geometry

log = logging.getLogger(__name__)

POSITIVE = 1  # class index of "polar low" (folders neg/pos in alphabetical order)

Progress = Callable[[int, int], None]  # (done, total)

#: On a CPU, chunks of more than about this many crop pixels run *slower* per image (the
#: activations fall out of cache; see docs/benchmarks.md): at most 2 path
#: points or images of an 800->512 model, 32 of a 192->128 one. Accelerators get ``batch_size``.
CPU_CHUNK_PIXELS = 2**19

# probe models per (model, layer, batch): built once, they share the model's weights
_PROBES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WARNED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> layers warned about


# --------------------------------------------------------------------------- geometry


def crop_window(model) -> tuple[int, int, int]:
    """(row0, col0, crop): where the pixels the network sees sit in the input frame.

    Keras' ``CenterCrop`` starts at ``(input - crop) // 2``. A model without a ``center_crop``
    layer sees its whole input.
    """
    size, crop = model_geometry(model)
    off = (size - crop) // 2
    return off, off, crop


def _input_size(model) -> int:
    return model_geometry(model)[0]


def check_images(model, images: np.ndarray) -> np.ndarray:
    """The batch as float32 (N, S, S, C), or a :class:`UsageError` saying what is wrong."""
    images = np.asarray(images)
    size = _input_size(model)
    channels = int(model.input_shape[-1])
    want = f"(N, {size}, {size}, {channels})"
    if images.ndim == 3 and images.shape == (size, size, channels):
        raise UsageError(
            f"got one image of shape {images.shape}; explanations take a batch {want}",
            "add a batch axis: images[None]",
        )
    if images.ndim != 4 or images.shape[1:] != (size, size, channels):
        raise UsageError(
            f"images of shape {images.shape} do not fit the model: it takes {want}",
            f"resize the images to {size}x{size} pixels with {channels} channels "
            "(the model card's window_px says what ground size that should cover)",
        )
    if images.shape[0] == 0:
        raise UsageError("the batch of images is empty", "pass at least one image")
    return images.astype(np.float32, copy=False)


def chunk_size(model, batch_size: int, total: int) -> int:
    """How many images/path points to push through the model at once: at most ``batch_size``
    (and, on a CPU, :data:`CPU_CHUNK_PIXELS`), in even chunks so little is padding."""
    from training.gradients import accelerator_present

    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}", "use e.g. 16")
    limit = min(batch_size, total)
    if not accelerator_present():
        crop = crop_window(model)[2]
        limit = max(1, min(limit, CPU_CHUNK_PIXELS // (crop * crop)))
    return -(-total // -(-total // limit))


# --------------------------------------------------------------------------- layers

_CONV_TYPES: tuple[str, ...] = (
    "Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D",
    "DepthwiseConv1D", "DepthwiseConv2D", "Conv2DTranspose", "Conv3DTranspose",
)  # fmt: skip


def _is_conv(layer) -> bool:
    """A Keras convolution, or a subclass of one."""
    return any(cls.__name__ in _CONV_TYPES for cls in type(layer).__mro__)


def gradcam_layers(model) -> list[str]:
    """Names of layers Grad-CAM can target: spatial feature maps (rank-4 outputs) computed from
    convolutions, in model order. Preprocessing layers (crop, rescaling, augmentation) are not
    feature maps and are left out."""
    names: list[str] = []
    seen_conv = False
    for layer in model.layers:
        seen_conv = seen_conv or _is_conv(layer)
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if seen_conv and len(shape) == 4:
            names.append(layer.name)
    return names


def _target_layer(model, layer: str):
    valid = gradcam_layers(model)
    if not valid:
        raise UsageError(
            f"model {model.name!r} has no convolutional layer, so Grad-CAM has no feature map "
            "to weight",
            "use Integrated Gradients (method ig), which works for any differentiable model",
            key="method",
        )
    if layer not in valid:
        raise UsageError(
            f"layer {layer!r} is not a convolutional feature map of model {model.name!r}",
            f"choose one of: {', '.join(valid)}",
        )
    return model.get_layer(layer)


def _probe(model, layer_name: str, batch: int):
    """A model ``images -> [target activations + eps, probabilities]`` sharing ``model``'s
    weights, where ``eps`` is a zero variable of shape (batch, h, w, c): JAX differentiates with
    respect to it (see :mod:`training.gradients`)."""
    key = (layer_name, batch)
    cache = _PROBES.setdefault(model, {})
    if key in cache:
        return cache[key]
    import keras

    target = model.get_layer(layer_name)
    shape = (batch, *tuple(int(d) for d in target.output.shape[1:]))

    class _Perturb(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.eps = self.add_weight(
                shape=shape, initializer="zeros", trainable=False, name="eps"
            )

        def call(self, x):
            return x + self.eps

        def compute_output_shape(self, input_shape):
            return input_shape

    perturb = _Perturb(name="gradcam_probe")

    def call_function(lyr, *args, **kwargs):
        out = lyr(*args, **kwargs)
        return perturb(out) if lyr is target else out

    clone = keras.models.clone_model(
        model, clone_function=lambda lyr: lyr, call_function=call_function
    )
    probe = keras.Model(clone.inputs, [perturb.output, clone.output], name=f"{model.name}_probe")
    cache[key] = (probe, perturb.eps)
    return cache[key]


# --------------------------------------------------------------------------- Grad-CAM


def bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights of a bilinear resize with half-pixel centres and clamped edges
    (the convention of ``tf.image.resize``/OpenCV): output pixel ``o`` samples the input at
    ``(o + 0.5) * n_in / n_out - 0.5``. Rows sum to 1; ``n_in == 1`` gives a constant."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    mat = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(mat, (rows, i0), 1.0 - frac)
    np.add.at(mat, (rows, i1), frac)
    return mat.astype(np.float32)


def cam_from_gradients(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM on the feature grid: channel-mean gradient weights, weighted sum, ReLU, divided
    by its maximum. (N, h, w, c) x 2 -> (N, h, w) in [0, 1]; an image with no positive evidence
    anywhere gives zeros."""
    weights = gradients.mean(axis=(1, 2), keepdims=True)  # (N, 1, 1, c)
    cam = np.maximum((activations * weights).sum(axis=-1), 0.0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cam = np.where(peak > 0, cam / np.where(peak > 0, peak, 1.0), 0.0)
    return cam.astype(np.float32)


def place_in_crop(cams: np.ndarray, size: int, window: tuple[int, int, int]) -> np.ndarray:
    """Upsample (N, h, w) grid maps bilinearly onto the crop and place them in a NaN (N, S, S)
    input frame."""
    row0, col0, crop = window
    n, h, w = cams.shape
    rows, cols = bilinear_matrix(crop, h), bilinear_matrix(crop, w)
    out = np.full((n, size, size), np.nan, dtype=np.float32)
    out[:, row0 : row0 + crop, col0 : col0 + crop] = np.einsum("ah,nhw,bw->nab", rows, cams, cols)
    return out


def gradcam(
    model,
    images: np.ndarray,
    *,
    layer: str = GRADCAM_LAYER,
    batch_size: int = 16,
    class_index: int = POSITIVE,
    progress: Progress | None = None,
) -> np.ndarray:
    """Grad-CAM maps ``(N, S, S)`` float32 in the input frame: [0, 1] inside the central crop,
    NaN outside.

    ``layer`` is any convolutional feature map (:func:`gradcam_layers`); the default is the last
    ReLU of the 512-filter block, as the authors used. When that layer is 1x1 (crops of 128 px
    and less) the map is constant over the crop — 1 where the model has positive evidence, 0
    where not — and a warning (once per model and layer) suggests a finer layer.
    """
    from training.gradients import activation_gradients, backend_name

    backend_name()
    images = check_images(model, images)
    target = _target_layer(model, layer)
    grid = tuple(int(d) for d in target.output.shape[1:3])
    warned = _WARNED.setdefault(model, set())
    if grid == (1, 1) and layer not in warned:
        warned.add(layer)
        finer = [n for n in gradcam_layers(model) if model.get_layer(n).output.shape[1] >= 4]
        log.warning(
            "Grad-CAM layer %s is 1x1 for this model's crop: the map is constant over the crop%s",
            layer,
            f" (a finer layer: {finer[-1]})" if finer else "",
        )
    n = len(images)
    batch = chunk_size(model, batch_size, n)
    probe, eps = _probe(model, layer, batch)
    cams = np.empty((n, *grid), dtype=np.float32)
    for start in range(0, n, batch):
        chunk = images[start : start + batch]
        m = len(chunk)
        if m < batch:  # the probe's eps has a fixed batch: pad the last chunk
            chunk = np.concatenate([chunk, np.zeros((batch - m, *chunk.shape[1:]), np.float32)])
        acts, grads, _ = activation_gradients(probe, eps, chunk, class_index)
        cams[start : start + m] = cam_from_gradients(acts[:m], grads[:m])
        if progress:
            progress(start + m, n)
    return place_in_crop(cams, _input_size(model), crop_window(model))


# --------------------------------------------------------------------------- Integrated Gradients


def trapezoid_weights(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of the trapezoidal rule on [0, 1] with ``steps`` intervals
    (``steps + 1`` points; the weights sum to 1)."""
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float64)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] = 0.5 / steps
    return alphas, weights


def integrated_gradients(
    model,
    images: np.ndarray,
    *,
    baseline: np.ndarray | float | None = None,
    steps: int = 200,
    batch_size: int = 32,
    class_index: int = POSITIVE,
    progress: Progress | None = None,
) -> np.ndarray:
    """Integrated Gradients ``(N, S, S, 3)`` float32 of the positive-class probability.

    Path from ``baseline`` (black, all zeros, by default as the authors used; else a scalar, one
    image or one per image) to each image, ``steps`` intervals, trapezoidal rule. The
    ``N * (steps + 1)`` path points are evaluated in even chunks of at most ``batch_size``
    (fewer on a CPU: :func:`chunk_size`), so memory stays bounded whatever ``steps`` is.
    Completeness: the attributions of an image sum to f(image) - f(baseline), up to the
    integration error.
    """
    from training.gradients import backend_name, input_gradients

    backend_name()
    images = check_images(model, images)
    if steps < 1:
        raise UsageError(f"steps must be >= 1, got {steps}", "use e.g. 200 (the authors' value)")
    base = np.zeros(1, np.float32) if baseline is None else np.asarray(baseline, np.float32)
    try:
        base = np.broadcast_to(base, images.shape)
    except ValueError:
        raise UsageError(
            f"baseline of shape {base.shape} does not fit images of shape {images.shape}",
            "pass a scalar, one image (S, S, 3) or one per image (N, S, S, 3)",
        ) from None

    alphas, weights = trapezoid_weights(steps)
    n = len(images)
    total = n * (steps + 1)
    pairs = [(i, k) for i in range(n) for k in range(steps + 1)]
    acc = np.zeros(images.shape, dtype=np.float64)
    batch = chunk_size(model, batch_size, total)
    for start in range(0, total, batch):
        chunk = pairs[start : start + batch]
        idx = np.array([i for i, _ in chunk])
        alpha = alphas[[k for _, k in chunk]].astype(np.float32)[:, None, None, None]
        points = base[idx] + alpha * (images[idx] - base[idx])
        if len(chunk) < batch:  # keep one compiled shape
            pad = np.zeros((batch - len(chunk), *points.shape[1:]), np.float32)
            points = np.concatenate([points, pad])
        _, grads = input_gradients(model, points, class_index)
        for j, (i, k) in enumerate(chunk):
            acc[i] += weights[k] * grads[j]
        if progress:
            progress(start + len(chunk), total)
    return ((images - base) * acc).astype(np.float32)


def ig_magnitude(attributions: np.ndarray, *, percentile: float = 99.0) -> np.ndarray:
    """Per-pixel display map ``(N, S, S)`` in [0, 1]: channel-summed absolute attribution
    divided by its per-image ``percentile`` and clipped, so a few extreme pixels do not wash
    out the rest."""
    attributions = np.asarray(attributions, dtype=np.float32)
    if attributions.ndim != 4:
        raise UsageError(
            f"attributions of shape {attributions.shape} are not a batch (N, S, S, C)",
            "pass the output of integrated_gradients",
        )
    if not 0.0 < percentile <= 100.0:
        raise UsageError(f"percentile must be in (0, 100], got {percentile}", "use e.g. 99")
    mag = np.abs(attributions).sum(axis=-1)
    top = np.percentile(mag.reshape(len(mag), -1), percentile, axis=1)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(top > 0, mag / np.where(top > 0, top, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
