"""Many products in, one mosaic per strip out, all or nothing (what the ``mosaic`` command does).

``out`` is a ``.tif`` path (the products must form one strip) or a directory (one
``mosaic_name(strip)`` per strip). Every product is validated and every target checked before
any pixel is computed; each mosaic is written under a temporary name and the whole set renamed
into place only when all succeeded, so an error leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from polarscan.common.atomic import atomic_path
from polarscan.common.errors import UsageError
from scanner.mosaic.config import MosaicConfig
from scanner.mosaic.mosaic import (
    MosaicResult,
    Refusal,
    describe_group,
    group_products,
    mosaic_name,
    mosaic_strip,
    open_products,
)

log = logging.getLogger(__name__)
TIFF_SUFFIXES = (".tif", ".tiff")


def is_directory_target(out: Path) -> bool:
    return out.is_dir() or out.suffix.lower() not in TIFF_SUFFIXES


def mosaic_products(
    paths: Sequence[str | Path],
    out: str | Path,
    config: MosaicConfig | None = None,
    *,
    overwrite: bool = False,
    refused: list[Refusal] | None = None,
) -> list[MosaicResult]:
    """Mosaic every strip among ``paths`` into ``out`` (file or directory); all or nothing.

    A slice whose mode or polarisation pair differs from the rest of its datatake is left out
    with a warning (appended to ``refused`` if given); see :func:`group_products`.
    """
    config = config or MosaicConfig()
    out = Path(out)
    products = open_products(paths)
    try:
        groups = group_products(products, config.max_gap_s, refused=refused)
        if is_directory_target(out):
            targets = [out / mosaic_name(g) for g in groups]
        elif len(groups) > 1:
            listing = "; ".join(describe_group(g) for g in groups)
            raise UsageError(
                f"the products form {len(groups)} strips (different datatakes or a gap), which "
                f"never mix in one mosaic: {listing}",
                "write into a directory (one mosaic per strip) or mosaic them separately",
                key="out",
            )
        else:
            targets = [out]
        for t in targets:
            if t.exists() and not overwrite:
                raise UsageError(
                    f"{t} already exists", "allow overwriting to replace it", key="overwrite"
                )
        new_dirs = _missing_dirs({t.parent for t in targets})
        results: list[MosaicResult] = []
        try:
            with contextlib.ExitStack() as stack:
                for group, target in zip(groups, targets, strict=True):
                    tmp = stack.enter_context(atomic_path(target))
                    res = mosaic_strip(group, tmp, config)
                    results.append(_with_path(res, target))
                # leaving the stack renames every temporary file onto its target
        except BaseException:
            for d in new_dirs:  # deepest first: leave no empty folder we made
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
            raise
        return results
    finally:
        for p in products:
            p.close()


def _missing_dirs(dirs: set[Path]) -> list[Path]:
    """Folders (and their missing parents) that do not exist yet, deepest first."""
    missing: set[Path] = set()
    for d in dirs:
        while not d.exists() and d != d.parent:
            missing.add(d)
            d = d.parent
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)


def _with_path(res: MosaicResult, path: Path) -> MosaicResult:
    from dataclasses import replace

    return replace(res, path=path)
