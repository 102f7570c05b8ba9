"""A SAFE product as a set of files, whether a folder or a zip read in place (never extracted);
:mod:`scanner.safe.remote` reads one in place from S3 behind the same interface.

Names are looked up case-insensitively (``s1a-…`` vs ``S1A-…``), relative to the ``.SAFE`` root.
A zip's declared sizes are checked against :data:`SAFE_ZIP_LIMITS` when it is opened, before
anything is decompressed (a zip bomb is refused, not read).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from polarscan.common.archives import GIB, ZipLimits, check_zip_sizes
from polarscan.common.errors import PolarScanError, UsageError
from polarscan.common.meter import current_meter

#: A real EW GRDM zip is 0.3–0.5 GB with measurement TIFFs up to ~1 GB unpacked; an IW GRDH
#: TIFF reaches ~1.7 GB and a dual-pol IW product ~3.5 GB. TIFFs of DN barely compress; the
#: XML does (~10–30:1). Anything far beyond is not a Sentinel-1 product.
SAFE_MAX_MEMBER_BYTES = 4 * GIB
SAFE_MAX_TOTAL_BYTES = 12 * GIB
SAFE_MAX_RATIO = 100.0
SAFE_ZIP_LIMITS = ZipLimits(SAFE_MAX_MEMBER_BYTES, SAFE_MAX_TOTAL_BYTES, SAFE_MAX_RATIO)


class SafeContainer:
    """Read files of one product. ``rel`` paths are relative to the SAFE root, '/'-separated."""

    def __init__(self, path: Path, label: str, limits: ZipLimits = SAFE_ZIP_LIMITS) -> None:
        self.path = path
        self.limits = limits
        self.label = label  # the product name, for error messages
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        self._index: dict[str, str] = {}  # lower-case rel path → real rel path
        # a folder read in place (the eodata mount) counts the files it reads into the meter
        # of the scope it was opened in (a zip is a download: counted when it was fetched)
        self._meter = current_meter()
        if path.is_dir():
            root = path
            if not (path / "manifest.safe").exists():
                subs = [p for p in path.glob("*.SAFE") if (p / "manifest.safe").exists()]
                root = subs[0] if len(subs) == 1 else path
            self._root = root
            for f in root.rglob("*"):
                if f.is_file():
                    rel = f.relative_to(root).as_posix()
                    self._index[rel.lower()] = rel
        else:
            self._open_zip(path)

    def _open_zip(self, path: Path) -> None:
        try:
            zf = zipfile.ZipFile(path)
            names = zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise UsageError(
                f"{self.label}: {path} is not a readable zip ({err}); it may be truncated or corrupt",
                "download the product again",
            ) from None
        try:
            check_zip_sizes(
                zf.infolist(), self.limits, f"{self.label}: {path}", UsageError,
                "delete it and download the product again (limits: "
                "scanner.safe.container.SAFE_ZIP_LIMITS)",
            )  # fmt: skip
        except UsageError:
            zf.close()
            raise
        self._zip = zf
        manifests = sorted(
            (n for n in names if n.lower().endswith("manifest.safe") and n.count("/") <= 1),
            key=lambda n: n.count("/"),
        )
        if manifests:
            self._prefix = manifests[0][: -len("manifest.safe")]
        for n in names:
            if n.startswith(self._prefix) and not n.endswith("/"):
                rel = n[len(self._prefix) :]
                self._index[rel.lower()] = rel

    @staticmethod
    def norm(rel: str) -> str:
        rel = rel.replace("\\", "/")
        while rel.startswith("./"):
            rel = rel[2:]
        return rel.lstrip("/")

    def resolve(self, rel: str) -> str | None:
        """The real relative name of ``rel`` (case-insensitive), or None if absent."""
        return self._index.get(self.norm(rel).lower())

    def names(self) -> list[str]:
        return list(self._index.values())

    def _require(self, rel: str) -> str:
        real = self.resolve(rel)
        if real is None:
            raise self.missing(f"file {self.norm(rel)}")
        return real

    def missing(self, what: str) -> PolarScanError:
        """The error for a file of the product that is not there (``what`` names it)."""
        return UsageError(f"{self.label}: {what} is missing from the product",
                          "download the complete product again")  # fmt: skip

    def gdal_env(self):
        """A ``rasterio.Env`` with what GDAL needs to open and read :meth:`raster_path`
        (nothing more, locally)."""
        import rasterio

        return rasterio.Env()

    def read(self, rel: str) -> bytes:
        real = self._require(rel)
        try:
            if self._zip is not None:
                return self._zip.read(self._prefix + real)
            data = (self._root / real).read_bytes()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            raise UsageError(
                f"{self.label}: cannot read {real} ({err}); the product is corrupt or truncated",
                "download the product again",
            ) from None
        if self._meter is not None:
            self._meter.add(len(data), key=str(self.path))
        return data

    def file_size(self, rel: str) -> int | None:
        """Bytes of the file ``rel`` (None when unknown)."""
        real = self.resolve(rel)
        if real is None:
            return None
        try:
            if self._zip is not None:
                return self._zip.getinfo(self._prefix + real).file_size
            return (self._root / real).stat().st_size
        except (KeyError, OSError):
            return None

    def raster_path(self, rel: str) -> str:
        """A path GDAL opens: the file itself, or ``/vsizip/<zip>/<member>`` (read in place)."""
        real = self._require(rel)
        if self._zip is not None:
            return f"/vsizip/{self.path.resolve()}/{self._prefix}{real}"
        return str(self._root / real)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
