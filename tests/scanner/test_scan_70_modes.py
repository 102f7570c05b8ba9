"""Scanning EW and IW (issue 14): a local folder of synthetic products of both modes, scanned
with a model card that accepts EW only (IW recorded as skipped before any download) and with
the default card (IW mosaicked too; a slice whose mode differs from its datatake refused and
recorded as failed). The record, summary, GeoPackage and STAC carry each scene's mode and
polarisations, and a GeoPackage written before those columns existed still takes new rows."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from scanner.record import Record
from scanner.scan.plan import plan_work
from tests.support.record_helpers import make_scene
from tests.support.scan_helpers import run_scan, scan_model

__all__ = ["scan_model"]

EW_DATATAKE = "_046117_058549_"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two EW slices of one datatake, one IW product of its own datatake, and an IW product
    renamed into the EW datatake right after its slices (a mixed strip: refused)."""
    from scanner.demo.synthetic_product import SAMPLE_IW, write_datatake

    work = tmp_path_factory.mktemp("modes")
    folder = work / "incoming"
    folder.mkdir()
    for p in write_datatake(work / "ew", slices=2, scale=1 / 16, seed=3):
        shutil.copytree(p, folder / p.name)
    [iw] = write_datatake(work / "iw", sample=SAMPLE_IW, scale=1 / 32, seed=4)
    shutil.copytree(iw, folder / iw.name)
    ew_last = sorted(folder.glob("S1A_EW_*.SAFE"))[-1].name
    stop = ew_last.split("_")[5]  # the last EW slice's stop time: the odd slice follows it
    odd = f"S1A_IW_GRDH_1SDV_{stop}_{stop[:-2]}59{EW_DATATAKE}0DD0.SAFE"
    shutil.copytree(iw, folder / odd)
    return folder


def _bbox(folder: Path) -> list[str]:
    from scanner.sources.local import LocalSource

    bounds = [s.footprint.bounds for s in LocalSource(folder).scenes()]
    w, s = min(b[0] for b in bounds) - 1, max(min(b[1] for b in bounds) - 1, -89)
    e, n = max(b[2] for b in bounds) + 1, min(max(b[3] for b in bounds) + 1, 89)
    return [f"{v:.3f}" for v in (w, s, e, n)]


def _model_with_modes(scan_model: Path, dest: Path, modes: tuple[str, ...]) -> Path:
    from polarscan.common.config import load_config
    from training.card import ModelCard, card_path, write_card

    model = dest / scan_model.name
    shutil.copy(scan_model, model)
    card = load_config(ModelCard, card_path(scan_model))
    write_card(card.model_copy(update={"modes": modes}), model)
    return model


def _args(folder, model, out, *extra):
    return ("--source", f"local:{folder}", "--bbox", *_bbox(folder), "--since", "2021-01-01",
            "--model", str(model), "--out", str(out), "--sequential", "--saliency", "none",
            *extra)  # fmt: skip


def _scenes_layer(gpkg: Path):
    import pyogrio

    return pyogrio.read_dataframe(gpkg, layer="scenes")


def test_plan_skips_unaccepted_modes_and_refuses_odd_slices():
    from dataclasses import replace

    from training.card import ModelCard

    a, b, c = make_scene(0), make_scene(1), make_scene(2)  # one EW datatake, three slices
    odd = replace(b, name=b.name.replace("_EW_GRDM_1SDH_", "_IW_GRDH_1SDV_"))
    plan = plan_work([a, odd, c], 5.0, ModelCard())
    # the odd slice left out leaves a gap: its neighbours are two strips
    assert [[s.name for s in j.scenes] for j in plan.jobs] == [[a.name], [c.name]]
    [(job, err)] = plan.refused
    assert job.scenes == (odd,) and "IW" in str(err) and "refused" in str(err)
    plan = plan_work([a, odd, c], 5.0, ModelCard(modes=("EW",)))
    assert plan.refused == [] and [s for s, _ in plan.unaccepted] == [odd]
    assert "accepts EW only" in plan.unaccepted[0][1]


