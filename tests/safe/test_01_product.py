"""The SAFE reader: metadata of the real sample, synthetic products as folder and zip, bad input."""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from polarscan.common.errors import UsageError
from scanner.safe import GeolocationGrid, Product, open_product
from tests.support.products import copy_product, make_product

SAMPLE_NAME = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"


@pytest.fixture(scope="module")
def sample(repo_root: Path) -> Path:
    return repo_root / "scanner" / "demo" / "sample" / f"{SAMPLE_NAME}.SAFE"


@pytest.fixture(scope="module")
def product_dir() -> Path:
    return make_product(seed=0)


@pytest.fixture(scope="module")
def product_zip() -> Path:
    return make_product(seed=0, zip=True)


def test_real_sample_metadata(sample: Path):
    with open_product(sample, require_measurement=False) as p:
        assert isinstance(p, Product)
        assert p.name == SAMPLE_NAME
        assert (p.mission, p.mode, p.polarisations) == ("S1A", "EW", ("HH", "HV"))
        assert p.start == datetime(2022, 11, 30, 1, 43, 42, 546629, tzinfo=UTC)
        assert p.stop == datetime(2022, 11, 30, 1, 44, 46, 839082, tzinfo=UTC)
        assert (p.abs_orbit, p.datatake_id) == (46117, "058549")
        assert p.pass_direction == "DESCENDING"
        assert p.ipf_version == "003.52"
        assert p.shape == (10708, 10487)
        assert (p.line_spacing_m, p.pixel_spacing_m) == (40.0, 40.0)
        g = p.geolocation_grid()
        assert isinstance(g, GeolocationGrid)
        assert g.lat.shape == g.lon.shape == g.incidence.shape == (len(g.line), len(g.pixel))
        assert (g.line[0], g.line[-1], g.pixel[0], g.pixel[-1]) == (0, 10707, 0, 10486)
        assert g.lat[0, 0] == pytest.approx(80.11403129619849)
        assert g.lon[0, 0] == pytest.approx(102.7865159537966)
        assert 18 < g.incidence.min() < g.incidence.max() < 48
        fp = p.footprint
        assert fp.is_valid
        lon0, lat0, lon1, lat1 = fp.bounds  # manifest footprint: 76.88–81.97°N, 75.35–102.79°E
        assert (lat0, lat1) == (pytest.approx(76.879, abs=0.01), pytest.approx(81.972, abs=0.01))
        assert (lon0, lon1) == (pytest.approx(75.348, abs=0.01), pytest.approx(102.79, abs=0.01))


def test_sample_without_measurement_refused_by_default(sample: Path):
    with pytest.raises(UsageError, match=r"measurement/s1a-ew-grd-hh-.*001\.tiff is missing") as e:
        open_product(sample)
    assert SAMPLE_NAME in str(e.value)
    assert e.value.exit_code == 2


def test_folder_and_zip_read_the_same_pixels(product_dir: Path, product_zip: Path):
    win = Window(10, 20, 100, 50)
    with open_product(product_dir) as a, open_product(product_zip) as b:
        assert a.name == b.name == SAMPLE_NAME
        assert a.shape == b.shape == (669, 655)
        for pol in ("HH", "HV"):
            da, db = a.read_dn(pol, win), b.read_dn(pol, win)
            assert da.dtype == np.uint16 and da.shape == (50, 100)
            np.testing.assert_array_equal(da, db)
            assert da.max() > 0


def test_zip_is_read_in_place(product_zip: Path, tmp_path: Path):
    with open_product(product_zip) as p:
        assert p._c.raster_path(p.file("measurement", "HH")).startswith("/vsizip/")
        p.read_dn("HV", Window(0, 0, 10, 10))
    assert list(tmp_path.iterdir()) == []  # nothing extracted anywhere we own


def test_case_insensitive_mission_prefix(product_dir: Path, tmp_path: Path):
    p = copy_product(product_dir, tmp_path)
    for f in list((p / "measurement").iterdir()) + list((p / "annotation").glob("*.xml")):
        f.rename(f.with_name(f.name.replace("s1a-", "S1A-")))
    with open_product(p) as prod:
        assert prod.file("annotation", "HV").startswith("annotation/S1A-ew-grd-hv")
        assert prod.read_dn("HH", Window(0, 0, 4, 4)).shape == (4, 4)


# --- bad input ------------------------------------------------------------------------------


