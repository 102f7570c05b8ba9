"""The pure parts of in-place access: settings from the environment, S3Path → key checks,
the twin preference, and the SigV4 signature against botocore's (an independent reference)."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from shapely.geometry import box

from polarscan.common.errors import ProcessingError, UsageError
from scanner.access.eodata import (
    check_ready,
    configure_access,
    object_key,
    prefer_twin,
    wants_cog,
)
from scanner.access.s3 import S3Settings, sign_v4
from scanner.sources.base import Scene

NAME = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"
KEY = f"Sentinel-1/SAR/EW_GRDM_1S/2022/11/30/{NAME}.SAFE"


def _clear(monkeypatch):
    for v in ("CDSE_S3_ACCESS_KEY", "CDSE_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID",
              "AWS_SECRET_ACCESS_KEY", "CDSE_S3_ENDPOINT"):  # fmt: skip
        monkeypatch.delenv(v, raising=False)


def test_missing_keys_are_a_usage_error_naming_the_variables(monkeypatch):
    _clear(monkeypatch)
    with pytest.raises(UsageError) as e:
        check_ready("s3")
    assert e.value.key == "access" and "CDSE_S3_ACCESS_KEY" in str(e.value)
    assert "AWS_ACCESS_KEY_ID" in str(e.value)


def test_keys_from_either_pair_and_never_in_repr(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    s = S3Settings.from_env()
    assert (s.endpoint, s.bucket, s.access_key) == (
        "https://eodata.dataspace.copernicus.eu",
        "eodata",
        "AKIDEXAMPLE",
    )
    assert "very-secret" not in repr(s) and "very-secret" not in str(s.gdal_options())
    monkeypatch.setenv("CDSE_S3_ENDPOINT", "ftp://example.org")
    with pytest.raises(UsageError, match="CDSE_S3_ENDPOINT"):
        S3Settings.from_env()


def test_absent_mount_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CDSE_EODATA_MOUNT", str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match="CDSE_EODATA_MOUNT") as e:
        check_ready("mount")
    assert e.value.key == "access"
    (tmp_path / "m" / "Sentinel-1").mkdir(parents=True)
    monkeypatch.setenv("CDSE_EODATA_MOUNT", str(tmp_path / "m"))
    check_ready("mount")


def test_other_sources_cannot_read_in_place():
    from scanner.sources.local import LocalSource

    with pytest.raises(UsageError, match="cdse") as e:
        configure_access(LocalSource.__new__(LocalSource), "s3")
    assert e.value.key == "access"
    with pytest.raises(UsageError, match="download, s3, mount"):
        configure_access(object(), "ftp")


def test_object_key_of_a_good_s3path():
    assert object_key(f"/eodata/{KEY}", f"{NAME}.SAFE") == KEY
    cog = KEY.replace("EW_GRDM_1S/", "EW_GRDM_1S-COG/").replace("BB15", "74F9_COG")
    assert object_key(f"/eodata/{cog}", f"{NAME[:-4]}74F9_COG.SAFE") == cog


@pytest.mark.parametrize("path", [
    f"/eodata/Sentinel-1/../../etc/{NAME}.SAFE",
    f"/other/{KEY}",
    f"/eodata/Sentinel-2/MSI/{NAME}.SAFE",
    f"/eodata/Sentinel-1/SAR/./{NAME}.SAFE",
    f"/eodata/Sentinel-1//SAR/{NAME}.SAFE",
    f"/eodata/Sentinel-1/SAR/x?y/{NAME}.SAFE",
    "",
    None,
])  # fmt: skip
def test_object_key_refuses_paths_leaving_the_tree(path):
    with pytest.raises(ProcessingError, match="S3Path"):
        object_key(path, NAME)


def test_object_key_refuses_another_products_name():
    other = KEY.replace("BB15", "AAAA")
    with pytest.raises(ProcessingError, match="not the record's product"):
        object_key(f"/eodata/{other}", NAME)


def _scene(cog: bool) -> Scene:
    t = datetime(2022, 11, 30, tzinfo=UTC)
    name = f"{NAME[:-4]}74F9_COG.SAFE" if cog else f"{NAME}.SAFE"
    return Scene("id", NAME, "cdse", t, t, box(0, 0, 1, 1),
                 attrs={"cog": cog, "s3_path": f"/eodata/x/{name}", "product_name": name})  # fmt: skip


@pytest.mark.parametrize(("access", "twin", "cog"), [
    ("download", "auto", False), ("s3", "auto", True), ("mount", "auto", True),
    ("s3", "original", False), ("download", "cog", True),
])  # fmt: skip
def test_twin_preference(access, twin, cog):
    assert wants_cog(access, twin) is cog
    for a, b in ((_scene(True), _scene(False)), (_scene(False), _scene(True))):
        kept = prefer_twin(a, b, wants_cog(access, twin))
        assert kept.attrs["cog"] is cog
        assert kept.attrs["alt_product_name"].endswith("_COG.SAFE") is (not cog)


def test_sigv4_matches_botocore():
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    s = S3Settings("http://127.0.0.1:9000", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "eodata",
                   "default")  # fmt: skip
    now = datetime(2024, 6, 4, 12, 30, 0, tzinfo=UTC)
    url = ("http://127.0.0.1:9000/eodata/?list-type=2&max-keys=1000"
           "&prefix=Sentinel-1%2FSAR%2FEW_GRDM_1S%2F2024%2F")  # fmt: skip
    for u in (url, f"http://127.0.0.1:9000/eodata/{KEY}/manifest.safe"):
        ours = sign_v4("GET", u, s, now=now)
        req = AWSRequest("GET", u, headers={"x-amz-content-sha256": ours["x-amz-content-sha256"]})
        auth = S3SigV4Auth(Credentials(s.access_key, s.secret_key), "s3", "default")
        with mock.patch("botocore.auth.get_current_datetime", return_value=now):
            auth.add_auth(req)
        assert ours["Authorization"] == req.headers["Authorization"]
