"""Batched inference: stream windows out of the RGB mosaic COG and score them with the model.

Windows are read one at a time with rasterio windowed reads (the part beyond the raster is
filled with 0 = nodata), resized to the model input by nearest neighbour as the authors fed their
1536 model, and stacked into uint8 batches: the mosaic is never held in memory, and never as
float32 (the model rescales 0-255 itself). A reader thread prepares the next batches while the
model scores the current one, so the device is not left waiting on disk. Keras places the model on
the GPU by itself when the backend sees one (TensorFlow: any visible CUDA device; hide it with
``CUDA_VISIBLE_DEVICES=``); nothing here is device specific.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polarscan.common.errors import ProcessingError, UsageError
from scanner.tiling import MaskReader, Window, array_mask_reader
from training.card import ModelCard

log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of windows just finished


@dataclass(frozen=True)
class RGBCogInfo:
    """What the scanner needs to know about an RGB mosaic COG."""

    path: Path
    height: int
    width: int
    transform: object  # affine.Affine
    crs: Any  # rasterio CRS

    @property
    def crs_wkt(self) -> str:
        return self.crs.to_wkt() if self.crs else ""


def _open(path: str | Path):
    import rasterio
    from rasterio.errors import RasterioIOError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"mosaic not found: {p}", "build the mosaic first or fix the path")
    try:
        return rasterio.open(p)
    except RasterioIOError as err:
        raise UsageError(
            f"mosaic {p} is not a readable raster ({err})", "pass a GeoTIFF/COG RGB mosaic"
        ) from None


def _check_rgb(src, p: Path) -> None:
    if src.count != 3 or any(dt != "uint8" for dt in src.dtypes):
        raise UsageError(
            f"mosaic {p} has {src.count} band(s) of {', '.join(sorted(set(src.dtypes)))}; "
            "the model needs a 3-band uint8 RGB mosaic (0 = nodata)",
            "pass the RGB mosaic written by the mosaic stage (rgb.tif), not a backscatter raster",
        )


def read_mosaic_info(path: str | Path) -> RGBCogInfo:
    """Open and validate a mosaic: 3 bands of uint8. Raises :class:`UsageError` otherwise."""
    p = Path(path)
    with _open(p) as src:
        _check_rgb(src, p)
        return RGBCogInfo(p, src.height, src.width, src.transform, src.crs)


def read_valid_mask(path: str | Path) -> np.ndarray:
    """(H, W) bool: True where any band is non-zero. Read block by block (1 byte per pixel)."""
    p = Path(path)
    with _open(p) as src:
        _check_rgb(src, p)
        valid = np.zeros((src.height, src.width), dtype=bool)
        for _, win in src.block_windows(1):
            data = src.read(window=win)
            rs = slice(win.row_off, win.row_off + win.height)
            cs = slice(win.col_off, win.col_off + win.width)
            valid[rs, cs] = np.any(data != 0, axis=0)
    return valid


def open_valid_mask_reader(path: str | Path) -> MaskReader:
    """A :data:`scanner.tiling.MaskReader` over the mosaic's valid-data mask."""
    return array_mask_reader(read_valid_mask(path))


