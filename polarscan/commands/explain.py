"""CLI command ``explain``: where does a model see a polar low in these images?

``polarscan explain MODEL IMAGE… --method gradcam|ig --out DIR`` writes, per image,
``<stem>.<method>.npy`` (the map in the model's input frame: Grad-CAM (S, S) with NaN outside the
crop, or IG attributions (S, S, 3)) and ``<stem>.<method>.png`` (the map over the image, the
crop the model sees outlined). Everything is checked before anything is written, and existing
outputs are kept unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from polarscan.commands._args import float_type, int_type

log = logging.getLogger(__name__)

METHODS = ("gradcam", "ig")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "explain",
        help="Grad-CAM or Integrated Gradients maps of a model on images",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("model", type=Path, help="model file: .keras, or the authors' legacy .h5")
    p.add_argument(
        "images",
        type=Path,
        nargs="+",
        metavar="IMAGE",
        help="RGB images (PNG/JPEG/TIFF, or .npy (S, S, 3)) at the model's input size "
        "(or at its card's window_px, resized by nearest neighbour)",
    )
    p.add_argument("--method", choices=METHODS, required=True, help="gradcam or ig")
    p.add_argument(
        "--layer",
        default=None,
        help="Grad-CAM target layer (default: block7_relu2, as the authors)",
    )
    p.add_argument(
        "--steps",
        type=int_type("--steps"),
        default=None,
        help="IG integration steps (default 200, as the authors)",
    )
    p.add_argument(
        "--baseline",
        type=float_type("--baseline", 0.0, 255.0, open_low=False, open_high=False, example="0"),
        default=0.0,
        help="IG baseline grey level 0-255 (default 0: black, as the authors)",
    )
    p.add_argument(
        "--batch-size",
        type=int_type("--batch-size"),
        default=None,
        help="images (Grad-CAM) or path points (IG) per step",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polarscan.common.errors import UsageError

    method = args.method
    if method == "ig" and args.layer is not None:
        raise UsageError("--layer applies to --method gradcam only", "drop --layer for ig")
    if method == "gradcam" and args.steps is not None:
        raise UsageError("--steps applies to --method ig only", "drop --steps for gradcam")
    stems = [p.stem for p in args.images]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise UsageError(
            f"several images share the name stem {dupes[0]!r}: their outputs would collide",
            "explain them in separate runs with different --out folders",
        )
    targets = [(args.out / f"{s}.{method}.npy", args.out / f"{s}.{method}.png") for s in stems]
    existing = [p for pair in targets for p in pair if p.exists()]
    if existing and not args.overwrite:
        raise UsageError(
            f"{len(existing)} output file(s) exist already, e.g. {existing[0]}",
            "pass --overwrite to replace them, or choose another --out",
        )
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file", "pass a folder")
    raw = [read_image(p) for p in args.images]  # every image is checked before any work

    import numpy as np

    from training.card import model_card
    from training.explain import check_images, crop_window, gradcam, integrated_gradients
    from training.io import load_model
    from training.model import GRADCAM_LAYER, model_geometry

    model = load_model(args.model)
    size = model_geometry(model)[0]
    card = model_card(args.model, model)
    raw = [fit_image(p, img, size, card.window_px) for p, img in zip(args.images, raw, strict=True)]
    images = check_images(model, np.stack(raw))
    probs = model.predict(images, verbose=0)[:, 1]
    if method == "gradcam":
        layer = args.layer or GRADCAM_LAYER
        maps = gradcam(model, images, layer=layer, batch_size=args.batch_size or 16)
        label = f"Grad-CAM ({layer})"
    else:
        steps = args.steps or 200
        maps = integrated_gradients(
            model, images, baseline=args.baseline, steps=steps, batch_size=args.batch_size or 32
        )
        label = f"Integrated Gradients ({steps} steps, baseline {args.baseline:g})"

    window = crop_window(model)
    for (npy, png), img, arr, prob in zip(targets, raw, maps, probs, strict=True):
        write_array(npy, arr)
        write_overlay(
            png,
            img,
            arr,
            window,
            title=f"{npy.name.split('.')[0]}: {label}, P(polar low) = {prob:.3f}",
        )
        print(f"{npy}\n{png}")
    log.info("wrote %d %s maps to %s", len(targets), method, args.out)
    return 0


def read_image(path: Path):
    """An (H, W, 3) array from a picture (as ``predict`` reads it) or a ``.npy`` file."""
    import numpy as np

    from polarscan.common.errors import UsageError
    from training.predict import read_image as read_picture

    if not path.is_file():
        raise UsageError(f"image not found: {path}", "check the path")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(
            f"unsupported image type {path.suffix!r}: {path}",
            f"use one of {', '.join(IMAGE_SUFFIXES)}",
        )
    if path.suffix.lower() != ".npy":
        return read_picture(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(
            f"cannot read image {path} ({type(err).__name__})", "pass a valid .npy array"
        ) from None
    if arr.ndim != 3 or arr.shape[2] != 3 or not np.issubdtype(arr.dtype, np.number):
        raise UsageError(
            f"image {path} has shape {arr.shape} and dtype {arr.dtype}",
            "pass an RGB array (H, W, 3) of 0-255 values",
        )
    return arr


def fit_image(path: Path, image, size: int, window_px: int):
    """The image at the model input size: as is, or (the authors' way of feeding their 1536
    model 800-px images) resized by nearest neighbour from the model card's ``window_px``."""
    import numpy as np

    from polarscan.common.errors import UsageError
    from training.predict import fit_to_input

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    if (h, w) == (window_px, window_px):
        if image.dtype == np.uint8:
            return fit_to_input(image, size)
        src = ((np.arange(size) + 0.5) * window_px / size).astype(int)
        return image[src][:, src]
    accepted = f"{size}x{size}" + (f" or {window_px}x{window_px}" if window_px != size else "")
    raise UsageError(
        f"image {path} is {w}x{h} px but the model takes {accepted}",
        f"resize it to {size}x{size} (the model card's window_px says what ground size it covers)",
    )


def write_array(path: Path, arr) -> None:
    import numpy as np

    from polarscan.common.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr)


def write_overlay(path: Path, image, arr, window: tuple[int, int, int], *, title: str) -> None:
    """The map (Grad-CAM, or IG magnitude) over the image, undefined pixels left clear, the crop
    outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    from polarscan.common.atomic import atomic_path
    from training.explain import ig_magnitude

    row0, col0, crop = window
    heat = arr
    if arr.ndim == 3:  # IG: zero outside the crop by construction; show the image there
        heat = ig_magnitude(arr[None])[0]
        outside = np.ones(heat.shape, bool)
        outside[row0 : row0 + crop, col0 : col0 + crop] = False
        heat[outside] = np.nan
    fig, ax = plt.subplots(figsize=(8, 8.4), dpi=100)
    try:
        ax.imshow(np.asarray(image, dtype=np.uint8))
        shown = ax.imshow(
            np.ma.masked_invalid(heat),
            cmap="inferno" if arr.ndim == 3 else "jet",
            alpha=0.45,
            vmin=0.0,
            vmax=1.0,
        )
        ax.add_patch(
            Rectangle(
                (col0 - 0.5, row0 - 0.5), crop, crop, fill=False, edgecolor="white", lw=1.5, ls="--"
            )
        )
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
