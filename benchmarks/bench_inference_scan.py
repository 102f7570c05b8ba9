"""Inference throughput of the scan pipeline versus a bare ``model.predict`` on the same windows.

The pipeline (scanner.infer.score_windows) reads every window from a COG on disk, resizes and
batches it in a reader thread while the model scores the previous batch. The reference is
``model.predict`` on the very same windows already stacked in memory (no IO at all). Both run
side by side in one process, alternating, best of ``--repeats``; the figure that matters is the
ratio (target >= 0.9).

    .venv/bin/python benchmarks/bench_inference_scan.py            # demo model, 192 -> 128
    .venv/bin/python benchmarks/bench_inference_scan.py --input 800 --crop 512 --height 900 --width 2700
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=int, default=192, help="model input size")
    ap.add_argument("--crop", type=int, default=128, help="model crop")
    ap.add_argument("--height", type=int, default=400, help="mosaic rows")
    ap.add_argument("--width", type=int, default=1600, help="mosaic columns")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import keras
    import numpy as np

    from scanner.infer import iter_window_batches, score_windows
    from scanner.tiling import window_grid
    from tests.support.outputs_mosaics import write_rgb_mosaic
    from training.card import ModelCard
    from training.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(args.input, args.crop, augment=False)
    card = ModelCard(input_size=args.input, crop=args.crop, window_px=args.input)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rgb.tif"
        write_rgb_mosaic(path, args.height, args.width, pixel_m=500.0, slant=False)
        windows = window_grid(args.height, args.width, card, 0.5)
        x = np.concatenate([b for _, b in iter_window_batches(path, windows, card, 64)])
        x = x.astype(np.float32)
        n = len(windows)
        print(
            f"backend {keras.backend.backend()}, devices: {_devices()}; {n} windows of "
            f"{args.input} px (crop {args.crop}), batch {args.batch}, mosaic "
            f"{args.height}x{args.width}"
        )
        # warm-up: trace both code paths once
        model.predict(x[: args.batch], batch_size=args.batch, verbose=0)
        score_windows(model, path, windows[: args.batch], card, args.batch)
        model.predict_on_batch(x[: args.batch])
        bare, loop, pipe, serial = [], [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ref = model.predict(x, batch_size=args.batch, verbose=0)[:, 1]
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            for i in range(0, n, args.batch):
                model.predict_on_batch(x[i : i + args.batch])
            loop.append(time.perf_counter() - t)
            t = time.perf_counter()
            got = score_windows(model, path, windows, card, args.batch)
            pipe.append(time.perf_counter() - t)
            t = time.perf_counter()
            score_windows(model, path, windows, card, args.batch, prefetch=0)
            serial.append(time.perf_counter() - t)
        assert np.allclose(ref, got, atol=1e-5), "pipeline and bare predict disagree"
    b, lp, p, s = min(bare), min(loop), min(pipe), min(serial)
    print(f"bare model.predict (in memory): {b:7.2f} s  {n / b:8.1f} windows/s")
    print(f"bare predict_on_batch loop    : {lp:7.2f} s  {n / lp:8.1f} windows/s")
    print(f"pipeline, prefetch thread     : {p:7.2f} s  {n / p:8.1f} windows/s")
    print(f"pipeline, no prefetch         : {s:7.2f} s  {n / s:8.1f} windows/s")
    print(f"ratio pipeline/bare throughput: {b / p:.3f} (prefetch), {b / s:.3f} (no prefetch)")
    print(f"ratio pipeline/bare batch loop: {lp / p:.3f} (prefetch), {lp / s:.3f} (no prefetch)")


def _devices() -> str:
    try:
        import tensorflow as tf

        return ", ".join(d.device_type for d in tf.config.list_logical_devices()) or "cpu"
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
