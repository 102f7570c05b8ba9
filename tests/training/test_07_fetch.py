"""fetch-dataset against a real HTTP server on loopback: resume, size, corrupt zip, traversal."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile

import pytest
from PIL import Image

import cli
from polarscan.common.errors import ProcessingError
from tests.support.loopback import Fault, LoopbackServer
from training.fetch import DOI, FILES, fetch_dataset

ACCESS = "/api/access/datafile/:persistentId"
META = "/api/files/:persistentId/"


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (value, value, value)).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(split: str, extra: dict[str, bytes] | None = None, n: int = 3) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{split}/", b"")
        for cls in ("pos", "neg"):
            for i in range(n):
                z.writestr(f"{split}/{cls}/{i:06x}_20200101T00000{i}_20200101T00050{i}_mos_rgb.png",
                           _png(40 * i + (cls == "pos")))  # fmt: skip
        z.writestr("__MACOSX/._junk", b"x")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def serve(srv: LoopbackServer, zips: dict[str, bytes], meta: bool = True, sizes=None, faults=None):
    for split, data in zips.items():
        pid = f"{DOI}/{FILES[split]}"
        srv.add_bytes(
            ACCESS, data, query={"persistentId": pid}, faults=(faults or {}).get(split, ())
        )
        if meta:
            size = (sizes or {}).get(split, len(data))
            doc = {"status": "OK", "data": {"dataFile": {
                "filesize": size, "checksum": {"type": "MD5", "value": hashlib.md5(data).hexdigest()}}}}  # fmt: skip
            srv.add_json(META, doc, query={"persistentId": pid})


def test_interrupted_download_resumes_and_second_run_does_nothing(tmp_path):
    zips = {s: make_zip(s) for s in FILES}
    with LoopbackServer() as srv:
        serve(srv, zips, faults={"train": [Fault(drop_after=700)]})
        root = fetch_dataset(tmp_path / "ds", base=srv.url, backoff=0.01)
        gets = srv.requests_to(ACCESS)
        assert len(gets) == 3  # train dropped + resumed, test once
        assert gets[1].headers.get("Range") == "bytes=700-"
        for split in FILES:
            for cls in ("pos", "neg"):
                files = sorted((root / split / cls).glob("*.png"))
                assert len(files) == 3
                with Image.open(files[1]) as im:
                    assert im.size == (8, 8)
        assert not (root / ".downloads").exists()  # zips removed after extraction
        assert not (root / "train" / "__MACOSX").exists()
        before = len(srv.requests)
        assert cli.main(["fetch-dataset", "--out", str(root)]) == 0  # not even a metadata request
        assert len(srv.requests) == before  # complete splits: no network at all


def test_wrong_size_is_a_runtime_error(tmp_path, monkeypatch, capsys):
    zips = {s: make_zip(s) for s in FILES}
    with LoopbackServer() as srv:
        serve(srv, zips, sizes={"train": len(zips["train"]) - 10})
        monkeypatch.setenv("DATAVERSE_URL", srv.url)
        assert cli.main(["fetch-dataset", "--out", str(tmp_path / "ds")]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1 and "bytes expected" not in err[0] and "expected" in err[0]
    assert not (tmp_path / "ds" / "train").exists()
    assert not list((tmp_path / "ds").rglob("*.zip"))


def test_corrupt_zip_is_refused_and_removed(tmp_path):
    data = bytearray(make_zip("train"))
    i = data.index(b"IEND")  # inside a stored PNG member: the CRC check must fail
    data[i - 20] ^= 0xFF
    with LoopbackServer() as srv:
        serve(srv, {"train": bytes(data), "test": make_zip("test")}, meta=False)
        with pytest.raises(ProcessingError, match="corrupt"):
            fetch_dataset(tmp_path / "ds", base=srv.url, backoff=0.01)
    assert not (tmp_path / "ds" / "train").exists()
    assert not (tmp_path / "ds" / ".downloads" / "train.zip").exists()


def test_not_a_zip(tmp_path):
    with LoopbackServer() as srv:
        serve(srv, {"train": b"<html>maintenance</html>", "test": make_zip("test")}, meta=False)
        with pytest.raises(ProcessingError, match="not a valid zip"):
            fetch_dataset(tmp_path / "ds", base=srv.url, backoff=0.01)


@pytest.mark.parametrize(
    "entry", ["../evil.png", "train/pos/../../../evil.png", "/tmp/evil.png", "C:/evil.png"]
)
def test_entry_escaping_its_folder_is_refused(tmp_path, entry):
    bad = make_zip("train", extra={entry: _png(1)})
    with LoopbackServer() as srv:
        serve(srv, {"train": bad, "test": make_zip("test")})
        with pytest.raises(ProcessingError, match="escaping its folder"):
            fetch_dataset(tmp_path / "ds", base=srv.url, backoff=0.01)
    assert not (tmp_path / "evil.png").exists()
    assert not (tmp_path / "ds" / "train").exists()


def test_symlink_entry_is_refused(tmp_path):
    buf = io.BytesIO(make_zip("train"))
    with zipfile.ZipFile(buf, "a") as z:
        info = zipfile.ZipInfo("train/pos/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    with LoopbackServer() as srv:
        serve(srv, {"train": buf.getvalue(), "test": make_zip("test")})
        with pytest.raises(ProcessingError, match="symbolic link"):
            fetch_dataset(tmp_path / "ds", base=srv.url, backoff=0.01)


def test_zip_without_expected_layout(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("images/a.png", _png(3))
    with LoopbackServer() as srv:
        serve(srv, {"train": buf.getvalue(), "test": make_zip("test")})
        with pytest.raises(ProcessingError, match="no images under a 'pos/'"):
            fetch_dataset(tmp_path / "ds", base=srv.url, backoff=0.01)
