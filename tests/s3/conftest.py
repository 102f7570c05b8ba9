"""Fixtures of the S3 tests: moto's S3 server in its own process on 127.0.0.1, synthetic
products (an original SAFE and its COG twin, speckled) uploaded under real ``S3Path``-style
keys, and OData records (replayed by a loopback server) pointing at them."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.s3server import S3Server

DAY = "2022/11/30"
LOOKS = 4.0  # speckle of the synthetic products (equivalent number of looks)


@dataclass(frozen=True)
class Uploaded:
    original: Path  # local SAFE folders, as uploaded
    twin: Path
    average_twin: Path  # a twin with AVERAGE overviews (must fail the overview check)
    original_key: str
    twin_key: str
    average_key: str
    twin_bytes: int
    original_bytes: int


def key_of(ptype: str, safe: Path) -> str:
    return f"Sentinel-1/SAR/{ptype}/{DAY}/{safe.name}"


@pytest.fixture(scope="module")
def s3():
    with S3Server(max_lifetime=600) as server:
        yield server


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> tuple[Path, Path, Path]:
    from scanner.demo.cog_twin import write_cog_twin
    from scanner.demo.synthetic_product import write_product

    work = tmp_path_factory.mktemp("s3products")
    original = write_product(work / "orig", scale=1 / 8, looks=LOOKS, seed=3)
    twin = write_cog_twin(original, work / "cog", blocksize=256)
    average = write_cog_twin(original, work / "avg", resampling="AVERAGE", blocksize=256)
    return original, twin, average


@pytest.fixture(scope="module")
def uploaded(s3, products) -> Uploaded:
    original, twin, average = products
    ok, tk = key_of("EW_GRDM_1S", original), key_of("EW_GRDM_1S-COG", twin)
    ak = key_of("EW_GRDM_1S-COG", average).replace(DAY, "2022/12/01")
    ob, tb = s3.upload_tree(original, ok), s3.upload_tree(twin, tk)
    s3.upload_tree(average, ak)
    return Uploaded(original, twin, average, ok, tk, ak, tb, ob)


@pytest.fixture
def s3_env(s3, monkeypatch):
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    s3.set_faults([])
    yield s3
    s3.set_faults([])


def odata_records(test_data: Path, up: Uploaded) -> dict:
    """One page of OData records for the original and its twin (from a real record)."""
    page = json.loads((test_data / "cdse-odata" / "ew_grd_page_1.json").read_text())
    real = page["value"][0]
    out = []
    for safe, key, ptype in ((up.original, up.original_key, "EW_GRDM_1S"),
                             (up.twin, up.twin_key, "EW_GRDM_1S-COG")):  # fmt: skip
        rec = copy.deepcopy(real)
        rec["Id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
        rec["Name"] = safe.name
        rec["S3Path"] = f"/eodata/{key}"
        for att in rec["Attributes"]:
            if att["Name"] == "productType":
                att["Value"] = ptype
        out.append(rec)
    return {"value": out}
