"""Zip bombs and lying central directories, for SAFE zips and the dataset zips: refused from
their declared sizes before anything is decompressed (issue 13 item 4)."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from polarscan.common.archives import ZipLimits, check_zip_sizes
from polarscan.common.errors import ProcessingError, UsageError
from scanner.safe.container import SAFE_ZIP_LIMITS, SafeContainer
from training.fetch import DATASET_ZIP_LIMITS, verify_zip

NAME = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
ZEROS = 64 << 20  # 64 MiB of zeros deflate to ~64 KiB: ratio ~1000:1


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _lie(data: bytes, member: str, file_size: int) -> bytes:
    """``data`` with the central directory entry of ``member`` declaring ``file_size``."""
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len].decode() == member:
            return data[: at + 24] + struct.pack("<I", file_size) + data[at + 28 :]
        at = data.index(b"PK\x01\x02", at + 4)


def test_safe_zip_bomb_refused_before_reading(tmp_path):
    path = tmp_path / f"{NAME}.zip"
    path.write_bytes(_zip({f"{NAME}.SAFE/manifest.safe": b"<xfdu/>",
                           f"{NAME}.SAFE/measurement/s1a-ew-grd-hh.tiff": bytes(ZEROS)}))  # fmt: skip
    assert path.stat().st_size < 1 << 20  # small on disk
    with pytest.raises(UsageError) as ei:
        SafeContainer(path, NAME)
    msg = str(ei.value)
    assert ei.value.exit_code == 2 and "s1a-ew-grd-hh.tiff" in msg
    assert ":1" in msg and "zip bomb" in msg and "SAFE_ZIP_LIMITS" in msg


def test_safe_zip_central_directory_claiming_a_huge_member(tmp_path):
    data = _zip({f"{NAME}.SAFE/manifest.safe": b"<xfdu/>",
                 f"{NAME}.SAFE/measurement/a.tiff": bytes(1000)})  # fmt: skip
    path = tmp_path / f"{NAME}.zip"
    path.write_bytes(_lie(data, f"{NAME}.SAFE/measurement/a.tiff", 0xFFFF_FFF0))
    with pytest.raises(UsageError, match=r"a\.tiff"):
        SafeContainer(path, NAME)


def test_safe_zip_central_directory_claiming_a_small_member(tmp_path):
    """It says 10 bytes, it holds 4 MiB: zipfile stops at 10 and the CRC fails, so the
    reader gets a clear error, never the 4 MiB."""
    member = f"{NAME}.SAFE/manifest.safe"
    path = tmp_path / f"{NAME}.zip"
    path.write_bytes(_lie(_zip({member: b"<xfdu/>" + bytes(4 << 20)}), member, 10))
    container = SafeContainer(path, NAME)
    with pytest.raises(UsageError, match="corrupt or truncated"):
        container.read("manifest.safe")
    container.close()


def test_per_entry_and_total_limits(tmp_path):
    path = tmp_path / f"{NAME}.zip"
    path.write_bytes(_zip({f"{NAME}.SAFE/manifest.safe": b"<xfdu/>",
                           f"{NAME}.SAFE/a.bin": bytes(3000), f"{NAME}.SAFE/b.bin": bytes(3000)}))  # fmt: skip
    per_entry = ZipLimits(max_member=2000, max_total=10**9, max_ratio=1e9)
    with pytest.raises(UsageError, match=r"a\.bin' unpacks to .* allowed per entry"):
        SafeContainer(path, NAME, per_entry)
    total = ZipLimits(max_member=10**9, max_total=5000, max_ratio=1e9)
    with pytest.raises(UsageError, match=r"allowed in total \(reached at entry .*b\.bin"):
        SafeContainer(path, NAME, total)
    SafeContainer(path, NAME).close()  # the defaults accept it


def test_default_limits_fit_real_products():
    gib = 1 << 30
    tiff = zipfile.ZipInfo("measurement/s1a-iw-grd-vv.tiff")
    tiff.file_size, tiff.compress_size = int(1.7 * gib), int(1.5 * gib)  # IW GRDH, per pol
    xml = zipfile.ZipInfo("annotation/s1a.xml")
    xml.file_size, xml.compress_size = 5 << 20, 300 << 10  # 17:1, under the ratio floor
    assert check_zip_sizes([tiff, tiff, xml], SAFE_ZIP_LIMITS, "x", UsageError, "f") > 3 * gib
    assert DATASET_ZIP_LIMITS.max_total < SAFE_ZIP_LIMITS.max_total


def test_dataset_zip_bomb_refused_before_extraction(tmp_path):
    path = tmp_path / "train.zip"
    path.write_bytes(_zip({"train/pos/a.png": b"\x89PNG", "train/neg/b.png": bytes(ZEROS)}))
    with pytest.raises(ProcessingError, match=r"train/neg/b\.png.*DATASET_ZIP_LIMITS") as ei:
        verify_zip(path)
    assert ei.value.exit_code == 1


def test_dataset_zip_lying_about_sizes_fails_its_crc(tmp_path):
    path = tmp_path / "train.zip"
    data = _zip({"train/pos/a.png": b"\x89PNG" + bytes(1 << 20), "train/neg/b.png": b"\x89PNG"})
    path.write_bytes(_lie(data, "train/pos/a.png", 16))
    with pytest.raises(ProcessingError, match="bad CRC"):
        verify_zip(path)
