"""The publisher writes finished mosaics in batches: the outputs are the same as one mosaic per
transaction, a batch that cannot be written is retried one mosaic at a time (a bad mosaic fails
alone), and the batch size and wait come from the config."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

from tests.support.scan_helpers import layer_counts, run_scan, scan_model

__all__ = ["scan_model"]

REPO = Path(__file__).resolve().parents[2]
N = 3  # mosaics


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> Path:
    """Three single-slice products, each its own datatake (so three mosaics)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_scan import write_products

    folder = tmp_path_factory.mktemp("batches") / "incoming"
    write_products(folder, N, 1 / 16)
    return folder


def _scan(products: Path, out: Path, model: Path, **config) -> tuple[int, dict | None, str]:
    lines = "".join(f"{k}: {v}\n" for k, v in config.items())
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text(f"saliency:\n  methods: []\n{lines}")
    return run_scan(
        "--source", f"local:{products}", "--bbox", "70", "75", "110", "84",
        "--since", "2000-01-01", "--model", str(model), "--out", str(out), "--sequential",
        "--config", str(cfg),
    )  # fmt: skip


def _written(caplog) -> list[int]:
    pattern = re.compile(r"wrote (\d+) mosaic\(s\) to detections.gpkg")
    return [int(m[1]) for r in caplog.records if (m := pattern.search(r.getMessage()))]


def _rows(gpkg: Path) -> dict[str, list[tuple]]:
    """Every layer's rows without the run's own id and times, sorted (order-free comparison)."""
    import pyogrio

    out = {}
    for layer, _ in pyogrio.list_layers(gpkg):
        if layer in ("runs", "layer_styles"):
            continue
        df = pyogrio.read_dataframe(gpkg, layer=layer)
        drop = [c for c in df.columns if c in ("run_id", "processed", "created")]
        df = df.drop(columns=drop)
        if "geometry" in df:
            wkt = df.geometry.to_wkt(rounding_precision=3)
            df = df.drop(columns="geometry").assign(wkt=wkt.to_numpy())
        out[layer] = sorted(tuple(str(v) for v in row) for row in df.itertuples(index=False))
    return out


def test_batches_write_what_single_mosaics_write(products, scan_model, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="scanner.scan.publish")
    rc, s1, err = _scan(products, tmp_path / "one", scan_model, publish_batch=1)
    assert rc == 0, err
    assert _written(caplog) == [1, 1, 1]
    caplog.clear()
    rc, s2, err = _scan(products, tmp_path / "two", scan_model, publish_batch=2)
    assert rc == 0, err
    assert _written(caplog) == [2, 1]  # a full batch, then the rest when the run ends
    assert s1["counts"]["processed"] == s2["counts"]["processed"] == N
    assert s2["counts"]["mosaics"] == N and len(s2["cluster"]["placement"]) == N
    one, two = (
        _rows(tmp_path / "one" / "detections.gpkg"),
        _rows(tmp_path / "two" / "detections.gpkg"),
    )
    assert one.keys() == two.keys() and one == two
    assert layer_counts(tmp_path / "two" / "detections.gpkg")["scenes"] == N

    from scanner.outputs.stac import read_catalog
    from scanner.record import Record

    assert len(list(read_catalog(tmp_path / "two").get_items(recursive=True))) == N
    with Record.open(tmp_path / "two") as rec:
        assert len(rec.scenes(status="processed")) == N


