"""What a scan checks before it creates anything: the model file and its card, the output
folder, an existing record and its lock; then the model loaded once for its card.

Cheapest first, and nothing is created until they all pass (:func:`prepare_out` is the first
step that creates the output folder, after every check).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from polarscan.common.errors import UsageError
from scanner.scan.config import DEMO_MODEL, ScanConfig, fit_to_card


def resolve_model(config: ScanConfig) -> Path:
    if config.model:
        path = Path(config.model).expanduser()
    elif config.source == "demo":
        path = DEMO_MODEL
    else:
        raise UsageError(
            "no model given",
            "set `model:` in the scan config to a .keras model with its card, or the authors' "
            "legacy .h5",
            key="model",
        )
    if not path.is_file():
        raise UsageError(f"model file not found: {path}", "give an existing model file", key="model")
    return path.resolve()


def check_out(out_dir: Path) -> None:
    """The output folder is (or can be made) writable — checked without creating anything."""
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"no write permission on {existing}"
    if problem:
        raise UsageError(
            f"output folder {out_dir} is not writable ({problem})",
            "choose a writable output folder",
            key="out",
        )


def prepare_out(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UsageError(
            f"output folder {out_dir} is not writable ({err.strerror or err})",
            "choose a writable output folder",
            key="out",
        ) from None
    return out_dir


def check_card_file(model_path: Path, config: ScanConfig) -> None:
    """The model's card file, when there is one, is valid and agrees with the config: read as
    text, before the model itself is loaded (its geometry is checked against the model then)."""
    from polarscan.common.config import load_config
    from training.card import ModelCard, card_path

    path = card_path(model_path)
    if path.is_file():
        fit_to_card(config, load_config(ModelCard, path))


def check_record(out_dir: Path) -> None:
    """An existing record is readable, of a known schema, and not locked by a live run."""
    from scanner.record import Record, record_path
    from scanner.record.claims import refuse_if_live
    from scanner.record.db import now_utc

    path = record_path(out_dir)
    if not path.exists() and not path.is_symlink():
        return
    with Record(path) as rec:  # it exists: opening creates nothing
        refuse_if_live(rec.lock_holder(), rec.path, now_utc())


def load_card(model_path: Path, config: ScanConfig):
    """Load the model once here (validates the file) and read its card, with the threshold."""
    from scanner.infer import cached_model
    from training.card import model_card

    card = model_card(model_path, cached_model(str(model_path)))
    if config.threshold is not None:
        card = card.model_copy(update={"threshold": config.threshold})
    return card
