"""IW dual-pol products (issue 14): the real IW sample, synthetic 1SDV products as folder, zip and
COG twin, three sub-swaths, both noise formats, radiometric round trip, and what is refused."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from polarscan.common.errors import UsageError
from scanner.demo.synthetic_product import SAMPLE_IW, read_sample, true_sigma0, write_datatake
from scanner.safe import open_product
from scanner.safe.product import check_name
from scanner.safe.radiometry import SIGMA0_FLOOR, block_centres, sigma0_blocks
from scanner.safe.xmlparse import parse_annotation, parse_calibration, parse_noise

IW_NAME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
SCALE = 1 / 32  # 816 x 522 px at 320 m
B = 4


@pytest.fixture(scope="module")
def iw_dir(tmp_path_factory) -> Path:
    return write_datatake(tmp_path_factory.mktemp("iw"), sample=SAMPLE_IW, scale=SCALE)[0]


@pytest.fixture(scope="module")
def iw_zip(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("iwz")
    return write_datatake(d, sample=SAMPLE_IW, scale=SCALE, zip=True)[0]


def test_real_iw_sample_metadata_and_derived_vh():
    s = read_sample(SAMPLE_IW)
    assert (s.name, s.mode, s.pols, s.derived) == (IW_NAME, "IW", ("VV", "VH"), ("VH",))
    assert s.shape == (16705, 26102)
    vv = parse_annotation(s.texts[("annotation", "VV")])
    vh = parse_annotation(s.texts[("annotation", "VH")])
    assert (vv.mode, vv.polarisation, vh.polarisation) == ("IW", "VV", "VH")
    assert (vv.pixel_spacing_m, vv.line_spacing_m) == (10.0, 10.0)
    np.testing.assert_array_equal(vv.grid.lat, vh.grid.lat)  # a copy, polarisation relabelled
    assert 40.8 < vv.grid.lat.min() < vv.grid.lat.max() < 42.8  # the Adriatic, 2021-12-23
    # VH file names are the manifest's (image number 002), not VV's
    assert s.names[("annotation", "VH")].endswith(
        "-vh-20211223t051122-20211223t051147-030148-039993-002.xml"
    )
    noise = parse_noise(s.texts[("noise", "VV")])
    assert [b.swath for b in noise.azimuth] == ["IW1", "IW2", "IW3"]  # new format, 3 sub-swaths
    assert len(parse_calibration(s.texts[("calibration", "VH")]).lines) == 27


def _check_iw(p) -> None:
    assert (p.mission, p.mode, p.polarisations) == ("S1B", "IW", ("VH", "VV"))
    assert (p.co_pol, p.cross_pol, p.pol_pair) == ("VV", "VH", ("VV", "VH"))
    assert (p.abs_orbit, p.datatake_id, p.pass_direction) == (30148, "039993", "DESCENDING")
    assert p.shape == (522, 816)
    assert p.pixel_spacing_m == pytest.approx(10.0 * 26101 / 815, rel=1e-4)
    assert [b.swath for b in p.noise("VH").azimuth] == ["IW1", "IW2", "IW3"]
    p.check_measurements()


def test_iw_product_folder_and_zip_read_alike(iw_dir, iw_zip):
    assert iw_dir.name == f"{IW_NAME}.SAFE" and iw_zip.suffix == ".zip"
    with open_product(iw_dir) as a, open_product(iw_zip) as b:
        _check_iw(a)
        _check_iw(b)
        for pol in ("VV", "VH"):
            np.testing.assert_array_equal(sigma0_blocks(a, pol, B), sigma0_blocks(b, pol, B))
        with pytest.raises(UsageError, match="no polarisation HH .*ask for VH or VV"):
            a.file("annotation", "HH")


def test_iw_cog_twin(iw_dir, tmp_path):
    """CDSE's COG twin: ``_COG`` name, ``*-cog.tiff`` / ``*-cog.xml`` files, manifest pointing
    at them — read like the original."""
    twin = tmp_path / f"{IW_NAME[:-4]}74F9_COG.SAFE"
    shutil.copytree(iw_dir, twin)
    renames = {}
    for f in sorted(twin.rglob("*")):
        if f.suffix in (".xml", ".tiff") and f.is_file():
            new = f.with_name(f.stem + "-cog" + f.suffix)
            f.rename(new)
            renames[f.name] = new.name
    man = (twin / "manifest.safe").read_text()
    for old, new in renames.items():
        man = man.replace(old, new)
    (twin / "manifest.safe").write_text(man)
    with open_product(iw_dir) as a, open_product(twin) as b:
        assert b.file("measurement", "VH").endswith("-cog.tiff")
        _check_iw(b)
        np.testing.assert_array_equal(sigma0_blocks(a, "VH", B), sigma0_blocks(b, "VH", B))


def test_iw_radiometric_round_trip(iw_dir):
    """Reader ∘ generator = identity up to speckle (4.4 looks x 64 px per 8 x 8 block ≈ 280
    looks: σ ≈ 0.26 dB) and the generator's per-sub-swath noise-model error (VH)."""
    with open_product(iw_dir) as p:
        lines, samples = p.shape
        rows, cols = block_centres(lines, 8), block_centres(samples, 8)
        for pol, median_db in (("VV", 0.25), ("VH", 0.8)):
            got = sigma0_blocks(p, pol, 8)
            want = true_sigma0(pol, rows, cols, scale=SCALE, sample=SAMPLE_IW)
            ok = np.isfinite(got) & (got > SIGMA0_FLOOR)
            assert ok.mean() > 0.9
            err = np.abs(10 * np.log10(got[ok] / want[ok]))
            assert np.median(err) < median_db, pol
        vv, vh = (np.nanmedian(sigma0_blocks(p, pol, B)) for pol in ("VV", "VH"))
    assert 10 * np.log10(vh) < 10 * np.log10(vv) - 5  # cross-pol well below co-pol


