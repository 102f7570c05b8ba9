"""A corrupt product in a local folder: exit 1, the good datatake is processed and recorded, the
bad one is recorded as failed with its error and retried by the next run (up to the cap)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from tests.support.scan_helpers import layer_counts, run_scan, scan_model

__all__ = ["scan_model"]


def _corrupt_zip(safe: Path, dest_dir: Path) -> Path:
    """Zip ``safe`` under another datatake's name (so it is its own mosaic), with its HV
    measurement replaced by garbage: the manifest reads fine, the raster does not."""
    name = safe.name.replace("_046117_058549_", "_046999_0ABCDE_").removesuffix(".SAFE")
    target = dest_dir / f"{name}.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for f in sorted(safe.rglob("*")):
            if f.is_dir():
                continue
            rel = f"{name}.SAFE/{f.relative_to(safe).as_posix()}"
            data = f.read_bytes()
            if "measurement" in rel and "-hv-" in rel:
                data = b"II*\x00" + b"\x5a" * 2000  # a TIFF header and nothing sane behind it
            zf.writestr(rel, data)
    return target


@pytest.fixture(scope="module")
def local_folder(tmp_path_factory) -> Path:
    from scanner.demo.synthetic_product import write_datatake

    work = tmp_path_factory.mktemp("products")
    good, other = write_datatake(work / "gen", slices=2, scale=1 / 16, seed=5)
    folder = work / "incoming"
    folder.mkdir()
    shutil.copytree(good, folder / good.name)
    _corrupt_zip(other, folder)
    return folder


def test_a_failing_scene_gives_exit_1_and_the_rest_is_done(local_folder, scan_model, tmp_path):
    out = tmp_path / "out"
    args = (
        "--source", f"local:{local_folder}", "--bbox", "60", "70", "110", "83",
        "--since", "2022-11-01", "--model", str(scan_model), "--out", str(out), "--sequential",
        "--saliency", "none",
    )  # fmt: skip
    rc, s, err = run_scan(*args)
    assert rc == 1, err
    c = s["counts"]
    assert (c["found"], c["processed"], c["failed"], c["mosaics"]) == (2, 1, 1, 2)
    [failure] = s["failures"]
    assert "0ABCDE" in failure["mosaic"] and failure["error"]

    from scanner.record import Record

    with Record.open(out) as rec:
        [bad] = rec.scenes(status="failed")
        [ok] = rec.scenes(status="processed")
    assert "0ABCDE" in bad.name and bad.attempts == 1 and bad.last_error == failure["error"]
    assert "058549" in ok.name and Path(ok.outputs["rgb"]).is_file()
    assert layer_counts(out / "detections.gpkg")["scenes"] == 1

    # the next run retries only the failed scene (and fails again: exit 1, attempts 2)
    rc, s, err = run_scan(*args)
    assert rc == 1, err
    c = s["counts"]
    assert (c["processed"], c["failed"], c["skipped"]) == (0, 1, 1)
    with Record.open(out) as rec:
        assert rec.scenes(status="failed")[0].attempts == 2
    assert layer_counts(out / "detections.gpkg")["scenes"] == 1
