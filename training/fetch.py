"""Download the Sentinel-1 maritime mesocyclone dataset (DataverseNO, doi:10.18710/FV5T9U).

Two zips (domain brief §2) become ``OUT/train/{pos,neg}`` and ``OUT/test/{pos,neg}``:

1. ask Dataverse for each file's size and MD5 (best effort: ``/api/files/:persistentId``);
2. download with :func:`polarscan.common.http.download` — a ``.part`` file resumed with Range, retried,
   verified, renamed only when complete;
3. verify the zip (CRC of every member via ``testzip``) and its layout (``…/pos/*.png`` and
   ``…/neg/*.png``), refusing absolute names, ``..`` and symlinks *before* writing anything;
4. extract into a hidden folder and rename it onto ``OUT/<split>`` with a ``.complete`` marker.

A split whose marker exists is skipped without any network access: running twice does nothing.
The base URL comes from ``$DATAVERSE_URL`` (default https://dataverse.no), for mirrors and tests.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from polarscan.common.archives import GIB, MIB, ZipLimits, check_zip_sizes
from polarscan.common.atomic import atomic_path
from polarscan.common.errors import ProcessingError, UsageError

log = logging.getLogger(__name__)

DOI = "doi:10.18710/FV5T9U"
FILES = {"train": "QHV7PJ", "test": "Z7JPFT"}
DEFAULT_BASE = "https://dataverse.no"
CLASSES = ("pos", "neg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MARKER = ".complete"
#: The dataset's zips hold ~0.5 GB of PNGs (a few MB each, already compressed: ~1:1).
DATASET_MAX_MEMBER_BYTES = 256 * MIB
DATASET_MAX_TOTAL_BYTES = 8 * GIB
DATASET_MAX_RATIO = 50.0
DATASET_ZIP_LIMITS = ZipLimits(
    DATASET_MAX_MEMBER_BYTES, DATASET_MAX_TOTAL_BYTES, DATASET_MAX_RATIO, ratio_floor=MIB
)


def base_url() -> str:
    return os.environ.get("DATAVERSE_URL", DEFAULT_BASE).rstrip("/")


def persistent_id(split: str) -> str:
    return f"{DOI}/{FILES[split]}"


def file_url(base: str, split: str) -> str:
    return f"{base}/api/access/datafile/:persistentId?persistentId={persistent_id(split)}"


def file_metadata(
    base: str, split: str, retries: int, backoff: float
) -> tuple[int | None, tuple[str, str] | None]:
    """(size, (algorithm, digest)) from Dataverse's file API, or (None, None) if unavailable."""
    from polarscan.common.http import get_json

    url = f"{base}/api/files/:persistentId/"
    try:
        doc = get_json(
            url, {"persistentId": persistent_id(split)}, retries=retries, backoff=backoff
        )
        df = doc["data"]["dataFile"]
        size = int(df["filesize"]) if "filesize" in df else None
        ck = df.get("checksum") or ({"type": "MD5", "value": df["md5"]} if "md5" in df else None)
        checksum = (str(ck["type"]), str(ck["value"])) if ck else None
        return size, checksum
    except (ProcessingError, KeyError, TypeError, ValueError) as err:
        log.warning("no size/checksum for %s (%s); verifying the zip only", split, err)
        return None, None


