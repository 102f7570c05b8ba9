"""Files that travel with the package: the default configs, the demo weights and their card.

In a checkout they are the top-level ``configs/`` and ``models/demo/``; a wheel carries copies
under ``polarscan/_bundled/`` (put there at build time by ``setup.py``'s ``build_py``). Callers
never build these paths themselves, so ``polarscan scan --source demo`` works from any folder.
The demo sample product lives inside :mod:`scanner.demo` and travels as its package data.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]
BUNDLE = "_bundled"  # folder inside the installed package (see setup.py)
DEMO_MODEL_NAME = "polarlow-demo-192.keras"


def _locate(*parts: str) -> Path | None:
    bundled = files("polarscan").joinpath(BUNDLE, *parts)
    if bundled.is_file():
        return Path(str(bundled))
    local = _CHECKOUT.joinpath(*parts)
    return local if local.is_file() else None


def default_config(name: str) -> Path | None:
    """``configs/<name>`` (e.g. ``scan.yaml``), or None if neither copy exists (the config
    classes' defaults then apply)."""
    return _locate("configs", name)


def demo_model() -> Path:
    """The synthetic-trained demo weights (their card lies beside them)."""
    path = _locate("models", "demo", DEMO_MODEL_NAME)
    return path if path is not None else _CHECKOUT / "models" / "demo" / DEMO_MODEL_NAME
