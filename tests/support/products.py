"""Small synthetic Sentinel-1 EW products for any test (real sample metadata, made-up pixels).

Products are cached per (scale, vortex, land, seed, slices, zip) in one temporary folder for
the whole test session, so many tests can share them; never modify a returned product in place —
copy it first (``copy_product``) to break it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_CACHE: dict[tuple, list[Path]] = {}
_ROOT: Path | None = None


def make_product(
    tmp_dir: str | Path | None = None,
    scale: float = 1 / 16,
    vortex: tuple[float, float, float] | None = None,
    seed: int = 0,
    zip: bool = False,  # noqa: A002
    land: bool = False,
) -> Path:
    """One EW GRDM dual-pol product (SAFE folder or zip). ``tmp_dir`` None → session cache."""
    return make_datatake(
        tmp_dir, slices=1, scale=scale, vortex=vortex, seed=seed, zip=zip, land=land
    )[0]


def make_datatake(
    tmp_dir: str | Path | None = None,
    slices: int = 2,
    scale: float = 1 / 16,
    vortex: tuple[float, float, float] | None = None,
    seed: int = 0,
    zip: bool = False,  # noqa: A002
    land: bool = False,
) -> list[Path]:
    """``slices`` consecutive products of one datatake, in time order."""
    from scanner.demo.synthetic_product import write_datatake

    global _ROOT
    key = (slices, scale, vortex, seed, zip, land)
    if tmp_dir is None:
        if key in _CACHE and all(p.exists() for p in _CACHE[key]):
            return list(_CACHE[key])
        if _ROOT is None:
            _ROOT = Path(tempfile.mkdtemp(prefix="polarscan-products-"))
            atexit.register(shutil.rmtree, _ROOT, True)
        dest = _ROOT / f"p{len(_CACHE)}"
    else:
        dest = Path(tmp_dir)
    paths = write_datatake(
        dest, slices=slices, scale=scale, vortex=vortex, seed=seed, zip=zip, land=land
    )
    if tmp_dir is None:
        _CACHE[key] = paths
    return paths


def copy_product(src: Path, dest_dir: str | Path, name: str | None = None) -> Path:
    """Copy a product (folder or zip) into ``dest_dir``, optionally renamed, to break it safely."""
    dest = Path(dest_dir) / (name or src.name)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    return dest
