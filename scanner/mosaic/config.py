"""Mosaic configuration: target grid, resampling and the RGB recipe (``configs/mosaic.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from polarscan.common.config import StrictModel
from polarscan.common.rgb import RGBRecipe


class MosaicConfig(StrictModel):
    """How Sentinel-1 EW and IW products become an RGB mosaic the model understands.

    Defaults follow the domain brief (§2, §5): EPSG:3413 at 500 m, R = G = cross-pol dB (HV or
    VH), B = co-pol dB (HH or VV), dB windows per mode (``rgb.windows``).
    """

    crs: str = Field("EPSG:3413", description="target CRS (any pyproj-readable string)")
    resolution_m: float = Field(500.0, gt=0, description="output pixel size in CRS units (m)")
    rgb: RGBRecipe = Field(default_factory=RGBRecipe, description="band roles, dB windows per mode")
    resampling: Literal["bilinear", "nearest"] = Field(
        "bilinear", description="how block-averaged sigma0 is sampled: bilinear on dB, or nearest"
    )
    block: int | None = Field(
        None,
        ge=1,
        description="radar pixels averaged per block side; unset = floor(resolution / pixel "
        "spacing), so averaging is never coarser than the output grid",
    )
    nodata_fill: Literal["first", "last"] = Field(
        "first", description="where slices overlap: keep the first valid (earliest) or the last"
    )
    max_gap_s: float = Field(
        5.0, ge=0, description="slices of one datatake further apart in time form separate strips"
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=64,
        description="threads for one product: HH and HV radiometry side by side while the "
        "inverse map is solved. Unset = 2 if a CPU is idle (CPUs this process may use minus the "
        "1-minute load average), else 1, so mosaics inside busy dask workers do not "
        "oversubscribe; a number is used as given, capped at the usable CPUs. Output is "
        "identical either way",
    )
    inverse_step_m: float = Field(
        2000.0,
        gt=0,
        description="spacing of the lattice on which the inverse map is solved exactly "
        "(bilinear in between): smaller is more accurate over rough terrain, slower",
    )

    @field_validator("crs")
    @classmethod
    def _check_crs(cls, value: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_user_input(value)
        except CRSError as err:
            raise ValueError(f"unknown CRS {value!r} ({err})") from None
        if not crs.is_projected:
            raise ValueError(f"CRS {value!r} is not projected; use metres, e.g. EPSG:3413")
        return value
