"""Versions of polarscan and of the packages its results depend on, from the installed
metadata (no heavy import): recorded with every run and printed by ``--version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("polarscan", "tensorflow", "keras", "jax", "torch", "rasterio", "pyogrio", "dask",
            "distributed")  # fmt: skip


def package_versions() -> dict[str, str]:
    """``{package: version}`` of those of :data:`PACKAGES` that are installed."""
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def version_text() -> str:
    """``polarscan 0.1.0`` and a line of the rest, as ``--version`` prints it."""
    import os

    found = package_versions()
    own = found.pop("polarscan", "unknown (not installed: pip install -e .)")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    rest = ", ".join(f"{k} {v}" for k, v in found.items())
    return f"polarscan {own}\nKeras backend: {backend}; {rest}"
