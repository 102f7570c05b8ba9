"""The one value a mosaic is, from the stage that makes it to the writers that consume it.

The mosaic stage fills the grid and the slices; the scan's scoring and saliency stages add the
windows, their probabilities and the raster paths (``dataclasses.replace``); the GeoPackage,
STAC and report writers read it. Who made it (run, model, threshold) is a separate
:class:`Provenance`, shared by every mosaic of a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polarscan.common.errors import UsageError

if TYPE_CHECKING:
    from scanner.tiling import Window


@dataclass(frozen=True)
class SceneRecord:
    """A slice of a mosaic as the outputs describe it (``footprint`` in lon/lat, times UTC)."""

    name: str
    start: datetime
    stop: datetime
    footprint: Any  # shapely geometry, EPSG:4326


@dataclass(frozen=True)
class Provenance:
    """Who scored the mosaics of one run: the run id, the model file's name, the threshold."""

    run_id: str
    model_id: str
    threshold: float


@dataclass(frozen=True)
class MosaicResult:
    """A mosaic on its grid and, once scored, its windows, probabilities and rasters."""

    mosaic_id: str
    crs: Any  # anything pyproj understands ("EPSG:3413", WKT)
    transform: Any  # affine.Affine of the mosaic grid
    shape: tuple[int, int] = (0, 0)  # (height, width)
    path: Path | None = None  # the RGB COG
    products: tuple[str, ...] = ()  # product names, in time order
    start: datetime | None = None
    stop: datetime | None = None
    footprint: Any = None  # shapely polygon (lon/lat) of the union of the slices
    mode: str = ""  # acquisition mode of every slice: "EW" | "IW" ("" when unknown)
    polarisations: tuple[str, ...] = ()  # (co-pol, cross-pol): ("HH", "HV") | ("VV", "VH")
    scenes: tuple[SceneRecord, ...] = ()
    windows: tuple[Window, ...] = ()
    probabilities: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.float32), compare=False
    )
    rasters: Mapping[str, str] = field(default_factory=dict, compare=False)  # kind → COG path
    timings: dict[str, float] = field(default_factory=dict, compare=False)  # seconds per step

    def __post_init__(self) -> None:
        if len(self.windows) != len(self.probabilities):
            raise UsageError(
                f"mosaic {self.mosaic_id}: {len(self.windows)} windows but "
                f"{len(self.probabilities)} probabilities",
                "pass one probability per window",
            )

    @property
    def rgb_path(self) -> Path:
        """The RGB COG (set by the mosaic stage)."""
        if self.path is None:
            raise UsageError(f"mosaic {self.mosaic_id} has no RGB file yet", "make the mosaic first")
        return Path(self.path)

    @property
    def max_probability(self) -> float:
        return float(np.max(self.probabilities)) if len(self.probabilities) else 0.0

    def detected(self, threshold: float) -> np.ndarray:
        """Indices of the windows at or above ``threshold``."""
        return np.flatnonzero(np.asarray(self.probabilities) >= threshold)

    @property
    def sensing_start(self) -> datetime | None:
        return self.start or min((s.start for s in self.scenes), default=None)

    @property
    def sensing_stop(self) -> datetime | None:
        return self.stop or max((s.stop for s in self.scenes), default=None)


def mosaic_id(key: tuple[str, int, str] | None, start: datetime, stop: datetime, name: str) -> str:
    """The one id scheme of mosaics: ``S1A_046117_058549_20221130T014342_20221130T014446``
    (mission, absolute orbit, datatake, first start, last stop); a product whose name does not
    parse keeps its own ``name``."""
    if key is None:
        return name
    mission, orbit, datatake = key
    return f"{mission}_{orbit:06d}_{datatake}_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}"


def scene_records(scenes: Sequence[Any]) -> tuple[SceneRecord, ...]:
    """:class:`SceneRecord` of anything with name, start, stop and footprint."""
    return tuple(SceneRecord(s.name, s.start, s.stop, s.footprint) for s in scenes)
