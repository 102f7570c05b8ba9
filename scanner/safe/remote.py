"""A SAFE product read in place from S3 (``/vsis3/<bucket>/<key>.SAFE``): one listing, XML by
whole-object GETs, measurement TIFFs opened by GDAL with range reads (nothing copied to disk).

The endpoint and keys come from the environment (:class:`scanner.access.s3.S3Settings`), so a
path is all a worker needs; :meth:`RemoteSafeContainer.gdal_env` is what GDAL must see while
it opens and reads the TIFFs.
"""

from __future__ import annotations

from pathlib import Path

from polarscan.common.errors import PolarScanError, ProcessingError
from scanner.access.eodata import VSIS3
from scanner.access.s3 import S3Client, S3Settings
from scanner.safe.container import SafeContainer


class RemoteSafeContainer(SafeContainer):
    """Files of one product in an S3 bucket; ``rel`` paths relative to the ``.SAFE`` key."""

    def __init__(self, path: Path | str, label: str, client: S3Client | None = None) -> None:
        text = str(path)
        if not text.startswith(VSIS3):
            raise ValueError(f"not a /vsis3/ path: {text}")
        bucket, _, key = text[len(VSIS3) :].partition("/")
        self.path = Path(text)
        self.label = label
        self._zip = None
        self._prefix = key.rstrip("/") + "/"
        settings = S3Settings.from_env()
        if bucket != settings.bucket:
            settings = S3Settings(settings.endpoint, settings.access_key, settings.secret_key,
                                  bucket, settings.region)  # fmt: skip
        self.settings = settings
        self.client = client or S3Client(settings, meter_key=str(self.path))
        listing = self.client.list(self._prefix)
        if not listing:
            raise ProcessingError(f"{label}: nothing under s3://{bucket}/{self._prefix}",
                                  "rerun the search; the product may have moved")  # fmt: skip
        self.sizes = {k[len(self._prefix) :]: n for k, n in listing.items()}
        self._index = {rel.lower(): rel for rel in self.sizes if rel and not rel.endswith("/")}

    @property
    def size(self) -> int:
        """Bytes of the whole product (every object under its key)."""
        return sum(self.sizes.values())

    def missing(self, what: str) -> PolarScanError:
        """An object the listing lacks is the provider's matter (a product still being written,
        or one whose upload broke), not a download to redo: the scene fails and the next run
        tries again."""
        return ProcessingError(
            f"{self.label}: {what} is missing under s3://{self.settings.bucket}/{self._prefix}",
            "the next run tries this scene again; if the object stays missing, download the "
            "product instead (access: download)",
            key="access",
        )

    def read(self, rel: str) -> bytes:
        real = self._require(rel)
        return self.client.get(self._prefix + real)

    def file_size(self, rel: str) -> int | None:
        real = self.resolve(rel)
        return None if real is None else self.sizes.get(real)

    def raster_path(self, rel: str) -> str:
        return self.settings.vsi_path(self._prefix + self._require(rel))

    def gdal_env(self):
        return self.settings.gdal_env()

    def close(self) -> None:
        self.client.session.close()