def plan_members(zf: zipfile.ZipFile, source: str | Path) -> dict[str, str]:
    """Map each image member to ``<class>/<file name>``; refuse unsafe or unexpected content.

    Raises :class:`ProcessingError` (a bad download: exit 1) naming the offending entry.
    """
    plan: dict[str, str] = {}
    for info in zf.infolist():
        name = info.filename
        mode = info.external_attr >> 16
        p = PurePosixPath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or p.is_absolute() or ".." in p.parts or ":" in p.parts[0]:
            raise ProcessingError(
                f"zip {source} has an entry escaping its folder: {name!r}",
                "refusing to extract; delete the zip and download it again",
            )
        if stat.S_ISLNK(mode):
            raise ProcessingError(
                f"zip {source} has a symbolic link entry: {name!r}",
                "refusing to extract; delete the zip and download it again",
            )
        if info.is_dir() or "__MACOSX" in p.parts or p.name.startswith("."):
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES and len(p.parts) >= 2 and p.parts[-2] in CLASSES:
            target = f"{p.parts[-2]}/{p.name}"
            if target in plan.values():
                raise ProcessingError(f"zip {source} has two entries for {target}", "re-download")
            plan[name] = target
    for cls in CLASSES:
        if not any(t.startswith(cls + "/") for t in plan.values()):
            raise ProcessingError(
                f"zip {source} has no images under a '{cls}/' folder",
                "expected <split>/pos/*.png and <split>/neg/*.png; check DATAVERSE_URL",
            )
    return plan


def verify_zip(path: Path, limits: ZipLimits = DATASET_ZIP_LIMITS) -> dict[str, str]:
    """Check the declared sizes (:data:`DATASET_ZIP_LIMITS`) before reading anything, then the
    CRC of every member; return the extraction plan (:func:`plan_members`)."""
    try:
        with zipfile.ZipFile(path) as zf:
            check_zip_sizes(
                zf.infolist(), limits, f"zip {path}", ProcessingError,
                "refusing to extract; delete it and download again (limits: "
                "training.fetch.DATASET_ZIP_LIMITS)",
            )  # fmt: skip
            bad = zf.testzip()
            if bad is not None:
                raise ProcessingError(
                    f"zip {path} is corrupt (bad CRC in {bad})", "delete it and download again"
                )
            return plan_members(zf, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as err:
        raise ProcessingError(
            f"{path} is not a valid zip ({err})", "delete it and download again"
        ) from None


def extract(path: Path, plan: dict[str, str], dest: Path) -> Path:
    """Write the planned members into ``dest`` atomically (a hidden folder renamed at the end)."""
    with atomic_path(dest) as tmp, zipfile.ZipFile(path) as zf:
        for cls in CLASSES:
            (tmp / cls).mkdir(parents=True, exist_ok=True)
        for member, target in plan.items():
            with zf.open(member) as src, open(tmp / target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        (tmp / MARKER).write_text(json.dumps({"zip": path.name, "images": len(plan)}))
    return dest


def is_complete(split_dir: Path) -> bool:
    return (split_dir / MARKER).is_file()


def fetch_dataset(
    out: str | Path,
    *,
    base: str | None = None,
    keep_zips: bool = False,
    progress: bool = False,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Make ``out/train/{pos,neg}`` and ``out/test/{pos,neg}``; idempotent. Returns ``out``."""
    from polarscan.common.http import download

    root = Path(out)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder", "give a folder", key="out")
    base = (base or base_url()).rstrip("/")
    for split in FILES:
        dest = root / split
        if is_complete(dest):
            log.info("%s already complete: skipped", dest)
            continue
        if dest.exists() and any(dest.iterdir()):
            raise UsageError(
                f"{dest} exists without the completion marker (an earlier extraction?)",
                f"delete {dest} and rerun",
            )
        size, checksum = file_metadata(base, split, retries, backoff)
        zpath = root / ".downloads" / f"{split}.zip"
        download(
            file_url(base, split), zpath, expected_size=size, checksum=checksum, retries=retries,
            backoff=backoff, timeout=timeout, progress=progress, desc=f"{split}.zip",
        )  # fmt: skip
        try:
            plan = verify_zip(zpath)
        except ProcessingError:
            zpath.unlink(missing_ok=True)  # a bad zip must not be trusted on the next run
            raise
        extract(zpath, plan, dest)
        n_pos = sum(t.startswith("pos/") for t in plan.values())
        log.info("%s: %d images (%d pos, %d neg)", dest, len(plan), n_pos, len(plan) - n_pos)
        if not keep_zips:
            zpath.unlink(missing_ok=True)
    downloads = root / ".downloads"
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    return root