def _edit_manifest(product: Path, old: str, new: str) -> None:
    m = product / "manifest.safe"
    text = m.read_text()
    assert old in text
    m.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (
            "S1A_IW_GRDH_1SSV_20221130T014342_20221130T014446_046117_058549_BB15.SAFE",
            ["IW", "polarisations VV;"],
        ),
        (
            "S1A_WV_SLC__1SSV_20221130T014342_20221130T014446_046117_058549_BB15.SAFE",
            ["WV", "SLC"],
        ),
        (
            "S1A_IW_SLC__1SDV_20221130T014342_20221130T014446_046117_058549_BB15.SAFE",
            ["IW", "SLC", "VV+VH"],
        ),
        (
            "S1A_S6_GRDH_1SDV_20221130T014342_20221130T014446_046117_058549_BB15.SAFE",
            ["S6", "VV+VH"],
        ),
        (
            "S1B_S3_GRDH_1SDH_20221130T014342_20221130T014446_046117_058549_BB15.SAFE",
            ["S3", "HH+HV"],
        ),
        ("S1A_EW_GRDM_1SSH_20221130T014342_20221130T014446_046117_058549_BB15.SAFE", ["EW", "HH;"]),
        (
            "S1A_EW_GRDM_1SSV_20221130T014342_20221130T014446_046117_058549_BB15.SAFE",
            ["EW", "VV;"],
        ),
        ("S1A_EW_SLC__1SDH_20221130T014342_20221130T014446_046117_058549_BB15.SAFE", ["SLC"]),
    ],
)
def test_wrong_mode_or_polarisation_by_name(product_dir, tmp_path, name, words):
    p = copy_product(product_dir, tmp_path, name)
    with pytest.raises(UsageError) as e:
        open_product(p)
    msg = str(e.value)
    assert name.removesuffix(".SAFE") in msg
    for w in words:
        assert w in msg
    assert "HH+HV" in msg and "VV+VH" in msg and "EW or IW" in msg  # says what is supported


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("<s1sarl1:mode>EW</s1sarl1:mode>", "<s1sarl1:mode>WV</s1sarl1:mode>", ["mode WV"]),
        ("<s1sarl1:mode>EW</s1sarl1:mode>", "<s1sarl1:mode>S3</s1sarl1:mode>", ["mode S3"]),
        (
            "<s1sarl1:transmitterReceiverPolarisation>HV</s1sarl1:transmitterReceiverPolarisation>",
            "",
            ["polarisations HH;"],
        ),
        (
            "<s1sarl1:transmitterReceiverPolarisation>HH</s1sarl1:transmitterReceiverPolarisation>\n"
            "            <s1sarl1:transmitterReceiverPolarisation>HV</s1sarl1:transmitterReceiverPolarisation>",
            "<s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>\n"
            "            <s1sarl1:transmitterReceiverPolarisation>HV</s1sarl1:transmitterReceiverPolarisation>",
            ["polarisations VV+HV"],
        ),
    ],
)
def test_wrong_mode_or_polarisation_by_manifest(product_dir, tmp_path, old, new, words):
    p = copy_product(product_dir, tmp_path)
    _edit_manifest(p, old, new)
    with pytest.raises(UsageError) as e:
        open_product(p)
    for w in words:
        assert w in str(e.value)
    assert SAMPLE_NAME in str(e.value)


@pytest.mark.parametrize(
    ("remove", "kind"),
    [
        (
            "annotation/s1a-ew-grd-hv-20221130t014342-20221130t014446-046117-058549-002.xml",
            "annotation",
        ),
        (
            "annotation/calibration/noise-s1a-ew-grd-hh-20221130t014342-20221130t014446-046117-058549-001.xml",
            "noise",
        ),
        (
            "measurement/s1a-ew-grd-hv-20221130t014342-20221130t014446-046117-058549-002.tiff",
            "measurement",
        ),
        ("manifest.safe", "manifest"),
    ],
)
def test_missing_file_names_product_and_file(product_dir, tmp_path, remove, kind):
    p = copy_product(product_dir, tmp_path)
    (p / remove).unlink()
    with pytest.raises(UsageError) as e:
        open_product(p)
    msg = str(e.value)
    assert SAMPLE_NAME in msg and remove in msg and "missing" in msg
    assert e.value.exit_code == 2


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_tiff_size_disagrees_with_annotation(product_dir, tmp_path):
    import rasterio

    p = copy_product(product_dir, tmp_path)
    tif = p / "measurement/s1a-ew-grd-hv-20221130t014342-20221130t014446-046117-058549-002.tiff"
    tif.unlink()
    with rasterio.open(
        tif, "w", driver="GTiff", width=600, height=669, count=1, dtype="uint16"
    ) as d:
        d.write(np.ones((1, 669, 600), np.uint16))
    with pytest.raises(
        UsageError, match=r"is 600 x 669 pixels but the annotation says 655 x 669"
    ) as e:
        open_product(p)
    assert tif.name in str(e.value) and SAMPLE_NAME in str(e.value)


