"""The provider's monthly data quota: the config key, the planning rule (hand-computed), the
guard that stops a run whose bytes overrun, and a scan downloading from the loopback CDSE replay
whose budget allows one of two mosaics (the other is deferred, pending, to the next run)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import mapping

from polarscan.common.errors import UsageError
from scanner.record import Record
from scanner.record.fetches import FetchRow, next_month
from scanner.scan import quota
from scanner.scan.stages import MosaicJob
from tests.support.cdse_replay import cdse_env, product_path, serve_pages, serve_product
from tests.support.loopback import LoopbackServer
from tests.support.record_helpers import make_scene
from tests.support.scan_helpers import run_scan, scan_model

__all__ = ["scan_model"]

GB = 10**9


# --- the config key ----------------------------------------------------------------------------


def test_config_takes_a_budget_or_none_and_refuses_a_negative_one():
    from polarscan.common.config import parse_config
    from scanner.scan.config import ScanConfig

    assert ScanConfig().quota_gb_per_month == 5000.0
    assert parse_config(ScanConfig, {"quota_gb_per_month": None}).quota_gb_per_month is None
    assert parse_config(ScanConfig, {"quota_gb_per_month": 0}).quota_gb_per_month == 0
    with pytest.raises(UsageError, match="quota_gb_per_month.*greater than or equal to 0"):
        parse_config(ScanConfig, {"quota_gb_per_month": -1})
    with pytest.raises(UsageError, match="unknown key 'quota_gb_per_mnth'"):
        parse_config(ScanConfig, {"quota_gb_per_mnth": 10})


def test_the_shipped_config_sets_the_budget(repo_root):
    from polarscan.common.config import load_config
    from scanner.scan.config import ScanConfig

    assert load_config(ScanConfig, repo_root / "configs" / "scan.yaml").quota_gb_per_month == 5000


def test_only_remote_sources_count():
    assert quota.counts_bytes("cdse") and quota.counts_bytes("asf") and quota.counts_bytes("dhus")
    assert not quota.counts_bytes("demo") and not quota.counts_bytes("local:/data/s1")


# --- the planning rule -------------------------------------------------------------------------


def _jobs(n: int, size: int) -> list[MosaicJob]:
    """``n`` one-scene mosaics of ``size`` bytes each (scenes 0, 3, 6…: one datatake each)."""
    scenes = [replace(make_scene(3 * i), size=size) for i in range(n)]
    return [MosaicJob(f"m{i}", (s,)) for i, s in enumerate(scenes)]


def _spent(rec: Record, n: int, scene_id: str = "earlier") -> None:
    rec.add_fetches([FetchRow(scene_id, "cdse", "download", "download", n, datetime.now(UTC))])


def _publisher(rec: Record, tmp_path: Path, jobs, guard=None):
    from scanner.scan.config import ScanConfig
    from scanner.scan.publish import Publisher
    from scanner.scan.stages import RunContext
    from scanner.scan.summary import ScanSummary
    from training.card import ModelCard

    card = ModelCard(input_size=192, crop=128, window_px=192, pixel_spacing_m=2000.0)
    ctx = RunContext("run-1", str(tmp_path), "cdse", "m.keras", ScanConfig(source="cdse"), card)
    return Publisher(ctx, rec, ScanSummary("run-1", "cdse", "m.keras", 0.5), jobs, quota=guard)


def test_budget_1_gb_used_0_7_products_0_2_takes_exactly_one(tmp_path):
    jobs = _jobs(4, int(0.2 * GB))
    with Record.open(tmp_path) as rec:
        rec.upsert([s for j in jobs for s in j.scenes])
        ids = [s.id for j in jobs for s in j.scenes]
        assert sorted(rec.claim(ids, "run-1")) == sorted(ids)
        _spent(rec, int(0.7 * GB))
        budget = quota.plan_budget(rec, "cdse", 1.0, "download")
        assert (budget.used, budget.limit) == (int(0.7 * GB), GB)
        taken, deferred = quota.fit(jobs, budget)
        # 0.7 + 0.2 = 0.9 fits; 0.9 + 0.2 = 1.1 does not: one taken, three deferred, in order
        assert [j.mosaic_id for j in taken] == ["m0"]
        assert [j.mosaic_id for j in deferred] == ["m1", "m2", "m3"]
        pub = _publisher(rec, tmp_path, taken)
        pub.defer(deferred)
        assert pub.summary.counts.deferred == 3
        # deferred: released at once, still pending, no attempt spent; the taken one held
        assert rec.claimed() == {ids[0]: "run-1"}
        pending = {r.id: r for r in rec.pending()}
        assert set(ids) <= set(pending)
        assert all(pending[i].status == "found" and pending[i].attempts == 0 for i in ids[1:])


def test_no_budget_takes_everything_and_local_sources_have_none(tmp_path):
    jobs = _jobs(3, 10 * GB)
    with Record.open(tmp_path) as rec:
        _spent(rec, 100 * GB)
        budget = quota.plan_budget(rec, "cdse", None, "download")
        assert quota.fit(jobs, budget) == (jobs, [])
        assert quota.fit(jobs, replace(budget, limit=0)) == ([], jobs)  # 0: fetch nothing


def test_expected_bytes_in_place_use_the_measured_fraction(tmp_path):
    [job] = _jobs(1, GB)
    with Record.open(tmp_path) as rec:
        assert quota.plan_budget(rec, "cdse", 10.0, "s3").expected(job) == 0.06 * GB  # default
        rec.add_fetches([FetchRow("x", "cdse", "mosaic", "s3", 30_000_000, datetime.now(UTC),
                                  product_size=GB)])  # fmt: skip
        assert quota.plan_budget(rec, "cdse", 10.0, "s3").expected(job) == 0.03 * GB
        assert quota.plan_budget(rec, "cdse", 10.0, "download").expected(job) == GB
        unknown = MosaicJob("u", (replace(make_scene(0), size=None),))
        assert quota.plan_budget(rec, "cdse", 1, "download").expected(unknown) == quota.UNKNOWN_SIZE


def test_guard_stops_submitting_when_measured_bytes_overrun(tmp_path):
    """Planned at 0.2 GB each within 1 GB; the first mosaic really costs 0.5 GB (an estimate
    too low): the run then submits no more than what is left allows, and defers the rest."""
    jobs = _jobs(4, int(0.2 * GB))
    with Record.open(tmp_path) as rec:
        rec.upsert([s for j in jobs for s in j.scenes])
        rec.claim([s.id for j in jobs for s in j.scenes], "run-1")
        budget = quota.plan_budget(rec, "cdse", 1.0, "download")
        assert quota.fit(jobs, budget) == (jobs, [])  # 4 × 0.2 = 0.8: all planned
        guard = quota.QuotaGuard(budget, lambda month: rec.fetched_in_month(month, "cdse"))
        pub = _publisher(rec, tmp_path, jobs, guard)
        assert pub.admit(jobs[0]) and pub.admit(jobs[1])  # 0 + 0.2 + 0.2 in flight
        first = jobs[0].scenes[0]
        row = FetchRow(first.id, "cdse", "download", "download", int(0.5 * GB), datetime.now(UTC))
        pub.stage_done(jobs[0], "download", _result(jobs[0], row))
        pub.stage_done(jobs[0], "download", _result(jobs[0], row))  # the same result again
        assert rec.fetched_in_month(quota.this_month(), "cdse") == int(0.5 * GB)  # once
        # 0.5 spent + 0.2 still expected of m1 + 0.2 = 0.9: m2 fits; then m3 (1.1) does not
        assert pub.admit(jobs[2])
        assert not pub.admit(jobs[3])
        assert pub.summary.counts.deferred == 1
        assert jobs[3].scenes[0].id not in rec.claimed()


def _result(job, *rows):
    from scanner.scan.stages import StageResult

    return StageResult(job, paths=("/nonexistent",), fetched=rows)


def test_a_failed_stage_still_spends_its_bytes(tmp_path):
    [job] = _jobs(1, GB)
    with Record.open(tmp_path) as rec:
        rec.upsert(list(job.scenes))
        pub = _publisher(rec, tmp_path, [job])
        err = RuntimeError("checksum mismatch")
        err.fetched = (FetchRow(job.scenes[0].id, "cdse", "download", "download", 12345,  # type: ignore[attr-defined]
                                datetime.now(UTC)),)  # fmt: skip
        pub.failed(job, "download", err)
        assert rec.fetched_in_month(quota.this_month()) == 12345
        assert rec.get(job.scenes[0].id).status == "failed"


def test_notice_line():
    text = quota.notice(int(4.98 * GB), 5000 * GB, 12, "2026-11")
    assert text == "monthly quota: 4.98 of 5000 GB used; 12 scene(s) deferred to 2026-12"
    assert quota.notice(GB, 5000 * GB, 0, "2026-11") is None


# --- a scan downloading from the loopback CDSE replay -------------------------------------------


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> list[Path]:
    """Two one-slice EW datatakes (two mosaics) as zips, the second 4 orbits later."""
    from scanner.demo.synthetic_product import LaterOrbit, write_datatake

    d = tmp_path_factory.mktemp("quota-zips")
    first = write_datatake(d, slices=1, scale=1 / 16, seed=5, zip=True)
    later = write_datatake(d, slices=1, scale=1 / 16, seed=6, zip=True, later=LaterOrbit(4))
    return [*first, *later]


def _records(test_data: Path, zips: list[Path]) -> dict:
    from scanner.safe import open_product

    real = json.loads((test_data / "cdse-odata" / "ew_grd_page_1.json").read_text())["value"][0]
    out = []
    for z in zips:
        with open_product(z) as p:
            name, start, stop, fp = p.name, p.start, p.stop, p.footprint
        rec = copy.deepcopy(real)
        data = z.read_bytes()
        rec.update({
            "Id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "Name": f"{name}.SAFE",
            "ContentLength": len(data), "GeoFootprint": mapping(fp),
            "Checksum": [{"Value": hashlib.md5(data).hexdigest(), "Algorithm": "MD5"}],
            "ContentDate": {"Start": start.isoformat(), "End": stop.isoformat()},
        })  # fmt: skip
        out.append(rec)
    return {"value": out}


@pytest.fixture
def catalogue(products, test_data, monkeypatch):
    with LoopbackServer(max_lifetime=300) as srv:
        cdse_env(monkeypatch, srv)
        srv.add_token_endpoint()
        page = _records(test_data, products)
        serve_pages(srv, [page])
        for rec, z in zip(page["value"], products, strict=True):
            serve_product(srv, rec["Id"], z.read_bytes())
        yield srv, page["value"]


def _scan(out: Path, model: Path, budget_gb: float | None, tmp_path: Path):
    cfg = tmp_path / f"scan-{budget_gb}.yaml"
    cfg.write_text(f"quota_gb_per_month: {'null' if budget_gb is None else repr(budget_gb)}\n")
    return run_scan(
        "--source", "cdse", "--bbox", "60", "74", "110", "84", "--since", "2022-11-29",
        "--until", "2022-12-01", "--model", str(model), "--out", str(out), "--sequential",
        "--saliency", "none", "--config", str(cfg),
    )  # fmt: skip


def test_a_budget_for_one_of_two_mosaics_defers_the_other_to_the_next_run(
    catalogue, products, scan_model, tmp_path
):
    from polarscan.commands.scan import format_summary

    srv, records = catalogue
    sizes = [r["ContentLength"] for r in records]
    out = tmp_path / "out"
    rc, s, err = _scan(out, scan_model, (sizes[0] + sizes[1] / 2) / GB, tmp_path)
    assert rc == 0, err  # a deferral is by design, not a failure
    c = s["counts"]
    assert (c["found"], c["processed"], c["failed"], c["deferred"], c["mosaics"]) == (2, 1, 0, 1, 1)
    month = quota.this_month()
    assert s["quota"]["month"] == month and s["quota"]["deferred_scenes"] == 1
    [notice] = s["notices"]
    assert notice.startswith("monthly quota: 0.00 of 0.") and notice.endswith(
        f"1 scene(s) deferred to {next_month(month)}")  # fmt: skip
    assert f"NOTICE {notice}" in format_summary(s)
    assert "Notices" in (out / "report" / "index.html").read_text()  # the morning report
    assert srv.hits(product_path(records[1]["Id"])) == 0  # the deferred one: never fetched
    with Record.open(out) as rec:
        # the bytes actually received: the first product, once
        assert rec.fetched_in_month(month, "cdse") == sizes[0]
        assert rec.get(records[0]["Id"]).status == "processed"
        later = rec.get(records[1]["Id"])
        assert (later.status, later.attempts) == ("found", 0) and rec.claimed() == {}
    rc, s, err = _scan(out, scan_model, None, tmp_path)  # next month, or a bigger budget
    assert rc == 0, err
    c = s["counts"]
    assert (c["processed"], c["failed"], c["deferred"]) == (1, 0, 0) and not s["notices"]
    with Record.open(out) as rec:
        assert rec.get(records[1]["Id"]).status == "processed"
        assert rec.fetched_in_month(month, "cdse") == sizes[0] + sizes[1]
        assert [u.bytes for u in rec.usage()] == [sizes[0] + sizes[1]]


def test_what_downloads_holds_of_a_product_is_not_expected_again(tmp_path):
    """A finished download is reused and a ``.part`` resumed (polarscan.common.http.download):
    planning expects only the rest of each product, so a retry at the month's end fits."""
    jobs = _jobs(3, int(0.4 * GB))
    done, partial, none = (j.scenes[0] for j in jobs)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / f"{done.name}.SAFE.zip").write_bytes(b"")
    os.truncate(downloads / f"{done.name}.SAFE.zip", int(0.4 * GB))  # sparse: no disk used
    (downloads / f"{partial.name}.SAFE.zip.part").write_bytes(b"")
    os.truncate(downloads / f"{partial.name}.SAFE.zip.part", int(0.1 * GB))
    have = quota.on_disk(downloads, [done, partial, none])
    assert have == {done.id: int(0.4 * GB), partial.id: int(0.1 * GB)}
    with Record.open(tmp_path) as rec:
        _spent(rec, int(0.3 * GB))
        budget = quota.plan_budget(rec, "cdse", 1.0, "download", have)
        assert [budget.expected(j) for j in jobs] == [0, int(0.3 * GB), int(0.4 * GB)]
        # 0.3 used + 0 + 0.3 + 0.4 = 1.0: all three fit; without the files only the first two
        assert quota.fit(jobs, budget) == (jobs, [])
        bare = quota.plan_budget(rec, "cdse", 1.0, "download")
        assert quota.fit(jobs, bare) == (jobs[:1], jobs[1:])
        in_place = quota.plan_budget(rec, "cdse", 1.0, "s3", have)  # reads in place: no copy
        assert in_place.expected(jobs[0]) == round(0.4 * GB * 0.06)
    assert quota.on_disk(tmp_path / "absent", [done]) == {}
