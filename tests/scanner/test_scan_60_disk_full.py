"""A full disk while a scan writes: the file-size limit (``RLIMIT_FSIZE``, set in a real
subprocess with ``preexec_fn``) makes the kernel refuse writes past it with EFBIG, as a full
disk refuses them with ENOSPC. Whichever file hits it first — the record, the mosaic COG, a
saliency COG, the GeoPackage — the scan exits 3 with a message naming the limit and what to do;
the scenes are recorded failed without spending an attempt (where the record can still be
written), earlier outputs are intact, no temporary file is left, and a rerun without the limit
completes the job.

The limits are placed between the sizes a reference run measures, so each case hits the file
it names. The GeoPackage case and the writers' own cases run by default, the others are slow.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.scan_helpers import demo_cache, layer_counts, run_scan, scan_model

__all__ = ["demo_cache", "scan_model"]
REPO = Path(__file__).resolve().parents[2]
KIB = 1024
#: what atomic_path and the GeoPackage copy-on-write (creating layers) name their temporaries
LEFTOVER = re.compile(r"\.[0-9a-f]{8}\.(tmp|old)")
#: IG on every window at 4 steps: an IG COG bigger than the RGB mosaic, quickly
IG_CONFIG = (
    "saliency:\n  methods: [gradcam, ig]\n  ig_steps: 4\n  weight: none\n  min_probability: 0.0\n"
)


def _limited(limit: int):
    def set_limit() -> None:  # runs in the child, before it executes python
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return set_limit


def scan_limited(limit: int, *args: str) -> subprocess.CompletedProcess:
    """``cli.py -q scan …`` in a subprocess whose files cannot grow past ``limit`` bytes."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "cli.py", "-q", "scan", *args],
        cwd=REPO,
        env=env,
        preexec_fn=_limited(limit),
        capture_output=True,
        text=True,
        timeout=600,
    )


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if LEFTOVER.search(p.name) or p.name.endswith("-journal")]


def sizes(out: Path) -> dict[str, list[int]]:
    """Bytes of the files of a finished scan, by kind (rgb, ig, gradcam, probability: one per
    mosaic; gpkg, record)."""
    found: dict[str, list[int]] = {}
    for p in out.rglob("*"):
        m = re.search(r"_(rgb|ig|gradcam|probability)\.tif$", p.name)
        if m:
            found.setdefault(m[1], []).append(p.stat().st_size)
    found["gpkg"] = [(out / "detections.gpkg").stat().st_size]
    found["record"] = [(out / "record.sqlite").stat().st_size]
    return found


