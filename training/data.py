"""The dataset on disk: ``<split>/{pos,neg}/*.png``, grouped validation splits, oversampling.

Labels follow the authors' alphabetical folder order: ``neg`` = 0, ``pos`` = 1. File names are
``<id6>_<start>_<stop>_mos_rgb.png``; the 6-hex id names a footprint that recurs on other dates,
so a validation split must keep all images of one id on one side (or it leaks). Class balance is
restored by the authors' oversampling: two repeated class streams sampled 50/50, with
``steps_per_epoch = ceil(2 * n_neg / batch)``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polarscan.common.errors import UsageError

log = logging.getLogger(__name__)

CLASSES = ("neg", "pos")  # index = label
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_ID = re.compile(r"^([0-9a-fA-F]{6})_")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 0 = neg, 1 = pos


def footprint_id(filename: str | Path) -> str | None:
    """The 6-hex footprint id that starts a dataset file name (lower case), or None."""
    m = _ID.match(Path(filename).name)
    return m.group(1).lower() if m else None


def list_split(folder: str | Path, *, check: bool = True) -> list[Sample]:
    """Every image of ``folder/{neg,pos}``, sorted; :class:`UsageError` for a missing folder,
    an empty class folder, or (``check``) a file Pillow cannot identify."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(
            f"dataset folder not found: {root}",
            "give the folder holding pos/ and neg/ (the fetch-dataset command downloads it)",
            key="data",
        )
    samples: list[Sample] = []
    for label, name in enumerate(CLASSES):
        d = root / name
        if not d.is_dir():
            raise UsageError(
                f"class folder missing: {d}", f"{root} must contain pos/ and neg/ image folders"
            )
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(
                f"class folder {d} has no images ({', '.join(IMAGE_SUFFIXES)})",
                "put the class's images there (both classes are needed)",
            )
        samples += [Sample(p, label) for p in files]
    if check:
        _check_readable(samples)
    return samples


def _check_readable(samples: list[Sample]) -> None:
    """Open every header now: a bad file (or one in a mode the reader refuses, such as 16-bit)
    fails in a second, not hours into training."""
    from PIL import Image, UnidentifiedImageError

    from training.predict import CONVERTIBLE

    for s in samples:
        try:
            with Image.open(s.path) as im:
                mode = im.mode
                im.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise UsageError(
                f"unreadable image {s.path} ({type(err).__name__})",
                "delete or replace the file (re-run fetch-dataset for the real dataset)",
            ) from None
        if mode != "RGB" and mode not in CONVERTIBLE:  # would fail mid-epoch in tf.data
            raise UsageError(
                f"image {s.path} has mode {mode}; the model needs 8-bit RGB",
                "convert it to 8-bit RGB (R = G = HV dB, B = HH dB) or remove it",
            )


def counts(samples: list[Sample]) -> tuple[int, int]:
    """(n_neg, n_pos)."""
    n_pos = sum(s.label for s in samples)
    return len(samples) - n_pos, n_pos


def grouped_split(
    samples: list[Sample], val_fraction: float, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """(train, val) with every footprint id wholly on one side. Files without an id are their
    own group (logged). ``val_fraction`` is the share of *groups* held out."""
    from sklearn.model_selection import GroupShuffleSplit

    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction {val_fraction} is not in (0, 1)", "use e.g. 0.15")
    groups = []
    unnamed = 0
    for s in samples:
        fid = footprint_id(s.path)
        if fid is None:
            unnamed += 1
            fid = f"file:{s.path.name}"
        groups.append(fid)
    if unnamed:
        log.warning("%d files have no 6-hex footprint id: each is its own group", unnamed)
    if len(set(groups)) < 2:
        raise UsageError(
            "a validation split needs at least two footprint ids", "set val_fraction: 0"
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    tr, va = next(splitter.split(np.zeros(len(samples)), groups=groups))
    train, val = [samples[i] for i in tr], [samples[i] for i in va]
    for name, part in (("train", train), ("validation", val)):
        if len(set(s.label for s in part)) < 2:
            log.warning("the %s split holds only one class; consider another seed", name)
    return train, val


def steps_per_epoch(n_neg: int, batch_size: int) -> int:
    """The authors' epoch length: ``ceil(2 * n_neg / batch)`` (twice the majority class)."""
    return max(1, math.ceil(2 * n_neg / batch_size))


def _load_fn(size: int):
    from training.predict import fit_to_input, read_image

    def load(path: bytes) -> np.ndarray:
        return fit_to_input(read_image(path.decode()), size).astype(np.float32)

    return load


def _decode(paths, labels, size: int):
    import tensorflow as tf

    load = _load_fn(size)

    def fn(path, label):
        img = tf.numpy_function(load, [path], tf.float32, stateful=False)
        img.set_shape((size, size, 3))
        return img, tf.one_hot(label, 2)

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    return ds, fn


def oversampled_dataset(samples: list[Sample], size: int, batch_size: int, seed: int = 0):
    """An infinite tf.data stream of (image 0-255 float32, one-hot label) batches, 50/50 by class:
    each class list is shuffled and repeated on its own, then the two are sampled with equal
    weight (the authors' ``sample_from_datasets``)."""
    import tensorflow as tf

    streams = []
    for label in (0, 1):
        part = [s for s in samples if s.label == label]
        if not part:
            raise UsageError(
                f"no {CLASSES[label]} images in the training split", "both classes are needed"
            )
        ds, fn = _decode([str(s.path) for s in part], [label] * len(part), size)
        ds = ds.shuffle(len(part), seed=seed + label, reshuffle_each_iteration=True).repeat()
        streams.append(ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights=[0.5, 0.5], seed=seed)
    return mixed.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def plain_dataset(samples: list[Sample], size: int, batch_size: int):
    """A finite, unshuffled stream of (image, one-hot label) batches (validation)."""
    import tensorflow as tf

    ds, fn = _decode([str(s.path) for s in samples], [s.label for s in samples], size)
    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)