def read_window(src, row: int, col: int, height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8 from an open dataset; 0 beyond the raster edge.

    Reads only the part inside the raster and pads by hand: cheaper than rasterio's boundless
    reads (which go through a VRT) and exact.
    """
    out = np.zeros((height, width, 3), dtype=np.uint8)
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + height, src.height), min(col + width, src.width)
    if r1 > r0 and c1 > c0:
        from rasterio.windows import Window as RWindow

        data = src.read(window=RWindow(c0, r0, c1 - c0, r1 - r0))
        out[r0 - row : r1 - row, c0 - col : c1 - col] = np.moveaxis(data, 0, -1)
    return out


def nearest_index(src_size: int, dst_size: int) -> np.ndarray:
    """Source index of each destination pixel for a nearest-neighbour resize (pixel centres)."""
    return np.minimum(
        ((np.arange(dst_size) + 0.5) * (src_size / dst_size)).astype(np.int64), src_size - 1
    )


def resize_nearest(img: np.ndarray, size: int) -> np.ndarray:
    """Resize the first two axes of ``img`` to ``size`` x ``size`` by nearest neighbour."""
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img
    return img[nearest_index(h, size)][:, nearest_index(w, size)]


def iter_window_batches(
    mosaic_path: str | Path, windows: Sequence[Window], card: ModelCard, batch_size: int = 16
) -> Iterator[tuple[list[Window], np.ndarray]]:
    """Yield ``(windows, uint8 array (n, input, input, 3))`` batches in the order given."""
    if batch_size < 1:
        raise UsageError(f"batch size {batch_size} must be at least 1", "use e.g. 16")
    p = Path(mosaic_path)
    with _open(p) as src:
        _check_rgb(src, p)
        bands = _BandReader(src, windows)
        for start in range(0, len(windows), batch_size):
            chunk = list(windows[start : start + batch_size])
            batch = np.empty((len(chunk), card.input_size, card.input_size, 3), dtype=np.uint8)
            for i, w in enumerate(chunk):
                batch[i] = resize_nearest(bands.read(w), card.input_size)
            yield chunk, batch


class _BandReader:
    """Reads the windows of one grid row as a single horizontal band and slices it.

    Neighbouring windows overlap (by half, by default), so reading each one separately would
    decode every COG block several times; a grid row's windows share their rows, so one read
    per grid row is enough. The current band is kept (``size x row width x 3`` bytes: a few MB
    at 500 m); a band larger than ``max_bytes`` falls back to one read per window.
    """

    def __init__(self, src, windows: Sequence[Window], max_bytes: int = 256 * 2**20) -> None:
        self.src = src
        self.extent: dict[tuple[int, int], tuple[int, int]] = {}
        for w in windows:
            key = (w.row, w.size)
            c0, c1 = self.extent.get(key, (w.col, w.col + w.size))
            self.extent[key] = (min(c0, w.col), max(c1, w.col + w.size))
        self.max_bytes = max_bytes
        self.key: tuple[int, int] | None = None
        self.band: np.ndarray | None = None
        self.col0 = 0

    def read(self, w: Window) -> np.ndarray:
        key = (w.row, w.size)
        c0, c1 = self.extent.get(key, (w.col, w.col + w.size))
        if w.size * (c1 - c0) * 3 > self.max_bytes:
            return read_window(self.src, *w.window_box)
        if key != self.key:
            self.band = read_window(self.src, w.row, c0, w.size, c1 - c0)
            self.key, self.col0 = key, c0
        assert self.band is not None  # read above on the first call
        return self.band[:, w.col - self.col0 : w.col - self.col0 + w.size]


def check_card(model, card: ModelCard) -> None:
    """The card must describe this model's geometry, or windows would be cut wrongly."""
    from training.model import model_geometry

    size, crop = model_geometry(model)
    if (size, crop) != (card.input_size, card.crop):
        raise UsageError(
            f"model card says input {card.input_size}/crop {card.crop} but the model takes "
            f"{size}/{crop}",
            "use the card that came with the model (<model>.card.yaml) or delete it",
        )


def _prefetch(it: Iterator, depth: int) -> Iterator:
    """Run ``it`` in a daemon thread, ``depth`` items ahead; re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as err:  # handed to the consumer
            q.put(err)

    t = threading.Thread(target=work, name="window-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def predict_batch(model, batch: np.ndarray, pad_to: int | None = None) -> np.ndarray:
    """Positive-class probabilities of one uint8 batch. Short batches are zero-padded to
    ``pad_to`` so the compiled predict function is traced once."""
    n = len(batch)
    if pad_to and n < pad_to:
        pad = np.zeros((pad_to - n, *batch.shape[1:]), dtype=batch.dtype)
        batch = np.concatenate([batch, pad])
    out = np.asarray(model.predict_on_batch(batch.astype(np.float32)))
    if out.ndim != 2 or out.shape[1] < 2:
        raise UsageError(
            f"model returns shape {out.shape}, expected (batch, 2) class probabilities",
            "use a polar-low classifier built by training.model.build_model",
        )
    return out[:n, 1].astype(np.float32)


def score_windows(
    model,
    mosaic_path: str | Path,
    windows: Sequence[Window],
    card: ModelCard,
    batch_size: int = 16,
    *,
    prefetch: int = 2,
    progress: Progress | None = None,
) -> np.ndarray:
    """Positive-class probability of each window (float32, same order as ``windows``)."""
    check_card(model, card)
    read_mosaic_info(mosaic_path)  # fail before work starts
    probs = np.empty(len(windows), dtype=np.float32)
    i = 0
    batches = iter_window_batches(mosaic_path, windows, card, batch_size)
    try:
        for chunk, batch in _prefetch(batches, prefetch) if prefetch else batches:
            # no padding of the last batch: Keras relaxes the traced batch dimension after a
            # second shape, and padding would cost compute on CPU
            probs[i : i + len(chunk)] = predict_batch(model, batch)
            i += len(chunk)
            if progress:
                progress(len(chunk))
    except (UsageError, ProcessingError):
        raise
    except Exception as err:
        raise ProcessingError(
            f"scoring windows of {mosaic_path} failed: {err}", "check the mosaic file and model"
        ) from err
    return probs


# --- the model, once per process -----------------------------------------------------------

_MODELS: dict[tuple[str, float, str], Any] = {}
_MODEL_LOCK = threading.Lock()
PRECISIONS = ("off", "bfloat16", "float16")


def cached_model(model_path: str | Path, precision: str = "off"):
    """The model at ``model_path``, loaded once per process (keyed by path and mtime): a dask
    worker loads it on its first task and reuses it for every later mosaic.

    ``precision`` ``bfloat16``/``float16`` gives a mixed-precision copy for scoring — only in a
    process that sees a GPU (on a CPU it is slower, so the float32 model is returned)."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}",
                         key="mixed_precision")  # fmt: skip
    path_key = (str(Path(model_path).resolve()), Path(model_path).stat().st_mtime)
    with _MODEL_LOCK:
        base = _load_cached(model_path, (*path_key, "off"))
        if precision == "off" or not gpu_visible():
            return base
        key = (*path_key, precision)
        if key not in _MODELS:
            log.info("scoring in mixed_%s on the GPU", precision)
            _MODELS[key] = mixed_precision_copy(base, f"mixed_{precision}")
        return _MODELS[key]


