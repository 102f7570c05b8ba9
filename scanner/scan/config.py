"""The scan's configuration (``configs/scan.yaml``): one typed object composed of the stages'.

Parsed once at the CLI boundary; command-line flags override the file. The mosaic grid and RGB
recipe are NOT free choices when scanning: they must be what the model's card says it was trained
on, so :func:`fit_to_card` fills them from the card and refuses explicit values that disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from polarscan.common.config import StrictModel
from polarscan.common.errors import UsageError
from polarscan.resources import demo_model
from scanner.forecast.config import NotifyConfig, TrackingConfig
from scanner.mosaic.config import MosaicConfig
from scanner.saliency import SaliencyConfig, parse_methods
from scanner.tiling import TilingConfig
from training.card import ModelCard

DEMO_MODEL = demo_model()


class ScanConfig(StrictModel):
    """Everything ``cli.py scan`` needs besides the area and the time window."""

    source: str = Field("cdse", description="cdse | asf | dhus | local:PATH | demo")
    modes: tuple[Literal["EW", "IW"], ...] = Field(
        ("EW", "IW"),
        min_length=1,
        description="acquisition modes searched (EW GRDM, IW GRDH); scenes of a mode the "
        "model card does not accept are recorded as skipped",
    )
    model: str | None = Field(
        None, description="model file (.keras or legacy .h5); unset = the demo weights for demo"
    )
    out: str = Field("polarscan-output", description="output folder, accumulating run after run")
    threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="detection probability; unset = the model card's"
    )
    batch_size: int = Field(16, ge=1, le=1024, description="windows per inference batch")
    mixed_precision: Literal["off", "bfloat16", "float16"] = Field(
        "off",
        description="score in mixed precision on GPU workers (CPU workers stay float32); off "
        "until measured on the GPU in use (benchmarks/bench_gpu.py reports the speed and the "
        "largest probability change)",
    )
    workers: int = Field(2, ge=1, le=256, description="LocalCluster worker processes")
    threads_per_worker: int = Field(1, ge=1, le=64, description="threads per worker process")
    scheduler: str | None = Field(None, description="tcp://host:port of an existing scheduler")
    scheduler_timeout_s: float = Field(10.0, gt=0, description="wait this long for --scheduler")
    sequential: bool = Field(False, description="run in-process without dask (debugging)")
    max_attempts: int = Field(3, ge=1, description="a failed scene is retried this many runs")
    claim_ttl_s: float = Field(6 * 3600, gt=0, description="a crashed run's claims expire after")
    access: Literal["download", "s3", "mount"] = Field(
        "download",
        description="cdse products: download (zip to <out>/downloads), s3 (read in place from "
        "the eodata bucket: CDSE_S3_ENDPOINT, CDSE_S3_ACCESS_KEY/CDSE_S3_SECRET_KEY) or mount "
        "(read in place from CDSE_EODATA_MOUNT, default /eodata)",
    )
    twin: Literal["auto", "cog", "original"] = Field(
        "auto",
        description="which of a scene's original SAFE and COG twin to use when CDSE has both; "
        "auto = the COG twin for s3/mount, the original for download",
    )
    keep_logs: int = Field(
        90,
        ge=0,
        description="run logs kept under <out>/logs (one per run, every INFO line whatever -q "
        "says; the newest this many stay); 0: none written",
    )
    keep_downloads: bool = Field(
        False,
        description="keep downloaded products under <out>/downloads; false: each is deleted as "
        "soon as its mosaic is built (a month of nights does not fill the disk)",
    )
    min_free_disk_gb: float = Field(
        5.0,
        ge=0,
        description="a download that would leave less free disk than this is refused (the "
        "scene fails and is retried by the next run)",
    )
    quota_gb_per_month: float | None = Field(
        5000.0,
        ge=0,
        description="GB (10^9 bytes) this output folder's runs may fetch from a remote source "
        "(cdse, asf, dhus) per UTC calendar month, as counted in its record (downloads as "
        "received; reads in place over s3 or the mount: XML counted, TIFF reads estimated). "
        "Mosaics that would go past it are deferred, still pending, to the next month (exit 0). "
        "Per output folder: folders sharing one provider account must split its quota (CDSE: "
        "6 TB; the default leaves room for other use of the account). null = no budget (bytes "
        "are still counted)",
    )
    max_in_flight: int | None = Field(
        None,
        ge=1,
        description="mosaic chains submitted to the cluster at once (more follow as chains "
        "finish); null = 4 per worker: memory, open files and disk stay flat for any backlog",
    )
    publish_batch: int = Field(
        16,
        ge=1,
        le=1000,
        description="finished mosaics written to detections.gpkg and the STAC catalog in one "
        "transaction; 1 = each as it finishes. Every transaction copies the GeoPackage, so a "
        "backfill into a large archive wants batches (docs/benchmarks.md); above 1 the writer "
        "also rests 4x its last write's time, so batches grow with the archive",
    )
    publish_interval_s: float = Field(
        60.0,
        gt=0,
        description="a batch not yet full is written once its oldest mosaic has waited this "
        "long (checked as mosaics finish; the rest is written when the run ends or stops)",
    )
    mosaic: MosaicConfig = Field(default_factory=MosaicConfig)
    tiling: TilingConfig = Field(default_factory=TilingConfig)
    saliency: SaliencyConfig = Field(default_factory=SaliencyConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    @field_validator("saliency", mode="before")
    @classmethod
    def _methods(cls, value):
        """``--saliency gradcam,ig`` arrives as a string or list: it sets the methods."""
        if isinstance(value, (str, list, tuple)):
            return {"methods": parse_methods(value)}
        if isinstance(value, dict) and isinstance(value.get("methods"), str):
            return {**value, "methods": parse_methods(value["methods"])}
        return value

    @field_validator("modes", mode="before")
    @classmethod
    def _modes(cls, value):
        """``EW,IW`` (a flag's value) or ``[ew, iw]``: upper case, each once, EW before IW;
        an unknown mode fails validation and names the key."""
        from scanner.sources.base import check_modes

        if isinstance(value, (str, list, tuple)):
            return check_modes(value)
        return value

    @field_validator("scheduler")
    @classmethod
    def _check_scheduler(cls, value: str | None) -> str | None:
        if value and "://" not in value:
            value = f"tcp://{value}"
        return value

    @property
    def out_dir(self) -> Path:
        return Path(self.out).expanduser().resolve()


def fit_to_card(config: ScanConfig, card: ModelCard) -> ScanConfig:
    """The config with the mosaic grid and RGB recipe of the model's card.

    Values the user set explicitly in ``mosaic:`` must agree with the card: a model fed mosaics
    at another pixel spacing or colour stretch than it was trained on silently scores nonsense.
    """
    m = config.mosaic
    explicit = m.model_fields_set
    if "resolution_m" in explicit and abs(m.resolution_m - card.pixel_spacing_m) > 1e-6:
        raise UsageError(
            f"mosaic.resolution_m is {m.resolution_m:g} m but the model card expects "
            f"{card.pixel_spacing_m:g} m pixels",
            "remove mosaic.resolution_m from the config (it follows the model card) or use a "
            "model trained at that spacing",
        )
    if "rgb" in explicit and m.rgb != card.rgb:
        raise UsageError(
            "mosaic.rgb differs from the RGB recipe in the model card",
            "remove mosaic.rgb from the config (it follows the model card) or fix the card",
        )
    if card.window_px < 8:
        raise UsageError(
            f"the model card's window_px ({card.window_px}) is too small to tile a mosaic",
            "fix window_px in the card",
        )
    fitted = m.model_copy(update={"resolution_m": card.pixel_spacing_m, "rgb": card.rgb})
    return config.model_copy(update={"mosaic": fitted})