def test_truncated_zip(product_zip, tmp_path):
    bad = tmp_path / product_zip.name
    data = product_zip.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="truncated or corrupt") as e:
        open_product(bad)
    assert SAMPLE_NAME in str(e.value) and e.value.exit_code == 2


def test_corrupt_zip_member(product_zip, tmp_path):
    bad = tmp_path / product_zip.name
    shutil.copy(product_zip, bad)
    with zipfile.ZipFile(bad) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("manifest.safe"))
    raw = bytearray(bad.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 100, start + 140):  # garble compressed bytes of the manifest
        raw[k] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(UsageError, match="corrupt") as e:
        open_product(bad)
    assert "manifest.safe" in str(e.value)


def test_not_a_product(tmp_path):
    with pytest.raises(UsageError, match="product not found"):
        open_product(tmp_path / "nothing.SAFE")
    (tmp_path / "empty.SAFE").mkdir()
    with pytest.raises(UsageError, match="manifest.safe is missing"):
        open_product(tmp_path / "empty.SAFE")


def test_truncated_tiff_fails_on_read_naming_the_file(product_dir, tmp_path):
    from scanner.safe.radiometry import sigma0_blocks

    p = copy_product(product_dir, tmp_path)
    tif = p / "measurement/s1a-ew-grd-hh-20221130t014342-20221130t014446-046117-058549-001.tiff"
    data = tif.read_bytes()
    tif.write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError) as e, open_product(p) as prod:
        sigma0_blocks(prod, "HH", 12)
    assert tif.name in str(e.value) and SAMPLE_NAME in str(e.value)


def test_cdse_style_zip_name(product_zip, tmp_path):
    z = tmp_path / f"{SAMPLE_NAME}.SAFE.zip"
    shutil.copy(product_zip, z)
    with open_product(z) as p:
        assert p.name == SAMPLE_NAME
        assert p.read_dn("HH", Window(0, 0, 8, 8)).shape == (8, 8)


def test_footprint_across_antimeridian(product_dir, tmp_path):
    """Move the tie points 100° east so the swath straddles 180°: the ring stays simple."""
    p = copy_product(product_dir, tmp_path)
    with open_product(product_dir) as orig:
        area = orig.footprint.area
    for f in (p / "annotation").glob("*.xml"):
        text = f.read_text()
        for lon in set(re.findall(r"<longitude>([^<]+)</longitude>", text)):
            new = (float(lon) + 100.0 + 180.0) % 360.0 - 180.0
            text = text.replace(f"<longitude>{lon}</longitude>", f"<longitude>{new!r}</longitude>")
        f.write_text(text)
    with open_product(p) as prod:
        fp = prod.footprint
        assert np.ptp(prod.geolocation_grid().lon) > 180
    assert fp.is_valid and fp.bounds[0] > 170 and fp.bounds[2] > 180
    assert fp.area == pytest.approx(area, rel=1e-6)  # the same swath, not a band round the globe


def test_annotations_of_the_two_polarisations_disagree(product_dir, tmp_path):
    p = copy_product(product_dir, tmp_path)
    f = next((p / "annotation").glob("*-hv-*.xml"))
    f.write_text(f.read_text().replace("<numberOfSamples>655<", "<numberOfSamples>654<"))
    with pytest.raises(UsageError, match="HV annotation says 654 x 669") as e:
        open_product(p)
    assert SAMPLE_NAME in str(e.value)


@pytest.mark.parametrize("kind", ["annotation/s1a-ew-grd-hh", "measurement/s1a-ew-grd-hv"])
def test_zip_missing_member_names_product_and_file(product_zip, tmp_path, kind):
    """The zip path of the missing-file check: the member is absent from an intact archive."""
    bad = tmp_path / product_zip.name
    with zipfile.ZipFile(product_zip) as src, zipfile.ZipFile(bad, "w") as dst:
        dropped = [i.filename for i in src.infolist() if f"/{kind}-" in i.filename]
        assert len(dropped) == 1
        for info in src.infolist():
            if info.filename not in dropped:
                dst.writestr(info, src.read(info))
    with pytest.raises(UsageError) as e:
        open_product(bad)
    msg = str(e.value)
    assert SAMPLE_NAME in msg and "missing" in msg and e.value.exit_code == 2
    assert dropped[0].split("/", 1)[1] in msg  # the file, relative to the SAFE root
