"""The COG twin of a SAFE product, made as CDSE makes them (domain brief §6, ``GRD2COG.sh``).

Each measurement TIFF becomes a Cloud-Optimised GeoTIFF (``gdal_translate -of COG -a_nodata 0
-co OVERVIEW_COUNT=6 -co BLOCKSIZE=1024 -co OVERVIEW_RESAMPLING=RMS -co COMPRESS=ZSTD``) named
``*-cog.tiff``; the annotation, calibration, noise and rfi XMLs are copied unchanged as
``*-cog.xml``; the manifest points at the new names and gains a ``safe:processing`` named
"COG Conversion" that names the original. The product name gets ``_COG`` and a new CRC.
``resampling`` other than RMS (e.g. ``AVERAGE``) makes a twin whose overviews are NOT block
means of DN²: for tests of the reader's check.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from polarscan.common.atomic import atomic_path
from scanner.safe.product import product_name

OVERVIEW_COUNT = 6
BLOCKSIZE = 1024
_XML_DIRS = ("annotation/",)  # every XML below annotation/ is renamed (calibration, noise, rfi)


def twin_name(name: str) -> str:
    """``…_BB15`` → ``…_<new crc>_COG`` (a deterministic CRC stands in for CDSE's)."""
    crc = hashlib.blake2s(f"{name}:cog".encode(), digest_size=2).hexdigest().upper()
    return f"{name[:-4]}{crc}_COG"


def renamed(rel: str) -> str:
    """The twin's name of a product file (``x.tiff`` → ``x-cog.tiff``; annotation XMLs →
    ``x-cog.xml``; anything else unchanged)."""
    if rel.startswith("measurement/") and rel.endswith((".tiff", ".tif")):
        stem, ext = rel.rsplit(".", 1)
        return f"{stem}-cog.{ext}"
    if rel.startswith(_XML_DIRS) and rel.endswith(".xml"):
        return rel[:-4] + "-cog.xml"
    return rel


def cog_manifest(text: str, original: str, when: datetime | None = None) -> str:
    """The twin's manifest: hrefs renamed, a "COG Conversion" processing naming ``original``."""

    def href(m: re.Match) -> str:
        rel = m[2].removeprefix("./")
        return f'{m[1]}./{renamed(rel)}"'

    text = re.sub(r'(href=")(\./(?:measurement|annotation)/[^"]+)"', href, text)
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    conversion = (
        f'<safe:processing name="COG Conversion" start="{stamp}" stop="{stamp}">'
        f'<safe:resource name="{original}.SAFE" role="Input product"/></safe:processing>'
    )
    # the first <xmlData> holds the provenance ("processing" metadataObject)
    marker = re.search(r'<metadataObject ID="processing"[^>]*>\s*<metadataWrap[^>]*>\s*<xmlData>',
                       text)  # fmt: skip
    if marker:
        text = text[: marker.end()] + conversion + text[marker.end() :]
    return text


def write_cog(src: Path, dst: Path, resampling: str = "RMS", blocksize: int = BLOCKSIZE) -> None:
    """``src`` (UInt16 DN, GCPs) as a COG with nodata 0, ZSTD, ``resampling`` overviews."""
    import rasterio.shutil

    rasterio.shutil.copy(
        f"vrt://{src.resolve()}?a_nodata=0", str(dst), driver="COG", COMPRESS="ZSTD",
        BLOCKSIZE=str(blocksize), OVERVIEW_COUNT=str(OVERVIEW_COUNT),
        OVERVIEW_RESAMPLING=resampling, BIGTIFF="IF_SAFER",
    )  # fmt: skip


def write_cog_twin(
    product: str | Path,
    dest_dir: str | Path,
    *,
    resampling: str = "RMS",
    blocksize: int = BLOCKSIZE,
) -> Path:
    """Write the ``_COG.SAFE`` twin of the SAFE folder ``product`` into ``dest_dir``
    (atomically); returns its path."""
    src = Path(product)
    name = product_name(src)
    target = Path(dest_dir) / f"{twin_name(name)}.SAFE"
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        for f in sorted(src.rglob("*")):
            if not f.is_file():
                continue
            rel = f.relative_to(src).as_posix()
            out = tmp / renamed(rel)
            out.parent.mkdir(parents=True, exist_ok=True)
            if rel == "manifest.safe":
                out.write_text(cog_manifest(f.read_text(), name))
            elif rel.startswith("measurement/"):
                write_cog(f, out, resampling, blocksize)
            else:
                shutil.copyfile(f, out)
    return target