def cogs(size: dict[str, list[int]]) -> int:
    """The biggest COG of a run."""
    return max(max(v) for k, v in size.items() if k in ("rgb", "ig", "gradcam", "probability"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_failed_cleanly(
    out: Path, proc: subprocess.CompletedProcess, stage: str, left: tuple[str, ...] = ()
) -> None:
    """Exit 3 naming the limit; the first mosaic's scenes failed at ``stage`` with no attempt
    spent, none processed (the run stops: every later write would fail too); run closed,
    claims and lock released; no temporary file left but those named in ``left``."""
    from scanner.record import Record

    assert proc.returncode == 3, proc.stderr
    assert "file-size limit" in proc.stderr and "ulimit -f" in proc.stderr, proc.stderr
    assert "rerun" in proc.stderr
    with Record.open(out) as rec:
        failed = rec.scenes(status="failed")
        assert failed and rec.counts()["processed"] == 0, rec.counts()
        for row in failed:
            assert row.attempts == 0  # the machine's fault, not the scene's
            assert row.last_error.startswith(f"{stage}:") and "file-size limit" in row.last_error
        assert rec.runs(limit=1)[0]["status"] == "failed"
        assert rec.claimed() == {} and rec.lock_holder() is None
    assert {p.name for p in leftovers(out)} <= set(left)


def rerun_completes(out: Path, *args: str) -> dict:
    from scanner.record import Record

    rc, s, err = run_scan(*args, "--out", str(out))
    assert rc == 0, err
    assert s["counts"]["processed"] >= 2 and s["counts"]["failed"] == 0
    with Record.open(out) as rec:
        assert rec.counts()["processed"] == len(rec.scenes())  # every scene done
    assert leftovers(out) == []
    return s


@pytest.fixture(scope="module")
def common(scan_model, demo_cache) -> tuple[str, ...]:
    return ("--source", "demo", "--model", str(scan_model), "--sequential")


@pytest.fixture(scope="module")
def reference(common, tmp_path_factory) -> dict[str, list[int]]:
    """File sizes of an uninterrupted scan with the default saliency (generates the demo data
    outside any limit)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    rc, _, err = run_scan(*common, "--out", str(out))
    assert rc == 0, err
    return sizes(out)


def test_writers_under_a_file_size_limit(tmp_path):
    """The record, a COG and the GeoPackage copy-on-write, each past a 96 KiB limit in a fresh
    subprocess: DiskFullError (exit 3) naming the limit, the previous file intact, no temporary
    left. (The limit lets an empty record be created: 17 pages of 4 KiB since the fetches
    table, and as much write-ahead log.)"""
    script = textwrap.dedent(
        """
        import json, resource, sys
        from pathlib import Path
        import numpy as np
        from affine import Affine
        from polarscan.common.errors import DiskFullError
        from scanner.cog import write_cog
        from scanner.outputs.gpkg_tx import copy_on_write, writer_lock
        from scanner.record import Record

        folder = Path(sys.argv[1])
        kw = dict(transform=Affine(2000, 0, 0, 0, -2000, 0), crs="EPSG:3413")
        write_cog(folder / "m.tif", np.zeros((3, 64, 64), np.uint8), **kw)  # the previous file
        (folder / "d.gpkg").write_bytes(b"previous")
        resource.setrlimit(resource.RLIMIT_FSIZE, (96 * 1024, resource.RLIM_INFINITY))
        got = {}
        noise = np.random.default_rng(0).integers(0, 255, (3, 400, 400), dtype=np.uint8)
        try:
            write_cog(folder / "m.tif", noise, **kw)
        except DiskFullError as err:
            got["cog"] = str(err)
        try:
            with writer_lock(folder / "d.gpkg"), copy_on_write(folder / "d.gpkg") as work:
                work.write_bytes(b"x" * 100_000)
        except DiskFullError as err:
            got["gpkg"] = str(err)
        rec = Record.open(folder)
        try:
            rec.start_run("r1", {"blob": "y" * 200_000})
        except DiskFullError as err:
            got["record"] = str(err)
        print(json.dumps(got))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    import json

    got = json.loads(proc.stdout)
    assert set(got) == {"cog", "gpkg", "record"}, got
    for message in got.values():
        assert "file-size limit of 96 KiB" in message and "ulimit -f" in message
    assert "m.tif" in got["cog"] and "d.gpkg" in got["gpkg"] and "record.sqlite" in got["record"]
    import rasterio

    with rasterio.open(tmp_path / "m.tif") as src:  # the previous COG, whole
        assert src.read().max() == 0
    assert (tmp_path / "d.gpkg").read_bytes() == b"previous"
    assert leftovers(tmp_path) == []
    from scanner.record import Record

    with Record.open(tmp_path) as rec:  # without the limit: a valid record, r1 rolled back
        assert rec.runs() == []
        rec.start_run("r2", {"blob": "y" * 200_000})
        assert [r["run_id"] for r in rec.runs()] == ["r2"]


def test_geopackage_past_the_limit_keeps_the_previous_file(common, tmp_path):
    """A second run that must write past the limit into a GeoPackage bigger than it: the
    previous file is untouched, the scenes are failed without spending an attempt, and a rerun redoes them."""
    from scanner.record import Record

    out = tmp_path / "out"
    rc, s, err = run_scan(*common, "--out", str(out))
    assert rc == 0, err
    size = sizes(out)  # the limit lies between the biggest COG and the GeoPackage
    limit = (cogs(size) + size["gpkg"][0]) // 2
    assert cogs(size) + 16 * KIB < limit < size["gpkg"][0] - 16 * KIB, size
    windows = layer_counts(out / "detections.gpkg")["windows"]
    with Record.open(out) as rec:
        rec.requeue(status="processed")
    before = sha(out / "detections.gpkg")

    proc = scan_limited(limit, *common, "--out", str(out))
    # SQLite rolls the transaction back by writing the journal's pages again, which the limit
    # refuses past it: the journal may stay (hot) until the next writer or reader opens the
    # file, which puts the previous content back
    assert_failed_cleanly(out, proc, "publish", left=("detections.gpkg-journal",))
    assert "detections.gpkg" in proc.stderr
    from scanner.outputs.gpkg_tx import recover

    recover(out / "detections.gpkg")
    assert sha(out / "detections.gpkg") == before  # the previous GeoPackage, byte for byte
    assert leftovers(out) == []

    rerun_completes(out, *common)
    assert layer_counts(out / "detections.gpkg")["windows"] == windows  # replaced, not doubled


@pytest.mark.slow  # a TensorFlow start-up in a subprocess per case
def test_record_past_the_limit(common, reference, tmp_path):
    """The record itself cannot grow: exit 3 naming record.sqlite; the file stays a valid
    database, and the next run takes over the dead run's lock and does the work."""
    from scanner.record import Record

    out = tmp_path / "out"
    proc = scan_limited(24 * KIB, *common, "--out", str(out))
    assert proc.returncode == 3, proc.stderr
    assert "record.sqlite" in proc.stderr and "file-size limit" in proc.stderr, proc.stderr
    assert leftovers(out) == []
    with Record.open(out) as rec:
        assert rec.counts()["processed"] == 0
    s = rerun_completes(out, *common)
    assert s["counts"]["processed"] == s["counts"]["found"]


@pytest.mark.slow
def test_mosaic_past_the_limit(common, reference, tmp_path):
    limit = min(reference["rgb"]) - 16 * KIB
    assert limit > max(reference["record"]) + 16 * KIB, (
        reference
    )  # the record stays below it until the mosaic stage
    out = tmp_path / "out"
    proc = scan_limited(limit, *common, "--out", str(out))
    assert_failed_cleanly(out, proc, "mosaic")
    assert not list(out.glob("mosaics/*/*_rgb.tif"))
    rerun_completes(out, *common)


@pytest.mark.slow
def test_saliency_cog_past_the_limit(common, scan_model, tmp_path):
    """An IG raster bigger than the mosaic: the mosaic and the smaller COGs are written, the IG
    COG is not, and nothing half-written remains."""
    cfg = tmp_path / "ig.yaml"
    cfg.write_text(IG_CONFIG)
    ref = tmp_path / "ref"
    rc, _, err = run_scan(*common, "--config", str(cfg), "--out", str(ref))
    assert rc == 0, err
    size = sizes(ref)
    limit = (max(size["rgb"]) + min(size["ig"])) // 2
    assert max(size["rgb"]) + 16 * KIB < limit < min(size["ig"]) - 16 * KIB, size

    out = tmp_path / "out"
    proc = scan_limited(limit, *common, "--config", str(cfg), "--out", str(out))
    assert_failed_cleanly(out, proc, "saliency")
    assert list(out.glob("mosaics/*/*_rgb.tif")) and not list(out.glob("mosaics/*/*_ig.tif"))
    assert list(out.glob("mosaics/*/*_gradcam.tif"))  # the smaller COGs before it, whole
    rerun_completes(out, *common, "--config", str(cfg))
