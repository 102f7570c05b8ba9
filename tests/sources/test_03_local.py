"""The local folder source on real SAFE folders and zips (the bundled sample's manifest)."""

from __future__ import annotations

import logging
import os
import shutil
import zipfile
from datetime import UTC, datetime

import pytest

from polarscan.common.errors import ProcessingError, UsageError
from scanner.aoi import AOI
from scanner.sources import get_source
from scanner.sources.local import LocalSource, parse_coordinates

SAMPLE = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
OTHER = "S1B_EW_GRDM_1SDH_20211201T050015_20211201T050119_029800_038ECB_7E01"
IW = "S1A_IW_GRDH_1SDV_20221130T060000_20221130T060025_046120_05854C_AAAA"


@pytest.fixture(scope="module")
def manifest(repo_root) -> bytes:
    return (repo_root / "scanner/demo/sample" / f"{SAMPLE}.SAFE" / "manifest.safe").read_bytes()


def _zip(path, name, manifest: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.SAFE/manifest.safe", manifest)
        zf.writestr(f"{name}.SAFE/measurement/readme.txt", "no rasters here")


@pytest.fixture
def folder(tmp_path, manifest):
    (tmp_path / f"{SAMPLE}.SAFE").mkdir()
    (tmp_path / f"{SAMPLE}.SAFE" / "manifest.safe").write_bytes(manifest)
    _zip(tmp_path / f"{SAMPLE}.zip", SAMPLE, manifest)  # same product as a zip: the folder wins
    sub = tmp_path / "2021" / "12"
    sub.mkdir(parents=True)
    barents = manifest.replace(
        b"76.879097,91.651596 78.260895,75.348396 81.972343,81.596954 80.113571,102.789734",
        b"72.0,20.0 72.0,40.0 76.0,40.0 76.0,20.0",
    )
    _zip(sub / f"{OTHER}.SAFE.zip", OTHER, barents)
    _zip(tmp_path / f"{IW}.zip", IW, manifest)  # IW VV+VH: a scene too (same footprint)
    _zip(tmp_path / f"{IW.replace('1SDV', '1SSV')}.zip", IW, manifest)  # single-pol: foreign
    (tmp_path / f"{OTHER.replace('7E01', 'BAD0')}.zip").write_bytes(b"PK\x03\x04 truncated")
    with zipfile.ZipFile(tmp_path / f"{OTHER.replace('7E01', '0FF0')}.zip", "w") as zf:
        zf.writestr("readme.txt", "no manifest")
    (tmp_path / "notes.zip").write_bytes(b"")
    return tmp_path


def test_finds_products_and_reads_footprints(folder, caplog):
    caplog.set_level(logging.WARNING)
    scenes = LocalSource(folder).scenes()
    assert [s.name for s in scenes] == [OTHER, SAMPLE, IW]  # oldest first
    other, sample, iw = scenes
    assert (iw.mode, iw.polarisations, sample.mode) == ("IW", ("VV", "VH"), "EW")
    assert sample.attrs["zip"] is False and sample.id == str((folder / f"{SAMPLE}.SAFE").resolve())
    assert sample.start == datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)
    assert sample.stop == datetime(2022, 11, 30, 1, 44, 46, tzinfo=UTC)
    assert sample.footprint.bounds == pytest.approx((75.348396, 76.879097, 102.789734, 81.972343))
    assert other.attrs["zip"] is True and other.size > 0
    assert other.footprint.bounds == (20.0, 72.0, 40.0, 76.0)
    assert "BAD0" in caplog.text and "0FF0" in caplog.text  # broken products are named


def test_search_filters(folder):
    src = get_source(f"local:{folder}")
    kara, barents = AOI.from_bbox(60, 75, 110, 85), AOI.from_bbox(10, 65, 50, 78)
    assert [s.name for s in src.search(kara)] == [SAMPLE, IW]
    assert [s.name for s in src.search(barents)] == [OTHER]
    assert [s.name for s in src.search(None, datetime(2022, 1, 1, tzinfo=UTC))] == [SAMPLE, IW]
    assert [s.name for s in src.search(None, None, datetime(2022, 1, 1, tzinfo=UTC))] == [OTHER]
    t = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    os.utime(folder / f"{SAMPLE}.SAFE", (t, t))
    new = src.search(None, published_after=datetime(2029, 1, 1, tzinfo=UTC))
    assert [s.name for s in new] == [SAMPLE]


@pytest.mark.parametrize(("modes", "kept", "foreign"), [("EW", [SAMPLE], 2), ("iw", [IW], 3)])
def test_search_of_one_mode(folder, modes, kept, foreign):
    """The folder holds both modes: a search of one keeps it and counts the other mode's
    scenes as foreign (wherever they lie), beside the single-pol product (always foreign)."""
    src = get_source(f"local:{folder}", modes=modes)
    kara = AOI.from_bbox(60, 75, 110, 85)
    assert [s.name for s in src.search(kara)] == kept
    st = src.last_search_stats
    assert st.foreign == foreign and st.kept == len(kept)
    assert (st.duplicate, st.unparseable) == (1, 2)  # the sample's zip; BAD0 and 0FF0


def test_download_returns_the_product(folder, tmp_path_factory):
    src = LocalSource(folder)
    scene = src.scenes()[0]
    out = tmp_path_factory.mktemp("dl")
    assert src.download(scene, out) == folder / "2021" / "12" / f"{OTHER}.SAFE.zip"
    assert list(out.iterdir()) == []  # nothing copied
    shutil.rmtree(folder / "2021")
    with pytest.raises(ProcessingError, match="no longer at"):
        src.download(scene, out)


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found") as ei:
        get_source(f"local:{tmp_path / 'nope'}")
    assert ei.value.exit_code == 2


def test_parse_coordinates():
    poly = parse_coordinates(b"<gml:coordinates>1,2 3,4 5,2</gml:coordinates>")
    assert list(poly.exterior.coords) == [(2, 1), (4, 3), (2, 5), (2, 1)]
    assert parse_coordinates(b"<x/>") is None
    assert parse_coordinates(b"<gml:coordinates>1,a 2,3</gml:coordinates>") is None


def test_an_original_and_its_cog_twin_are_one_scene(tmp_path):
    """A COG twin has its own CRC (…_53C5 → …_74F9_COG): the folder lists the slice once (the
    original) and counts the twin."""
    from scanner.demo.synthetic_product import write_datatake
    from scanner.sources.local import LocalSource

    [orig] = write_datatake(tmp_path / "gen", slices=1, scale=1 / 16, seed=3)
    folder = tmp_path / "incoming"
    folder.mkdir()
    shutil.copytree(orig, folder / orig.name)
    stem = orig.name.removesuffix(".SAFE")
    twin = folder / f"{stem[:-4]}74F9_COG.SAFE"
    shutil.copytree(orig, twin)
    source = LocalSource(folder)
    [scene] = source.scenes()
    assert scene.name == stem and not scene.attrs["cog"]
    [scene_again] = list(source.search(None, None, None))
    assert scene_again.name == stem
    assert source.last_search_stats.twin == 1
