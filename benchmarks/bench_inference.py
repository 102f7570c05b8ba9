"""Inference and training-step speed of the classifier, side by side in one run.

    nice .venv/bin/python benchmarks/bench_inference.py [--n 64] [--n-authors 4]

1. images/s of our path: 192-px images scored at native size by the 192->128 model, batched
   (``training.predict.predict_proba``);
2. images/s of the authors' path: one image at a time, upsampled by nearest neighbour to 1536
   and scored by the 1536->1024 model with ``model.predict`` (their README's recipe);
3. seconds per training step at batch 16 (AdamW, augmentation on) for 192->128 and 800->512.

Weights are random (speed does not depend on them). First calls (graph tracing) are excluded.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _timed(fn, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64, help="images for our batched path")
    ap.add_argument("--n-authors", type=int, default=4, help="images for the authors' path")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=3)
    args = ap.parse_args(argv)

    import keras
    import tensorflow as tf

    from training.model import build_model
    from training.predict import predict_proba
    from training.synthetic import make_image
    from training.train import TrainConfig, compile_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = np.stack([make_image(rng, 192, positive=i % 2 == 0)[0] for i in range(args.n)])
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"TF {tf.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")  # fmt: skip

    small = build_model(192, 128, augment=False)
    predict_proba(small, images[: args.batch_size], args.batch_size)  # warm-up
    t_ours = _timed(lambda: predict_proba(small, images, args.batch_size))
    ours = args.n / t_ours

    big = build_model(1536, 1024, augment=False)

    def authors(img):
        x = tf.image.resize(img[None].astype("float32"), [1536, 1536], method="nearest")
        return big.predict(x, verbose=0)[0, 1]

    authors(images[0])  # warm-up (traces predict)
    t_auth = _timed(lambda: [authors(im) for im in images[: args.n_authors]])
    theirs = args.n_authors / t_auth

    print("\ninference (positive-class probability per image)")
    print(
        f"  ours    192->128 batched x{args.batch_size:<3d}: {ours:8.1f} images/s ({args.n} images)"
    )
    print(
        f"  authors 1536->1024, 1 at a time, NN upsample: {theirs:8.2f} images/s ({args.n_authors} images)"
    )
    print(f"  ratio ours/authors: {ours / theirs:.0f}x")

    print("\ntraining step, batch 16, AdamW + augmentation")
    step_times = {}
    for size, crop in ((192, 128), (800, 512)):
        model = build_model(size, crop, augment=True, seed=0)
        compile_model(model, TrainConfig(input_size=size, crop=crop))
        x = rng.uniform(0, 255, (16, size, size, 3)).astype("float32")
        y = keras.utils.to_categorical(rng.integers(0, 2, 16), 2)
        model.train_on_batch(x, y)  # warm-up (traces the train step)
        step_times[size] = _timed(
            lambda m=model, x=x, y=y: m.train_on_batch(x, y), args.train_steps
        )
        print(f"  {size}->{crop}: {step_times[size]:.2f} s/step")
    print(f"  ratio 800/192: {step_times[800] / step_times[192]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