def test_a_batch_that_cannot_be_written_fails_only_its_bad_mosaic(
    products, scan_model, tmp_path, caplog, monkeypatch
):
    """A STAC write that refuses one mosaic (an injected fault at the writer's edge): the batch
    of three fails, the publisher writes them one by one, two are processed and one failed."""
    import scanner.outputs.stac as stac

    real = stac.write_stac
    bad: list[str] = []

    def refusing(out_dir, mosaics, prov):
        if not bad:
            bad.append(sorted(m.mosaic_id for m in mosaics)[1])
        if any(m.mosaic_id in bad for m in mosaics):
            raise OSError(f"injected: cannot write the item of {bad[0]}")
        return real(out_dir, mosaics, prov)

    monkeypatch.setattr(stac, "write_stac", refusing)
    caplog.set_level(logging.INFO, logger="scanner.scan.publish")
    out = tmp_path / "out"
    rc, s, err = _scan(products, out, scan_model, publish_batch=10)
    assert rc == 1, err
    assert (s["counts"]["processed"], s["counts"]["failed"]) == (N - 1, 1)
    [failure] = s["failures"]
    assert failure["mosaic"] == bad[0] and failure["error"].startswith("publish: OSError")
    assert "writing them one by one" in caplog.text
    assert _written(caplog) == [1, 1]

    from scanner.record import Record

    with Record.open(out) as rec:
        [failed] = rec.scenes(status="failed")
        assert len(rec.scenes(status="processed")) == N - 1
    assert "injected" in failed.last_error
    # the next run (writer healthy again) redoes only the failed mosaic
    monkeypatch.setattr(stac, "write_stac", real)
    rc, s, err = _scan(products, out, scan_model, publish_batch=10)
    assert rc == 0, err
    assert s["counts"]["processed"] == 1


def test_publish_settings_are_checked():
    from pydantic import ValidationError

    from scanner.scan.config import ScanConfig

    assert ScanConfig().publish_batch == 16 and ScanConfig().publish_interval_s == 60
    for bad in ({"publish_batch": 0}, {"publish_interval_s": 0}, {"publish_batchsize": 4}):
        with pytest.raises(ValidationError):
            ScanConfig(**bad)


@pytest.mark.parametrize(
    ("pending", "waited", "last_write", "since_write", "due"),
    [
        (0, 999.0, 0.0, 999.0, False),  # nothing to write
        (3, 10.0, 0.0, 999.0, False),  # part-filled and young: wait
        (16, 0.0, 0.0, 0.0, True),  # a full batch, the writer idle so far
        (3, 60.0, 0.0, 0.0, True),  # part-filled, but the oldest waited the interval
        (16, 0.0, 2.0, 7.9, False),  # the last write took 2 s: rest 8 s (a fifth writing)
        (16, 0.0, 2.0, 8.0, True),
        (40, 90.0, 30.0, 100.0, False),  # a 30 s write on a huge archive: the batch grows
        (40, 130.0, 30.0, 120.0, True),
    ],
)
def test_when_a_batch_is_due(pending, waited, last_write, since_write, due):
    from scanner.scan.publish import batch_due

    assert batch_due(pending, waited, last_write, since_write, 16, 60.0) is due
    # publish_batch 1 is "each as it finishes": never held back by the writer's rest
    assert batch_due(pending, waited, last_write, since_write, 1, 60.0) is (pending > 0)


HOLDER = """
import sys, time
from pathlib import Path
from scanner.outputs.gpkg_tx import writer_lock

with writer_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_geopackage_another_process_holds_fails_the_batch_once(
    products, scan_model, tmp_path, caplog, monkeypatch
):
    """Another process holds the GeoPackage through the run (lock timeout cut to 1 s): the
    batch fails at once, not mosaic by mosaic (each would wait as long again), and spends no
    attempt of its scenes; once the holder is gone the next run writes them all."""
    import subprocess

    from scanner.outputs import gpkg_tx
    from scanner.record import Record

    monkeypatch.setattr(gpkg_tx, "LOCK_TIMEOUT_S", 1.0)
    caplog.set_level(logging.INFO, logger="scanner.scan.publish")
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out / "detections.gpkg")],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, s, err = _scan(products, out, scan_model, publish_batch=10)
    finally:
        holder.kill()
        holder.wait()
    assert rc == 1, err
    assert (s["counts"]["processed"], s["counts"]["failed"]) == (0, N)
    assert all("stayed locked" in f["error"] and f"pid {holder.pid}" in f["error"]
               for f in s["failures"])  # fmt: skip
    assert "one by one" not in caplog.text
    with Record.open(out) as rec:
        assert [r.attempts for r in rec.scenes(status="failed")] == [0] * N
    rc, s, err = _scan(products, out, scan_model, publish_batch=10)
    assert rc == 0 and s["counts"]["processed"] == N, err
