"""How a CDSE product reaches the reader: ``download`` (a verified zip on disk, the default),
``s3`` (read in place from the eodata bucket: XML by signed GETs, TIFFs by GDAL's ``/vsis3/``
range reads) or ``mount`` (read in place from the eodata tree mounted as a filesystem,
``CDSE_EODATA_MOUNT``, default ``/eodata``, as on CloudFerro VMs).

In place, a product is named by its OData record's ``S3Path`` (``/eodata/Sentinel-1/SAR/…/
<Name>.SAFE``): the object key is that path without ``/eodata/``. A path that leaves the bucket's
``Sentinel-1/`` tree, holds ``..`` or odd characters, or whose last part is not the record's
product name is refused (:func:`object_key`).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from polarscan.common.errors import ProcessingError, UsageError
from scanner.access.s3 import S3Settings

if TYPE_CHECKING:
    from scanner.sources.base import Scene

ACCESS_MODES = ("download", "s3", "mount")
#: which form of a scene a search keeps when CDSE has both: ``auto`` = the COG twin when reading
#: in place (s3, mount), the original SAFE when downloading
TWIN_PREFERENCES = ("auto", "cog", "original")
MOUNT_VAR = "CDSE_EODATA_MOUNT"
MOUNT = "/eodata"
PREFIX = "/eodata/"
#: what a key may be made of: the characters of CDSE's tree and product names, nothing else
_KEY_RE = re.compile(r"^Sentinel-1/[A-Za-z0-9_./-]+\Z")
VSIS3 = "/vsis3/"


def check_access(access: str) -> None:
    """A :class:`UsageError` for an unknown mode."""
    if access not in ACCESS_MODES:
        raise UsageError(f"unknown access mode {access!r}",
                         f"use one of: {', '.join(ACCESS_MODES)}", key="access")  # fmt: skip


def mount_root() -> Path:
    return Path(os.environ.get(MOUNT_VAR) or MOUNT).expanduser()


def check_ready(access: str) -> None:
    """Before any work: ``s3`` needs keys, ``mount`` an existing mount (a :class:`UsageError`
    naming what to set); ``download`` checks nothing here."""
    check_access(access)
    if access == "s3":
        S3Settings.from_env()
    elif access == "mount":
        root = mount_root()
        if not (root / "Sentinel-1").is_dir():
            raise UsageError(
                f"the eodata mount {root} is absent (no {root / 'Sentinel-1'} folder)",
                f"mount CDSE's eodata there, or set {MOUNT_VAR} to where it is mounted",
                key="access",
            )


def object_key(s3_path: object, product_name: str) -> str:
    """The eodata key of a record's ``S3Path``, after checking that it stays in the bucket's
    ``Sentinel-1/`` tree and ends in ``product_name`` (``….SAFE``); else a
    :class:`ProcessingError` (the record is wrong: nothing is read)."""
    name = product_name if product_name.upper().endswith(".SAFE") else f"{product_name}.SAFE"
    text = str(s3_path or "")
    shown = text[:160]
    if not text:
        raise ProcessingError(f"{product_name}: the catalogue record has no S3Path",
                              "use access 'download' for this product")  # fmt: skip
    key = text[len(PREFIX) :] if text.startswith(PREFIX) else ""
    parts = key.rstrip("/").split("/")
    if not key or not _KEY_RE.match(key) or ".." in parts or "." in parts or "" in parts:
        raise ProcessingError(
            f"refusing the S3Path {shown!r} of {product_name}: it leaves the eodata bucket's "
            "Sentinel-1 tree",
            "nothing was read; report the record to CDSE",
        )
    key = key.rstrip("/")
    if PurePosixPath(key).name != name:
        raise ProcessingError(
            f"refusing the S3Path {shown!r}: it names {PurePosixPath(key).name!r}, not the "
            f"record's product {name!r}",
            "nothing was read; report the record to CDSE",
        )
    return key


def locate(key: str, access: str) -> Path:
    """Where the reader opens the product of ``key``: ``/vsis3/eodata/<key>`` or
    ``<mount>/<key>``."""
    if access == "s3":
        return Path(S3Settings.from_env().vsi_path(key))
    if access == "mount":
        path = mount_root() / key
        if not path.is_dir():
            raise ProcessingError(f"{key} is not under the eodata mount {mount_root()}",
                                  "check the mount; rerun the search")  # fmt: skip
        return path
    raise UsageError(f"access {access!r} does not read in place", "use s3 or mount", key="access")


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an object in S3 (``/vsis3/…``), not a local file."""
    return str(path).startswith(VSIS3)


def configure_access(source: Any, access: str = "download", twin: str = "auto") -> None:
    """Set how ``source`` delivers products (``access``) and which twin its searches keep.
    Only the cdse source reads in place: another source with ``s3``/``mount`` is a
    :class:`UsageError`."""
    check_access(access)
    if twin not in TWIN_PREFERENCES:
        raise UsageError(f"unknown twin preference {twin!r}",
                         f"use one of: {', '.join(TWIN_PREFERENCES)}", key="twin")  # fmt: skip
    from scanner.sources.cdse import CDSESource

    if not isinstance(source, CDSESource):
        if access != "download":
            raise UsageError(
                f"access {access!r} reads CDSE's archive in place; the {source.name!r} source "
                "cannot", "use the cdse source, or access 'download'", key="access",
            )  # fmt: skip
        return  # other sources only download (or serve files where they lie)
    source.access = access
    source.twin = twin


def wants_cog(access: str, twin: str) -> bool:
    """Whether a search keeps the COG twin over the original when CDSE has both."""
    return twin == "cog" or (twin == "auto" and access in ("s3", "mount"))


def prefer_twin(old: Scene, new: Scene, cog: bool) -> Scene:
    """Of two records of one scene, the COG twin (``cog``) or the original; the kept one
    remembers the other's ``S3Path`` and name (``alt_s3_path``/``alt_product_name``) so an
    in-place read can fall back to it."""
    if bool(old.attrs.get("cog")) == bool(new.attrs.get("cog")):
        return old
    keep, other = (old, new) if bool(old.attrs.get("cog")) == cog else (new, old)
    extra = {"alt_s3_path": other.attrs.get("s3_path"),
             "alt_product_name": other.attrs.get("product_name")}  # fmt: skip
    return replace(keep, attrs={**keep.attrs, **{k: v for k, v in extra.items() if v}})


def locate_scene(scene: Scene, access: str) -> Path:
    """Where the reader opens ``scene`` in place: its record's ``S3Path`` (checked), or the
    other twin's when the first is absent from the bucket or the mount."""
    name = str(scene.attrs.get("product_name") or f"{scene.name}.SAFE")
    tries = [(scene.attrs.get("s3_path"), name)]
    if scene.attrs.get("alt_s3_path"):
        tries.append((scene.attrs["alt_s3_path"], str(scene.attrs.get("alt_product_name") or "")))
    first: ProcessingError | None = None
    for s3_path, product in tries:
        key = object_key(s3_path, product)
        try:
            return check_present(key, access)
        except ProcessingError as err:
            first = first or err
    assert first is not None
    raise first


def check_present(key: str, access: str) -> Path:
    """:func:`locate`, after checking that the product's manifest is there."""
    if access == "s3":
        from scanner.access.s3 import S3Client

        if not S3Client(S3Settings.from_env()).list(key + "/manifest.safe"):
            raise ProcessingError(f"{key}/manifest.safe is not in the eodata bucket",
                                  "rerun the search; the product may have moved")  # fmt: skip
    return locate(key, access)
