"""One product's calibrated, denoised σ⁰ in dB as a georeferenced ``xarray.Dataset``.

The same code path as the mosaic (:func:`scanner.mosaic.sigma0.strip_sigma0`): block radiometry
at the output spacing, geocoded by inverse mapping onto a snapped grid. The RGB mosaic is
``db_to_rgb`` of exactly these arrays, so a researcher looks at what the model was fed, before
it became colours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from polarscan.common.errors import UsageError


def open_sigma0(
    product: str | Path,
    resolution: float = 500.0,
    crs: str = "EPSG:3413",
    *,
    floor_db: float | None = None,
) -> Any:
    """σ⁰ of ``product`` (a SAFE folder, zip or COG twin) at ``resolution`` metres in ``crs``:
    variables ``sigma0_<pol>`` (e.g. ``sigma0_hh``, ``sigma0_hv``) in dB over ``(y, x)``, NaN
    outside the swath; CRS and transform attached the rioxarray way. Unsupported products raise
    the same errors as the mosaic command."""
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr

    from scanner.mosaic.config import MosaicConfig
    from scanner.mosaic.mosaic import open_products
    from scanner.mosaic.sigma0 import strip_sigma0

    if not resolution or resolution <= 0:
        raise UsageError(f"resolution {resolution!r} is not positive", "give metres, e.g. 500")
    overrides: dict[str, Any] = {"resolution_m": float(resolution), "crs": crs}
    config = MosaicConfig(**overrides)
    if floor_db is not None:
        config = config.model_copy(
            update={"rgb": config.rgb.model_copy(update={"floor_db": floor_db})}
        )
    [p] = open_products([product])
    try:
        sig = strip_sigma0([p], config)
        name = p.name
        start, stop = p.start, p.stop
    finally:
        p.close()
    x, y = sig.grid.centres()
    co, cross = sig.polarisations
    attrs = {"units": "dB", "long_name": "calibrated, noise-removed sigma0", "floor_db":
             config.rgb.floor_db}  # fmt: skip
    ds = xr.Dataset(
        {
            f"sigma0_{co.lower()}": (("y", "x"), sig.co_db, {**attrs, "polarisation": co}),
            f"sigma0_{cross.lower()}": (("y", "x"), sig.cross_db, {**attrs, "polarisation": cross}),
        },
        coords={"x": ("x", np.asarray(x)), "y": ("y", np.asarray(y))},
        attrs={
            "product": name,
            "mode": sig.mode,
            "polarisations": f"{co}+{cross}",
            "start": start.isoformat(),
            "stop": stop.isoformat(),
            "resolution_m": float(resolution),
        },
    )
    return ds.rio.write_crs(crs).rio.write_transform(sig.grid.transform)
