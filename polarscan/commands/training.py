"""CLI commands of the classifier's life: fetch-dataset, train, evaluate, predict.

Heavy imports (Keras, TensorFlow) happen inside ``run`` functions so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from polarscan.commands._args import add_json, int_type, print_json, probability_type


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "predict",
        help="polar-low probability of PNG/JPEG/TIFF images",
        description="Print one line per image: path, positive-class probability, and the label "
        "at the model card's threshold. Images whose size differs from the model input are "
        "resized by nearest neighbour.",
    )
    p.add_argument("model", type=Path, help="model file (.keras, or the authors' legacy .h5)")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="8-bit RGB images")
    add_json(p, "print a JSON list instead of lines")
    p.add_argument(
        "--batch-size", type=int_type("--batch-size"), default=16, help="images per forward pass"
    )
    p.add_argument(
        "--threshold", type=probability_type(), default=None, help="override the card threshold"
    )
    p.set_defaults(func=run_predict)

    t = sub.add_parser(
        "train",
        help="train the classifier (the authors' recipe) on train/{pos,neg}",
        description="Train with configs/train.yaml; flags override the file. Writes "
        "best.keras (+ card), last.keras, history.csv and config.yaml into the output dir.",
    )
    t.add_argument("--config", type=Path, default=None, help="YAML TrainConfig")
    t.add_argument("--data", type=Path, default=None, help="dataset root holding train/{pos,neg}")
    t.add_argument("--out", type=Path, default=None, help="output directory")
    t.add_argument("--epochs", type=int_type("--epochs"), default=None, help="maximum epochs")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.keras")
    t.add_argument("--overwrite", action="store_true", help="allow a non-empty output dir")
    t.set_defaults(func=run_train)

    e = sub.add_parser(
        "evaluate",
        help="F1, precision, recall, accuracy, ROC-AUC, PR-AUC on a test folder",
        description="Score DATA/{pos,neg} and write metrics.json, pr_curve.png, roc_curve.png, "
        "confusion_matrix.png into OUT.",
    )
    e.add_argument("model", type=Path, help="model file (.keras or legacy .h5)")
    e.add_argument("--data", type=Path, required=True, help="folder holding pos/ and neg/")
    e.add_argument("--out", type=Path, required=True, help="output directory")
    e.add_argument("--batch-size", type=int_type("--batch-size"), default=16)
    e.add_argument(
        "--threshold", type=probability_type(), default=None, help="override the card threshold"
    )
    e.set_defaults(func=run_evaluate)

    f = sub.add_parser(
        "fetch-dataset",
        help="download the Sentinel-1 maritime mesocyclone dataset (DataverseNO)",
        description="Download the two Dataverse zips (resuming), verify, extract safely and "
        "lay out OUT/train/{pos,neg} and OUT/test/{pos,neg}. Idempotent. The base URL can be "
        "changed with $DATAVERSE_URL.",
    )
    f.add_argument("--out", type=Path, required=True, help="dataset root to create")
    f.add_argument("--keep-zips", action="store_true", help="keep the downloaded zips")
    f.set_defaults(func=run_fetch)


def run_predict(args: argparse.Namespace) -> int:
    from training.card import model_card
    from training.io import load_model
    from training.predict import predict_files

    model = load_model(args.model)
    card = model_card(args.model, model)
    threshold = card.threshold if args.threshold is None else args.threshold
    probs = predict_files(model, args.images, args.batch_size)
    rows = [
        {
            "image": str(p),
            "probability": round(float(q), 6),
            "positive": bool(q >= threshold),
            "threshold": threshold,
        }
        for p, q in zip(args.images, probs, strict=True)
    ]
    if args.json:
        print_json(rows, indent=1)
    else:
        for r in rows:
            label = "polar-low" if r["positive"] else "no-polar-low"
            print(f"{r['image']}\t{r['probability']:.4f}\t{label}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from training.train import run_training

    run_training(
        args.config,
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_folder

    metrics = evaluate_folder(
        args.model, args.data, args.out, batch_size=args.batch_size, threshold=args.threshold
    )
    keys = ("f1", "precision", "recall", "accuracy", "roc_auc", "pr_auc")
    print(" ".join(f"{k}={metrics[k]:.4f}" for k in keys if metrics.get(k) is not None))
    print(f"wrote {args.out}/metrics.json and PR/ROC/confusion PNGs")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from training.fetch import fetch_dataset

    root = fetch_dataset(args.out, keep_zips=args.keep_zips, progress=True)
    print(f"dataset ready in {root}")
    return 0
