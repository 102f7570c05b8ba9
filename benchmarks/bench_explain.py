"""What does explaining an image cost, next to predicting it? Grad-CAM and IG at 32/64/200 steps.

Everything is measured side by side in one run, on the same model and images, and printed as a
ratio to one plain prediction of one image (``model.predict_on_batch`` on a batch of one). The
batched prediction (per image, in a batch of ``--images``) is printed too: it is the scanner's
cost, and the fairer denominator when the hardware is saturated.

    .venv/bin/python benchmarks/bench_explain.py [--variants 192-128 800-512] [--repeats 3]

Targets (issue 3): Grad-CAM <= 3x a prediction; IG at 64 steps <= 40x.
Untrained seeded models: the cost does not depend on the weights. Each timing is the best of
``--repeats`` rounds after one warm-up round (which compiles the graphs); within a round the
measurements are interleaved, so a shared machine's load hits them alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def round_robin(tasks: dict[str, object], repeats: int) -> dict[str, float]:
    """Best time of each task over ``repeats`` rounds, the tasks interleaved within each round so
    that a busy machine slows them alike; one warm-up round first (traces and compiles)."""
    best = dict.fromkeys(tasks, float("inf"))
    for round_ in range(repeats + 1):
        for name, fn in tasks.items():
            t0 = time.perf_counter()
            fn()
            if round_:
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


def bench_variant(name: str, n_images: int, repeats: int, ig_steps: list[int]) -> list[tuple]:
    import keras

    from training import build_model, gradcam, integrated_gradients
    from training.explain import chunk_size
    from training.model import VARIANTS

    v = VARIANTS[name]
    keras.utils.set_random_seed(0)
    model = build_model(v.input_size, v.crop, augment=False)
    x = np.random.default_rng(0).uniform(0, 255, (n_images, v.input_size, v.input_size, 3))
    x = x.astype(np.float32)

    per = {  # label -> (task, images it covers)
        "predict, 1 image": (lambda: model.predict_on_batch(x[:1]), 1),
        f"predict, per image in a batch of {n_images}": (
            lambda: model.predict_on_batch(x),
            n_images,
        ),
        "Grad-CAM, 1 image": (lambda: gradcam(model, x[:1]), 1),
        f"Grad-CAM, per image in a batch of {n_images}": (
            lambda: gradcam(model, x, batch_size=n_images),
            n_images,
        ),
    }
    for steps in ig_steps:
        k = chunk_size(model, 32, steps + 1)
        per[f"IG {steps} steps, 1 image, {k} points per chunk"] = (
            lambda s=steps: integrated_gradients(model, x[:1], steps=s),
            1,
        )
    best = round_robin({k: fn for k, (fn, _) in per.items()}, repeats)
    times = {k: best[k] / n for k, (_, n) in per.items()}
    one = times["predict, 1 image"]
    batched = times[f"predict, per image in a batch of {n_images}"]
    return [(label, t, t / one, t / batched) for label, t in times.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["192-128", "800-512"])
    parser.add_argument("--images", type=int, default=8, help="batch for the batched rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ig-steps", type=int, nargs="+", default=[32, 64, 200])
    args = parser.parse_args(argv)

    import keras

    keras.utils.disable_interactive_logging()
    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs visible")
    for name in args.variants:
        rows = bench_variant(name, args.images, args.repeats, args.ig_steps)
        print(f"\nmodel {name}")
        print(f"{'':48s} {'seconds':>9s} {'x predict(1)':>13s} {'x predict/img':>14s}")
        for label, t, r1, rb in rows:
            print(f"{label:48s} {t:9.4f} {r1:13.1f} {rb:14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
