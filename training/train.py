"""Training with the authors' recipe, checkpointing and resume.

Recipe (domain brief §2): AdamW lr 1e-3; categorical cross-entropy; batch 16; up to 200 epochs;
EarlyStopping patience 20 restoring the best weights; ReduceLROnPlateau x0.5 patience 10; the
monitor is the training loss unless a (footprint-grouped) validation split is asked for.

Weight decay: the authors used tensorflow-addons' AdamW(1e-3, weight_decay=1e-4), where the decay
step is ``w -= wd * w`` — *not* scaled by the learning rate. Keras 3's AdamW applies
``w -= lr * wd * w``. The config states the authors' number (``weight_decay_tfa``) and we pass
``weight_decay = weight_decay_tfa / lr`` (1e-4 / 1e-3 = 0.1) to Keras, which matches exactly at the
initial learning rate. When ReduceLROnPlateau halves the LR, Keras' effective decay halves too,
whereas TFA's stayed fixed — a known, small deviation late in training.

Output directory: ``best.keras`` (+ card; the inference graph, augmentation removed),
``last.keras`` (the compiled training model with optimizer state, for ``--resume``),
``state.json`` (epoch and best monitored value), ``history.csv``, ``config.yaml``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import yaml
from pydantic import Field, field_validator, model_validator

from polarscan.common.atomic import atomic_path
from polarscan.common.config import StrictModel, load_config
from polarscan.common.errors import UsageError
from training.card import ModelCard
from training.model import VARIANTS

log = logging.getLogger(__name__)


class TrainConfig(StrictModel):
    """Everything that defines a training run; ``configs/train.yaml`` holds the defaults."""

    variant: str = Field("800-512", description="input->crop preset: " + ", ".join(VARIANTS))
    input_size: int | None = Field(None, description="override the variant's input size")
    crop: int | None = Field(None, description="override the variant's centre crop")
    data: Path = Field(Path("data/mesocyclone"), description="root holding train/{pos,neg}")
    out: Path = Field(Path("runs/train"), description="output directory")
    lr: float = Field(1e-3, gt=0, description="initial AdamW learning rate")
    weight_decay_tfa: float = Field(
        1e-4, ge=0, description="decay as tensorflow-addons defines it (not multiplied by lr)"
    )
    batch_size: int = Field(16, ge=1)
    epochs: int = Field(200, ge=1)
    steps_per_epoch: int | None = Field(
        None, ge=1, description="None = the authors' ceil(2 * n_neg / batch)"
    )
    early_stopping_patience: int = Field(20, ge=1)
    reduce_lr_factor: float = Field(0.5, gt=0, lt=1)
    reduce_lr_patience: int = Field(10, ge=1)
    val_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of footprint ids held out; 0 = monitor training loss"
    )
    augment: bool = True
    seed: int = 0
    run_eagerly: bool = Field(
        False, description="skip graph tracing (debugging, tiny runs); much slower per step"
    )
    threshold: float = Field(0.5, gt=0, lt=1, description="card threshold for detections")
    window_px: int | None = Field(None, description="mosaic px per window (card); None = input")
    pixel_spacing_m: float = Field(500.0, gt=0, description="mosaic pixel spacing (card)")
    trained_on: str = "Sentinel-1 maritime mesocyclone dataset (doi:10.18710/FV5T9U)"

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, v: str) -> str:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant '{v}' (known: {', '.join(VARIANTS)})")
        return v

    @model_validator(mode="after")
    def _geometry(self) -> TrainConfig:
        size, crop = self.geometry
        if not 32 <= crop <= size:
            raise ValueError(f"crop {crop} must be in 32..input_size ({size})")
        return self

    @property
    def geometry(self) -> tuple[int, int]:
        v = VARIANTS[self.variant]
        return self.input_size or v.input_size, self.crop or v.crop

    @property
    def weight_decay_keras(self) -> float:
        """Keras 3 AdamW ``weight_decay`` equivalent to ``weight_decay_tfa`` at ``lr``."""
        return self.weight_decay_tfa / self.lr

    @property
    def monitor(self) -> str:
        return "val_loss" if self.val_fraction > 0 else "loss"

    def card(self) -> ModelCard:
        size, crop = self.geometry
        return ModelCard(
            input_size=size,
            crop=crop,
            window_px=self.window_px or size,
            pixel_spacing_m=self.pixel_spacing_m,
            threshold=self.threshold,
            trained_on=self.trained_on,
        )


def compile_model(model, cfg: TrainConfig) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=cfg.lr, weight_decay=cfg.weight_decay_keras),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        run_eagerly=cfg.run_eagerly,
    )


def inference_copy(model):
    """The same weights in an augmentation-free graph (what ``best.keras`` holds)."""
    from training.model import build_model, model_geometry

    infer = build_model(*model_geometry(model), augment=False)
    for layer in infer.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return infer


def _make_checkpointer(cfg: TrainConfig, out: Path, best_start: float):
    import keras

    from training.io import save_model

    class Checkpointer(keras.callbacks.Callback):
        """best.keras (+card) when the monitor improves; last.keras + state.json every epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.best = best_start

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(cfg.monitor)
            if value is not None and math.isfinite(value) and value < self.best:
                self.best = float(value)
                save_model(inference_copy(self.model), out / "best.keras", cfg.card())
                log.info(
                    "epoch %d: %s improved to %.5f, saved best.keras", epoch + 1, cfg.monitor, value
                )
            tmp = out / f".last-{epoch}.keras"  # Keras insists on the .keras suffix
            self.model.save(tmp)
            tmp.replace(out / "last.keras")
            with atomic_path(out / "state.json") as t:
                t.write_text(
                    json.dumps({"epoch": epoch + 1, "best": self.best, "monitor": cfg.monitor})
                )

    return Checkpointer()


