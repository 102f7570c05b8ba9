"""The nightly batch scanner: sources, SAFE reading, mosaics, tiling, inference, outputs, orchestration."""


def __getattr__(name: str):
    # the data-cube API, imported on first use (xarray and dask stay out of `import scanner`)
    if name in ("open_scan", "open_detections", "open_sigma0", "ScanDetections"):
        import scanner.analysis

        return getattr(scanner.analysis, name)
    raise AttributeError(f"module 'scanner' has no attribute {name!r}")
