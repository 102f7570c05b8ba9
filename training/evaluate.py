"""Evaluation with the paper's metrics: positive-class F1, precision, recall, accuracy, ROC-AUC,
PR-AUC and the confusion matrix, as JSON plus PR / ROC / confusion-matrix PNGs.

The metric arithmetic (:func:`compute_metrics`) takes arrays and returns a dict; reading the
folder and writing files happen at the edges (:func:`evaluate_folder`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import UsageError

log = logging.getLogger(__name__)


def compute_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Metrics of positive-class probabilities ``probs`` against 0/1 ``labels``.

    ``positive = prob >= threshold``. AUCs are None when only one class is present.
    The confusion matrix is ``[[tn, fp], [fn, tp]]`` (rows: truth neg/pos).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=float)
    if y.shape != p.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError("labels and probs must be equal-length 1-D arrays, non-empty")
    pred = (p >= threshold).astype(int)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = len(set(y.tolist())) == 2
    return {
        "n": len(y),
        "n_pos": int(y.sum()),
        "n_neg": int(len(y) - y.sum()),
        "threshold": float(threshold),
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "accuracy": (tp + tn) / len(y),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }


def plot_curves(labels: np.ndarray, probs: np.ndarray, metrics: dict, out: Path) -> list[Path]:
    """pr_curve.png, roc_curve.png, confusion_matrix.png in ``out`` (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    written = []
    y = np.asarray(labels).astype(int)
    if metrics["roc_auc"] is not None:
        prec, rec, _ = precision_recall_curve(y, probs)
        fpr, tpr, _ = roc_curve(y, probs)
        for name, xs, ys, xl, yl, title in (
            ("pr_curve.png", rec, prec, "recall", "precision", f"PR (AP {metrics['pr_auc']:.3f})"),
            ("roc_curve.png", fpr, tpr, "false positive rate", "true positive rate",
             f"ROC (AUC {metrics['roc_auc']:.3f})"),
        ):  # fmt: skip
            fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
            ax.plot(xs, ys, lw=2)
            ax.set(xlabel=xl, ylabel=yl, title=title, xlim=(0, 1), ylim=(0, 1.02))
            ax.grid(alpha=0.3)
            written.append(_save(fig, out / name))
    else:
        log.warning("only one class present: no PR/ROC curves")
    cm = np.array(metrics["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=14)
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["neg", "pos"], yticklabels=["neg", "pos"],
           xlabel="predicted", ylabel="true",
           title=f"confusion @ {metrics['threshold']:.2f}")  # fmt: skip
    written.append(_save(fig, out / "confusion_matrix.png"))
    return written


def _save(fig, dest: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return dest


def evaluate_folder(
    model_path: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    batch_size: int = 16,
    threshold: float | None = None,
) -> dict:
    """Score ``data/{pos,neg}`` with the model and write metrics.json, per-image scores and
    the three PNGs into ``out``. The threshold defaults to the model card's."""
    from training.card import model_card
    from training.data import list_split
    from training.io import load_model
    from training.predict import predict_files

    if threshold is not None and not 0.0 < threshold < 1.0:
        raise UsageError(f"threshold {threshold} is not in (0, 1)", "use e.g. 0.5", key="threshold")
    samples = list_split(data)
    model = load_model(model_path)
    card = model_card(model_path, model)
    thr = card.threshold if threshold is None else threshold
    probs = predict_files(model, [s.path for s in samples], batch_size)
    labels = np.array([s.label for s in samples])
    metrics = compute_metrics(labels, probs, thr)
    metrics["model"] = str(model_path)
    metrics["data"] = str(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "scores.csv") as tmp:
        lines = ["file,label,probability"] + [
            f"{s.path.name},{s.label},{q:.6f}" for s, q in zip(samples, probs, strict=True)
        ]
        tmp.write_text("\n".join(lines) + "\n")
    plot_curves(labels, probs, metrics, out)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    return metrics