def _prepare_out(out: Path, resume: bool, overwrite: bool) -> dict | None:
    """The resume state, or None for a fresh run; refuses to clobber a previous run."""
    state_file = out / "state.json"
    if resume:
        if not (state_file.is_file() and (out / "last.keras").is_file()):
            raise UsageError(
                f"nothing to resume in {out} (no last.keras/state.json)",
                "start a new run instead of resuming, or give the output folder of an earlier run",
                key="resume",
            )
        return json.loads(state_file.read_text())
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(
            f"output directory {out} is not empty",
            "resume that run, overwrite it, or choose another output folder",
            key="out",
        )
    return None


def train(
    cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, verbose: int | None = None
):
    """Run training; returns the Keras History. Writes everything into ``cfg.out``."""
    import keras

    from training import data as D
    from training.model import build_model

    samples = (
        D.list_split(cfg.data / "train")
        if (cfg.data / "train").is_dir()
        else D.list_split(cfg.data)
    )
    out = Path(cfg.out)
    state = _prepare_out(out, resume, overwrite)
    size, crop = cfg.geometry
    keras.utils.set_random_seed(cfg.seed)
    if cfg.val_fraction > 0:
        train_s, val_s = D.grouped_split(samples, cfg.val_fraction, cfg.seed)
        val_ds = D.plain_dataset(val_s, size, cfg.batch_size)
    else:
        train_s, val_ds = samples, None
    n_neg, n_pos = D.counts(train_s)
    steps = cfg.steps_per_epoch or D.steps_per_epoch(n_neg, cfg.batch_size)
    train_ds = D.oversampled_dataset(train_s, size, cfg.batch_size, cfg.seed)
    out.mkdir(parents=True, exist_ok=True)

    if state is not None:
        model = keras.saving.load_model(out / "last.keras", safe_mode=True, compile=True)
        model.run_eagerly = cfg.run_eagerly
        initial_epoch, best = int(state["epoch"]), float(state["best"])
        log.info("resuming %s at epoch %d (best %s %.5f)", out, initial_epoch, cfg.monitor, best)
    else:
        model = build_model(size, crop, augment=cfg.augment, seed=cfg.seed)
        compile_model(model, cfg)
        initial_epoch, best = 0, math.inf
        with atomic_path(out / "config.yaml") as t:
            t.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    log.info(
        "training %d->%d on %d neg / %d pos, %d steps/epoch, monitor %s, keras weight_decay %.4g",
        size, crop, n_neg, n_pos, steps, cfg.monitor, cfg.weight_decay_keras,
    )  # fmt: skip
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=cfg.monitor, patience=cfg.early_stopping_patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=cfg.monitor, factor=cfg.reduce_lr_factor, patience=cfg.reduce_lr_patience
        ),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=state is not None),
        _make_checkpointer(cfg, out, best),
    ]
    if initial_epoch >= cfg.epochs:
        log.info("already trained %d of %d epochs: nothing to do", initial_epoch, cfg.epochs)
        return None
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    return model.fit(
        train_ds,
        epochs=cfg.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps,
        validation_data=val_ds,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data streams shuffle themselves
    )


def run_training(
    config: str | Path | None,
    *,
    data: Path | None = None,
    out: Path | None = None,
    epochs: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
):
    """The ``train`` command: config file + flag overrides → :func:`train`."""
    overrides = {"data": data, "out": out, "epochs": epochs}
    cfg = load_config(
        TrainConfig, config, {k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()}
    )
    return train(cfg, resume=resume, overwrite=overwrite)