def _load_cached(model_path: str | Path, key: tuple[str, float, str]):
    if key not in _MODELS:
        from polarscan.common.tfquiet import import_tensorflow_quietly
        from training.io import load_model

        # The client and every LocalCluster worker load the model: on a shared GPU each
        # TensorFlow would otherwise reserve nearly all its memory at first use.
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        import_tensorflow_quietly()
        _configure_threads()
        log.info("loading model %s", model_path)
        for old in [k for k in _MODELS if k[:2] != key[:2]]:  # a new file or mtime
            del _MODELS[old]
        _MODELS[key] = load_model(model_path)
    return _MODELS[key]


def mixed_precision_copy(model, policy: str = "mixed_bfloat16"):
    """The same mini-Xception built under a mixed-precision dtype policy, with ``model``'s
    weights: float16/bfloat16 compute, float32 variables."""
    import keras

    from training.model import build_model, model_geometry

    size, crop = model_geometry(model)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        fast = build_model(size, crop, augment=False)
    finally:
        keras.config.set_dtype_policy(previous)
    fast.set_weights(model.get_weights())
    return fast


def gpu_visible() -> bool:
    """Whether this process's Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no GPU runtime is "no GPU"
        return False
    return False


def _configure_threads() -> None:
    """Honour TF_NUM_INTRAOP_THREADS set by the runner for its worker processes."""
    n = os.environ.get("TF_NUM_INTRAOP_THREADS")
    if not n:
        return
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(n))
    except (ImportError, RuntimeError, ValueError):  # already initialised or another backend
        pass