def test_card_accepting_ew_only_skips_iw_before_download(folder, scan_model, tmp_path):
    model = _model_with_modes(scan_model, tmp_path, ("EW",))
    out = tmp_path / "out"
    rc, s, err = run_scan(*_args(folder, model, out))
    assert rc == 0, err
    c = s["counts"]
    assert (c["found"], c["processed"], c["failed"], c["mosaics"]) == (4, 2, 0, 1)
    assert (c["unaccepted"], c["skipped"]) == (2, 2)
    with Record.open(out, create=False) as rec:
        rows = {r.name: r for r in rec.scenes()}
    iw = [r for r in rows.values() if r.mode == "IW"]
    assert len(iw) == 2 and all(r.status == "skipped" and r.local_path is None for r in iw)
    assert all("accepts EW only" in r.reason for r in iw)
    assert {(r.mode, r.polarisations) for r in rows.values() if r.status == "processed"} == {
        ("EW", "HH+HV")
    }
    layer = _scenes_layer(out / "detections.gpkg")
    assert set(zip(layer["mode"], layer["polarisations"], strict=True)) == {("EW", "HH+HV")}
    [item_path] = (out / "stac").glob("*/*/*/*.json")
    props = json.loads(item_path.read_text())["properties"]
    assert (props["sar:instrument_mode"], props["sar:polarizations"]) == ("EW", ["HH", "HV"])
    # a rerun claims nothing: SKIPPED is final
    rc, s, err = run_scan(*_args(folder, model, out))
    assert rc == 0 and s["counts"]["mosaics"] == 0, err


def test_both_modes_scanned_odd_slice_refused_old_gpkg_appended(folder, scan_model, tmp_path):
    # --modes EW: the IW products are left out by the search (foreign), EW alone is scanned
    first = tmp_path / "first"
    rc, s, err = run_scan(*_args(folder, scan_model, first, "--modes", "EW"))
    assert rc == 0, err
    assert s["counts"]["found"] == 2 and s["skipped_by_source"] == {"foreign": 2}
    # make its GeoPackage one of the previous version: no mode / polarisations in 'scenes'
    out = tmp_path / "out"
    out.mkdir()
    gpkg = out / "detections.gpkg"
    shutil.copy(first / "detections.gpkg", gpkg)
    with sqlite3.connect(gpkg) as con:
        con.execute('ALTER TABLE scenes DROP COLUMN "mode"')
        con.execute('ALTER TABLE scenes DROP COLUMN "polarisations"')
    assert "mode" not in _scenes_layer(gpkg).columns
    # both modes (the default): the IW datatake is mosaicked, the odd slice refused
    rc, s, err = run_scan(*_args(folder, scan_model, out))
    assert rc == 1, err  # a refused slice fails the batch
    c = s["counts"]
    assert (c["found"], c["processed"], c["failed"], c["mosaics"]) == (4, 3, 1, 2)
    [failure] = s["failures"]
    assert "0DD0" in failure["scenes"][0] and failure["error"].startswith("plan: ")
    assert "differ from the other slices of its datatake" in failure["error"]
    with Record.open(out, create=False) as rec:
        rows = {r.name: r for r in rec.scenes()}
    odd = next(r for n, r in rows.items() if n.endswith("0DD0"))
    assert odd.status == "failed" and "refused" in odd.last_error and odd.attempts == 1
    assert odd.local_path is None  # refused before any download
    layer = _scenes_layer(gpkg)  # the old file took the new columns and rows
    assert set(zip(layer["mode"], layer["polarisations"], strict=True)) == {
        ("EW", "HH+HV"),
        ("IW", "VV+VH"),
    }
    items = [json.loads(p.read_text())["properties"] for p in (out / "stac").glob("*/*/*/*.json")]
    got = sorted((p["sar:instrument_mode"], tuple(p["sar:polarizations"])) for p in items)
    assert got == [("EW", ("HH", "HV")), ("IW", ("VV", "VH"))]
