"""Train the 192->128 demo weights on synthetic images, and write the quick-start examples.

    nice .venv/bin/python tools/make_demo_weights.py   # ~14 min on 2 shared CPU cores

Writes ``models/demo/polarlow-demo-192.keras`` (+ ``.card.yaml``) and ``examples/*.png``.
The weights are trained on *synthetic* images (training/synthetic.py at 2 km pixels, i.e.
~400 km windows like an EW swath): they show the pipeline working and are useless for science.
Refuses to write weights whose held-out positive-class F1 is below 0.9 (exit 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from polarscan.common.rgb import db_to_rgb  # noqa: E402
from training.card import ModelCard  # noqa: E402
from training.synthetic import (  # noqa: E402
    IMAGE_LOOKS,
    backscatter_db,
    make_image,
    random_vortex,
    speckle,
)

log = logging.getLogger("make_demo_weights")
MODEL = REPO / "models" / "demo" / "polarlow-demo-192.keras"
EXAMPLES = REPO / "examples"
PIXEL_M = 2000.0
SIZE, CROP = 192, 128

CARD = ModelCard(
    name="polarlow-demo-192",
    input_size=SIZE,
    crop=CROP,
    window_px=SIZE,
    pixel_spacing_m=PIXEL_M,
    threshold=0.5,
    trained_on="synthetic images — useless for science",
    note="Demo weights: the 192->128 mini-Xception trained on synthetic SAR-like images "
    "(tools/make_demo_weights.py). They exist to make the quick start and the tests run; "
    "they have never seen a real Sentinel-1 image.",
)


def synthetic_arrays(n_pos: int, n_neg: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N,192,192,3), labels 0/1), classes interleaved, seeded."""
    rng = np.random.default_rng(seed)
    labels = np.array([1] * n_pos + [0] * n_neg)
    rng.shuffle(labels)
    images = np.stack([make_image(rng, SIZE, positive=bool(y), pixel_m=PIXEL_M)[0] for y in labels])
    return images, labels


def train_demo(
    n_train: int = 800,
    n_test: int = 200,
    epochs: int = 16,
    seed: int = 0,
    verbose: int = 2,
    stop_f1: float = 0.96,
):
    """Train the demo model in memory; returns (model with augmentation, test metrics dict).

    CPU-cheap tricks, none of which changes the architecture or the saved graph: batch-norm
    momentum 0.9 instead of 0.99 while training (a few hundred steps are too few for the
    default's moving statistics to settle), and the weights of the epoch with the best F1 on a
    separate validation set (stopping early once it reaches ``stop_f1``). The test set is only
    scored at the end. Seeded: on TF 2.21 CPU the committed weights came out of this exactly
    (validation F1 0.95 at epoch 16; held-out test F1 0.95, ROC-AUC 0.99, ~14 min on 2 cores).
    """
    import keras

    from training.evaluate import compute_metrics
    from training.model import build_model
    from training.predict import predict_proba
    from training.train import TrainConfig, compile_model

    keras.utils.set_random_seed(seed)
    x, y = synthetic_arrays(n_train // 2, n_train - n_train // 2, seed)
    xv, yv = synthetic_arrays(50, 50, seed + 20_000)
    xt, yt = synthetic_arrays(n_test // 2, n_test - n_test // 2, seed + 10_000)
    model = build_model(SIZE, CROP, augment=True, seed=seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    compile_model(model, TrainConfig(variant="192-128"))  # the authors' optimizer and loss

    class KeepBest(keras.callbacks.Callback):
        """Validation F1 each epoch from the 4th: keep the best weights, stop when good."""

        best_f1, best_weights = -1.0, None

        def on_epoch_end(self, epoch, logs=None):
            if epoch < 3:
                return
            f1 = compute_metrics(yv, predict_proba(self.model, xv, 32), CARD.threshold)["f1"]
            log.info("epoch %d: validation F1 %.3f", epoch + 1, f1)
            if f1 > self.best_f1:
                self.best_f1, self.best_weights = f1, self.model.get_weights()
            if f1 >= stop_f1:
                self.model.stop_training = True

    keep = KeepBest()
    model.fit(
        x.astype("float32"),
        keras.utils.to_categorical(y, 2),
        batch_size=16,
        epochs=epochs,
        shuffle=True,
        verbose=verbose,
        callbacks=[keep],
    )
    if keep.best_weights is not None:
        model.set_weights(keep.best_weights)
    probs = predict_proba(model, xt, batch_size=32)
    return model, compute_metrics(yt, probs, CARD.threshold)


def _render(hh: np.ndarray, hv: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hh = 10 * np.log10(speckle(10 ** (hh / 10), IMAGE_LOOKS, rng))
    hv = 10 * np.log10(speckle(10 ** (hv / 10), IMAGE_LOOKS, rng))
    return db_to_rgb(hh, hv)


def write_examples(out: Path = EXAMPLES, seed: int = 2024) -> list[Path]:
    """Six 192x192 examples, named for what they show (not drawn from the training set)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE)
    made = {}
    for i in (1, 2, 3):
        v = random_vortex(SIZE, PIXEL_M, rng)
        hh, hv = backscatter_db(shape, PIXEL_M, rng, vortex=v, land=i == 3)
        made[f"polarlow_{i:02d}{'_near_coast' if i == 3 else ''}.png"] = _render(hh, hv, rng)
    for name, kw in (
        ("no_polarlow_01_open_sea.png", {}),
        ("no_polarlow_02_front.png", {"front": True}),
        ("no_polarlow_03_coast.png", {"land": True}),
    ):
        hh, hv = backscatter_db(shape, PIXEL_M, rng, **kw)
        made[name] = _render(hh, hv, rng)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, img in made.items():
        Image.fromarray(img).save(out / name)
        paths.append(out / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--n-train", type=int, default=800)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=MODEL)
    ap.add_argument("--examples-only", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for p in write_examples():
        log.info("wrote %s", p)
    if args.examples_only:
        return 0
    from training.io import save_model
    from training.train import inference_copy

    t0 = time.time()
    model, metrics = train_demo(args.n_train, args.n_test, args.epochs, args.seed)
    log.info("trained in %.0f s; held-out metrics: %s", time.time() - t0, metrics)
    if metrics["f1"] < 0.9:
        log.error("held-out F1 %.3f < 0.9: not writing weights", metrics["f1"])
        return 1
    save_model(inference_copy(model), args.out, CARD)
    log.info("wrote %s (+ card)", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
