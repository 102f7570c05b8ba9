"""GPU inference throughput of the classifier, and how the scan scales over CPU dask workers.

1. Windows/s of ``training.model.build_model(input, crop)`` (800→512 and 1536→1024) per batch size
   (8…128), in fp32 and mixed precision (``keras.mixed_precision``: ``mixed_bfloat16``,
   ``mixed_float16``), with and without XLA (``model.compile(jit_compile=…)``), and the largest
   difference of the positive-class probability from fp32 on the same inputs. Inputs are random
   0–255 float32 images in host memory, so the host→device copy of every batch is counted, as in
   a scan. Weights are random (seeded): speed does not depend on them.
2. One EW scene's inference on the device: scoring the windows a full EW scene gives at 500 m
   with the 800→512 card (9, ``--scene-windows``) in one batch, and their Grad-CAM — the part
   of a scene's scan that runs on the GPU (the mosaic before it is CPU and GDAL work, measured
   in ``bench_mosaic.py``).
3. Scenes/hour of the real ``scan`` command over 1, 2, 4, 8 dask CPU workers on scale-reduced
   synthetic products (``bench_scan.write_products`` and ``bench_scan._scan``), with the parallel
   efficiency against 1 worker. The GPU is hidden from the workers (``CUDA_VISIBLE_DEVICES=``,
   ``JAX_PLATFORMS=cpu``) so they are CPU workers.

Any Keras backend: ``KERAS_BACKEND=jax`` or ``torch`` (no TensorFlow needed) or ``tensorflow``.

    KERAS_BACKEND=jax .venv/bin/python benchmarks/bench_gpu.py            # everything
    .venv/bin/python benchmarks/bench_gpu.py --no-scan                      # inference only
    .venv/bin/python benchmarks/bench_gpu.py --quick                        # CPU smoke run (s)

``--quick`` shrinks it to a tiny model (64→32), batch 2, two timed batches, one timing, and no
scan scaling (add ``--workers 1,2`` for it); every precision and XLA mode still runs.

``--time-limit S`` stops starting new measurements after S seconds (the rows not reached are
printed as ``skipped``), so a run fits a rented machine's slot; XLA-on rows come first, as the
ones the scan would use. ``benchmarks/device/`` holds the wheels kit and the script for a GPU
machine without Keras or GDAL.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (REPO, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


@dataclass(frozen=True)
class Row:
    model: str
    precision: str
    xla: str
    batch: int
    windows_per_s: float | None  # None: the configuration failed (error says why)
    max_diff: float | None
    error: str = ""


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        size, crop = item.split("-")
        out.append((int(size), int(crop)))
    return out


def describe_device() -> tuple[str, bool]:
    """(backend and devices in words, whether a GPU is visible to the backend)."""
    import keras

    backend = keras.backend.backend()
    gpus: list[str] = []
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif backend == "jax":
        import jax

        gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    where = ", ".join(gpus) if gpus else "CPU only"
    return f"backend {backend} (keras {keras.__version__}); devices: {where}", bool(gpus)


def _positive(probs) -> np.ndarray:
    return np.asarray(probs, dtype=np.float32)[:, 1]


def _build(size: int, crop: int, policy: str, weights):
    import keras

    from training.model import build_model

    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_model(size, crop, augment=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if weights is not None:
        model.set_weights(weights)
    return model


def time_model(model, data, n_batches: int, repeats: int) -> float:
    """Windows/s of ``predict_on_batch`` over ``n_batches`` batches (best of ``repeats``), after
    one warm-up call (which compiles); each result is pulled to the host."""
    np.asarray(model.predict_on_batch(data))  # warm-up / compile
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n_batches):
            np.asarray(model.predict_on_batch(data))
        best = min(best, time.perf_counter() - t0)
    return len(data) * n_batches / best


SKIPPED = "skipped (time limit)"


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''}"


def _reference(size: int, crop: int, inputs: dict[int, np.ndarray]):
    """Seeded fp32 weights and the positive-class probabilities per batch (or why not)."""
    import keras

    keras.utils.set_random_seed(0)
    reference = _build(size, crop, "float32", None)
    reference.compile(jit_compile="auto")
    out: dict[int, np.ndarray | str] = {}
    for b, x in inputs.items():
        try:
            out[b] = _positive(reference.predict_on_batch(x))
        except Exception as err:  # noqa: BLE001 - reported on that batch size's rows
            out[b] = _why(err)
    weights = reference.get_weights()
    del reference
    keras.backend.clear_session()
    return weights, out


def bench_inference(
    sizes: list[tuple[int, int]],
    batches: list[int],
    precisions: list[str],
    xla_modes: list[bool],
    n_batches: int,
    repeats: int,
    print_row=None,
    deadline: float = float("inf"),
) -> list[Row]:
    """Every (size, precision, XLA, batch) row; those not started before ``deadline``
    (``time.monotonic()``) are rows with the error :data:`SKIPPED`."""
    import keras

    rows: list[Row] = []

    def emit(row: Row) -> None:
        rows.append(row)
        if print_row:
            print_row(row)

    def late() -> bool:
        return time.monotonic() >= deadline

    for size, crop in sizes:
        name = f"{size}-{crop}"
        weights = None
        ref_p: dict[int, np.ndarray | str] = {}  # fp32 probabilities, or why they failed
        rng = np.random.default_rng(0)
        inputs = {
            b: rng.uniform(0, 255, size=(b, size, size, 3)).astype(np.float32) for b in batches
        }
        for precision in precisions:
            for xla in xla_modes:
                mode = "on" if xla else "off"
                model = None
                for b in batches:
                    if late():
                        emit(Row(name, precision, mode, b, None, None, SKIPPED))
                        continue
                    if weights is None:  # the fp32 reference, once per size
                        weights, ref_p = _reference(size, crop, inputs)
                    try:
                        ref = ref_p[b]
                        if isinstance(ref, str):
                            raise RuntimeError(f"the fp32 reference failed: {ref}")
                        if model is None:
                            model = _build(size, crop, POLICIES[precision], weights)
                            model.compile(jit_compile=xla)
                        p = _positive(model.predict_on_batch(inputs[b]))
                        diff = float(np.max(np.abs(p - ref)))
                        rate = time_model(model, inputs[b], n_batches, repeats)
                        emit(Row(name, precision, mode, b, rate, diff))
                    except Exception as err:  # OOM, an op without a kernel for the dtype, …
                        emit(Row(name, precision, mode, b, None, None, _why(err)))
                del model
                keras.backend.clear_session()
    return rows


HEADER = f"{'model':>10} {'precision':>9} {'xla':>3} {'batch':>5} {'windows/s':>10} {'max|dp|':>9}"


def format_row(row: Row) -> str:
    if row.error == SKIPPED:
        return f"{row.model:>10} {row.precision:>9} {row.xla:>3} {row.batch:>5} {'skipped':>10} {'':>9}"
    if row.windows_per_s is None:
        return f"{row.model:>10} {row.precision:>9} {row.xla:>3} {row.batch:>5} {'failed':>10} {'':>9}  {row.error}"
    return (
        f"{row.model:>10} {row.precision:>9} {row.xla:>3} {row.batch:>5} "
        f"{row.windows_per_s:>10.1f} {row.max_diff:>9.2e}"
    )


@dataclass(frozen=True)
class SceneTimes:
    score: float  # s: one scene's windows in one batch
    gradcam: float  # s: their Grad-CAM maps
    apart: float  # s: ``mosaics`` scenes scored one batch each, as the scan does now
    together: float  # s: the same windows in one batch (batched across mosaics)


def bench_scene(n_windows: int, size: int, crop: int, repeats: int, mosaics: int = 4) -> SceneTimes:
    """One scene's ``n_windows`` uint8 windows scored in one batch by the scan's
    ``predict_batch`` and explained by its ``gradcam`` (fp32); and ``mosaics`` such scenes
    scored one batch per mosaic vs all in one batch — the measurement that decides whether the
    inference stage should batch across the mosaics a worker holds. Each the best of
    ``repeats`` after a warm-up."""
    import keras

    from scanner.infer import predict_batch
    from training.explain import gradcam

    keras.utils.set_random_seed(0)
    model = _build(size, crop, "float32", None)
    rng = np.random.default_rng(1)
    windows = rng.integers(0, 256, size=(n_windows * mosaics, size, size, 3), dtype=np.uint8)
    one = windows[:n_windows]

    def best(fn) -> float:
        fn()  # warm-up: compiles
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    def apart() -> None:
        for k in range(mosaics):
            predict_batch(model, windows[k * n_windows : (k + 1) * n_windows])

    score = best(lambda: predict_batch(model, one))
    cam = best(lambda: gradcam(model, one.astype(np.float32), batch_size=n_windows))
    return SceneTimes(score, cam, best(apart), best(lambda: predict_batch(model, windows)))


def efficiency(walls: dict[int, float], n_scenes: int) -> list[tuple[int, float, float, float]]:
    """(workers, wall s, scenes/hour, efficiency vs 1 worker) per worker count.

    Efficiency is (rate_N / rate_1) / N; without a 1-worker run it is against the smallest."""
    base_n = min(walls)
    base_rate = n_scenes * 3600 / walls[base_n] / base_n
    out = []
    for n in sorted(walls):
        rate = n_scenes * 3600 / walls[n]
        out.append((n, walls[n], rate, rate / (base_rate * n)))
    return out


def bench_scan_scaling(workers: list[int], n_products: int, scale: float, tmp: Path) -> int:
    """Scenes/hour of the real scan over ``workers`` dask CPU workers; prints a table."""
    from bench_scan import _scan, write_products

    from polarscan.resources import demo_model

    model = demo_model()
    if not model.is_file():
        print(f"scan scaling skipped: the demo weights {model} are missing")
        return 1
    # the workers are spawned processes: they inherit these and see no GPU
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["JAX_PLATFORMS"] = "cpu"
    t0 = time.perf_counter()
    write_products(tmp / "products", n_products, scale)
    print(
        f"\n{n_products} synthetic products (scale {scale}) written in "
        f"{time.perf_counter() - t0:.1f} s (not counted)"
    )
    base = [
        "scan", "--source", f"local:{tmp / 'products'}", "--bbox", "70", "75", "110", "84",
        "--since", "2000-01-01", "--model", str(model), "--json", "--no-progress",
    ]  # fmt: skip
    walls: dict[int, float] = {}
    failed = 0
    for n in workers:
        rc, summary, wall = _scan([*base, "--workers", str(n), "--out", str(tmp / f"out-{n}")])
        counts = (summary or {}).get("counts", {})
        if rc != 0 or counts.get("processed") != n_products:
            print(f"{n} worker(s): FAILED (exit {rc}, counts {counts})")
            failed += 1
            continue
        walls[n] = wall
    if walls:
        print(f"{'workers':>7} {'wall s':>8} {'scenes/hour':>11} {'efficiency':>10}")
        for n, wall, rate, eff in efficiency(walls, n_products):
            print(f"{n:>7} {wall:>8.1f} {rate:>11.1f} {eff:>10.2f}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few batches (CPU smoke)")
    ap.add_argument("--sizes", help="input-crop pairs (default 800-512,1536-1024)")
    ap.add_argument("--batches", help="batch sizes (default 8,16,32,64,128)")
    ap.add_argument("--precisions", default="fp32,bf16,fp16", help="of fp32,bf16,fp16")
    ap.add_argument("--xla", choices=["both", "on", "off"], default="both")
    ap.add_argument("--n-batches", type=int, help="timed batches per measurement (default 10)")
    ap.add_argument("--repeats", type=int, help="best of this many timings (default 3)")
    ap.add_argument("--time-limit", type=float, help="start no measurement after S seconds")
    ap.add_argument("--scene-windows", type=int, default=9,
                    help="windows of one EW scene at 500 m, 800→512 card (default 9; 0: skip)")  # fmt: skip
    ap.add_argument("--scene-mosaics", type=int, default=4,
                    help="scenes scored apart vs in one batch (default 4)")  # fmt: skip
    ap.add_argument("--no-scan", action="store_true", help="skip the dask scan scaling")
    ap.add_argument("--workers", help="dask CPU worker counts for the scan (default 1,2,4,8)")
    ap.add_argument("--products", type=int, default=16, help="synthetic products for the scan")
    ap.add_argument("--scale", type=float, default=0.25, help="their grid scale")
    args = ap.parse_args(argv)

    q = args.quick
    sizes = _sizes(args.sizes or ("64-32" if q else "800-512,1536-1024"))
    batches = _ints(args.batches or ("2" if q else "8,16,32,64,128"))
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = sorted(set(precisions) - set(POLICIES))
    if unknown:
        ap.error(f"--precisions: unknown {', '.join(unknown)} (use {', '.join(POLICIES)})")
    # XLA on first: the mode a scan uses, and the rows to have if the time limit cuts the run
    xla_modes = {"both": [True, False], "on": [True], "off": [False]}[args.xla]
    n_batches = args.n_batches or (2 if q else 10)
    repeats = args.repeats or (1 if q else 3)
    workers = _ints(args.workers) if args.workers else ([] if q else [1, 2, 4, 8])
    if args.no_scan:
        workers = []

    from polarscan.common.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # no-op unless the backend is TensorFlow
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes: a model per row
    device, has_gpu = describe_device()
    print(device)
    if not has_gpu:
        print("no GPU visible: these are CPU figures")
    print(
        f"windows/s: predict_on_batch on host float32 inputs, {n_batches} batches, best of "
        f"{repeats}; max|dp|: largest |p - p_fp32| of the positive class on the same inputs"
    )
    deadline = time.monotonic() + (float("inf") if args.time_limit is None else args.time_limit)
    print(HEADER)
    bench_inference(
        sizes,
        batches,
        precisions,
        xla_modes,
        n_batches,
        repeats,
        print_row=lambda r: print(format_row(r), flush=True),
        deadline=deadline,
    )
    if args.scene_windows and time.monotonic() < deadline:
        size, crop = (64, 32) if q else (800, 512)
        k = args.scene_mosaics
        t = bench_scene(args.scene_windows, size, crop, repeats, k)
        print(
            f"\none EW scene's windows on the device ({args.scene_windows} x {size}->{crop}, fp32):"
            f" score {t.score:.3f} s, Grad-CAM {t.gradcam:.3f} s",
            flush=True,
        )
        print(
            f"{k} scenes' windows: one batch per mosaic {t.apart:.4f} s, one batch across the "
            f"mosaics {t.together:.4f} s: batching across mosaics {t.apart / t.together:.2f}x",
            flush=True,
        )
    elif args.scene_windows:
        print("\none EW scene's windows: skipped (time limit)")
    rc = 0
    if workers and time.monotonic() >= deadline:
        print("\nscan scaling: skipped (time limit)")
    elif workers:
        with tempfile.TemporaryDirectory() as tmp:
            rc = bench_scan_scaling(workers, args.products, args.scale, Path(tmp))
    return rc


if __name__ == "__main__":
    sys.exit(main())