def _old_style_noise(xml: str) -> str:
    xml = re.sub(r"<noiseAzimuthVectorList.*</noiseAzimuthVectorList>\s*", "", xml, flags=re.S)
    return (
        xml.replace("noiseRangeVectorList", "noiseVectorList")
        .replace("noiseRangeVector>", "noiseVector>")
        .replace("noiseRangeLut", "noiseLut")
    )


def test_iw_old_noise_format(iw_dir, tmp_path):
    old_p = tmp_path / iw_dir.name
    shutil.copytree(iw_dir, old_p)
    for f in (old_p / "annotation/calibration").glob("noise-*.xml"):
        f.write_text(_old_style_noise(f.read_text()))
    with open_product(iw_dir) as new, open_product(old_p) as old:
        assert old.noise("VH").azimuth == () and len(new.noise("VH").azimuth) == 3
        raw = sigma0_blocks(new, "VH", B, denoise=False)
        s_old = sigma0_blocks(old, "VH", B)
        rows, cols = block_centres(new.shape[0], B), block_centres(new.shape[1], B)
        # independent reference: the range noise straight from the XML, over A² at block centres
        xml = (old_p / old.file("noise", "VH")).read_bytes()
        n_range = parse_noise(xml).range.evaluate(rows, cols)
        a2 = new.calibration("VH").evaluate(rows, cols) ** 2
    ok = np.isfinite(raw) & (s_old > SIGMA0_FLOOR)
    np.testing.assert_allclose(s_old[ok], (raw - n_range / a2)[ok], rtol=1e-4)


@pytest.mark.parametrize(
    "name",
    [
        "S1A_IW_GRDH_1SDV_20221130T014342_20221130T014446_046117_058549_BB15",
        "S1A_IW_GRDH_1SDH_20221130T014342_20221130T014446_046117_058549_BB15",
        "S1A_IW_GRDM_1SDV_20221130T014342_20221130T014446_046117_058549_BB15",
        "S1A_EW_GRDM_1SDV_20221130T014342_20221130T014446_046117_058549_BB15",
        "S1A_EW_GRDH_1SDH_20221130T014342_20221130T014446_046117_058549_BB15",
    ],
)
def test_supported_names(name):
    check_name(name)  # no error


def _edit_manifest(p: Path, old: str, new: str) -> None:
    m = p / "manifest.safe"
    text = m.read_text()
    assert old in text
    m.write_text(text.replace(old, new))


_POL = "<s1sarl1:transmitterReceiverPolarisation>{}</s1sarl1:transmitterReceiverPolarisation>"


@pytest.mark.parametrize(
    ("name", "old", "new", "words"),
    [
        (None, _POL.format("VH"), "", ["mode IW", "polarisations VV;"]),  # single-pol 1SSV
        (None, "<s1sarl1:mode>IW</s1sarl1:mode>", "<s1sarl1:mode>S1</s1sarl1:mode>", ["mode S1"]),
        (None, "<s1sarl1:productType>GRD<", "<s1sarl1:productType>SLC<", ["SLC", "mode IW"]),
        (
            "S1B_IW_GRDH_1SSH_20211223T051122_20211223T051147_030148_039993_5371.SAFE",
            None,
            None,
            ["mode IW", "polarisations HH;"],
        ),
        (
            "S1B_WV_SLC__1SSV_20211223T051122_20211223T051147_030148_039993_5371.SAFE",
            None,
            None,
            ["mode WV", "SLC"],
        ),
    ],
)
def test_iw_refusals_name_mode_and_polarisation(iw_dir, tmp_path, name, old, new, words):
    p = tmp_path / (name or iw_dir.name)
    shutil.copytree(iw_dir, p)
    if old is not None:
        _edit_manifest(p, old, new)
    before = sorted(x.name for x in tmp_path.rglob("*"))
    with pytest.raises(UsageError) as e:
        open_product(p)
    msg = str(e.value)
    for w in words:
        assert w in msg, (w, msg)
    assert "HH+HV" in msg and "VV+VH" in msg  # and says what is supported
    assert sorted(x.name for x in tmp_path.rglob("*")) == before  # nothing written


def test_iw_zip_member_missing_is_named(iw_zip, tmp_path):
    bad = tmp_path / iw_zip.name
    with zipfile.ZipFile(iw_zip) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            if "/annotation/calibration/noise-s1b-iw-grd-vh" not in info.filename:
                dst.writestr(info, src.read(info))
    with pytest.raises(UsageError, match="noise file .*noise-s1b-iw-grd-vh-.* is missing"):
        open_product(bad)
