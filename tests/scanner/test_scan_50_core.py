"""The scan core's own contracts: the default LocalCluster path end to end, what the record
learns between stages, skip counts in the summary, bounded chains in flight, summary merging."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.scan_helpers import run_scan, scan_model

__all__ = ["scan_model"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A good datatake, a corrupt copy of its second slice under another datatake, and a file
    whose name is no Sentinel-1 product name (the local source must count it, not drop it)."""
    from scanner.demo.synthetic_product import write_datatake
    from tests.scanner.test_scan_30_failures import _corrupt_zip

    work = tmp_path_factory.mktemp("core")
    good, other = write_datatake(work / "gen", slices=2, scale=1 / 16, seed=7)
    folder = work / "incoming"
    folder.mkdir()
    shutil.copytree(good, folder / good.name)
    _corrupt_zip(other, folder)
    (folder / f"{good.name.removesuffix('.SAFE')} (1).zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return folder


def test_default_local_cluster_scan_records_downloads_and_skips(folder, scan_model, tmp_path):
    from scanner.record import Record, SceneStatus

    out = tmp_path / "out"
    rc, s, err = run_scan(
        "--source", f"local:{folder}", "--bbox", "60", "70", "110", "83",
        "--since", "2022-11-01", "--model", str(scan_model), "--out", str(out),
        "--workers", "1", "--saliency", "none",
    )  # fmt: skip
    assert rc == 1, err  # the corrupt datatake fails, the good one is done
    assert s["cluster"]["mode"] == "local-cluster" and s["cluster"]["workers"] == 1
    assert (s["counts"]["processed"], s["counts"]["failed"]) == (1, 1)
    # the odd file was counted by the source and reaches the summary
    assert sum(s["skipped_by_source"].values()) >= 1, s["skipped_by_source"]
    with Record.open(out) as rec:
        [bad] = rec.scenes(status=SceneStatus.FAILED)
        [ok] = rec.scenes(status="processed")
        runs = rec.runs()
    # the download stage's mark survives the later failure: the record says where it lies
    assert bad.local_path and Path(bad.local_path).name.endswith(".zip")
    assert Path(ok.local_path).exists()
    assert runs[0]["status"] == "partial" and runs[0]["counts"]["failed"] == 1
    # the run's placement names the worker process that ran each stage
    [placement] = [p for m, p in s["cluster"]["placement"].items() if "058549" in m]
    assert set(placement) == {"download", "mosaic", "inference", "saliency"}


def test_runner_keeps_at_most_max_in_flight_chains(tmp_path):
    """With max_in_flight=1 on two worker processes, chains run one after another."""
    from scanner.scan.runner import ClusterSpec, Runner, Stage
    from tests.support.scan_stages import record_interval

    done = []
    with Runner(ClusterSpec(workers=2, max_in_flight=1)) as runner:
        runner.run(
            [1, 2, 3],
            lambda job: job,
            [Stage("work", record_interval)],
            str(tmp_path),
            key=lambda job: f"job{job}",
            on_done=lambda job, res: done.append(job),
            on_failed=lambda job, stage, err: pytest.fail(f"{stage}: {err}"),
            progress=False,
        )
    assert done == [1, 2, 3]  # submitted, and so finished, in order
    spans = sorted(tuple(map(float, p.read_text().split())) for p in tmp_path.glob("*.txt"))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 1e-3, f"chains overlapped: {spans}"


def test_runner_reports_intermediate_stages_in_both_modes(tmp_path):
    from scanner.scan.runner import ClusterSpec, Runner, Stage
    from tests.support.scan_stages import add

    for sequential in (True, False):
        seen = []
        with Runner(ClusterSpec(sequential=sequential, workers=1)) as runner:
            runner.run(
                [1, 2],
                lambda job: job,
                [Stage("a", add), Stage("b", add)],
                10,
                key=lambda job: f"j{job}-{sequential}",
                on_done=lambda job, res, seen=seen: seen.append((job, "done", res)),
                on_failed=lambda job, stage, err: pytest.fail(f"{stage}: {err}"),
                on_stage=lambda job, name, res, seen=seen: seen.append((job, name, res)),
                progress=False,
            )
        assert sorted(seen) == [(1, "a", 11), (1, "done", 21), (2, "a", 12), (2, "done", 22)]


def test_summary_merge_and_json():
    from scanner.scan.summary import Counts, Detection, Failure, ScanSummary

    a = ScanSummary("r1", "demo", "m.keras", 0.5, counts=Counts(found=2, mosaics=1))
    a = a.add_mosaic("m1", 2, 10, [Detection("m1", "w1", 0.9, 10.0, 75.0)], "/o/m1",
                     {"inference": "h:1"}, {"inference": 1.5})  # fmt: skip
    b = ScanSummary("r2", "demo", "m.keras", 0.5, counts=Counts(found=1, mosaics=1))
    b = b.add_failure(Failure("m2", ("s3",), "mosaic: boom"))
    b = b.add_mosaic("m3", 0, 4, [Detection("m3", "w7", 0.95, 11.0, 76.0)], "/o/m3", {},
                     {"inference": 0.5})  # fmt: skip
    m = a.merge(b)
    assert m.counts == Counts(found=3, processed=2, failed=1, mosaics=2, windows=14, detections=2)
    assert [d.probability for d in m.top_detections] == [0.95, 0.9]
    assert m.timings == {"inference": 2.0} and m.status == "partial" and a.status == "ok"
    d = json.loads(json.dumps(m.to_dict(), default=str))
    assert d["counts"]["failed"] == 1 and d["failures"][0]["scenes"] == ["s3"]
    assert d["outputs"]["mosaics"] == ["/o/m1", "/o/m3"] and d["run_id"] == "r1"
    assert isinstance(m.to_dict()["started"], type(None) | datetime)
