"""In-place reading over S3 vs downloading, on a loopback moto S3 server, side by side.

One synthetic EW scene (real sample grid and LUTs, speckle at EW's 10.7 looks) is written as an
original SAFE (zipped, as CDSE serves it) and as its COG twin (``gdal_translate -of COG`` as
CDSE's ``GRD2COG.sh``: ZSTD, 1024 tiles, 6 RMS overviews). Both go into moto's S3 server (its
own process, tests/support/s3server.py) under real ``S3Path``-style keys. One untimed s3 read
first (imports, GDAL's first use), then per round:

- s3:       ``build_mosaic('/vsis3/eodata/<twin key>')`` — XML by signed GETs, block radiometry
            from the RMS overviews (after the one-tile check), nothing written but the mosaic;
- s3+meter: the same inside a byte meter's scope (``polarscan.common.meter.metered``, as a
            scan's mosaic stage reads in place): the product notes the blocks of every read and
            estimates GDAL's TIFF bytes from them at close. s3 and s3+meter swap places every
            round; their time ratio is the cost of block-noting, and the meter's count is set
            against the server's log;
- download: the original's zip fetched from the same server (``polarscan.common.http.download``
            with its MD5 verified, as a CDSE download) then ``build_mosaic(zip)``.

Bytes read in place are counted by the server's request log (body bytes sent), ÷ the twin's
size (every object under its key) and ÷ the original zip (target ≤ 5 %). GDAL's in-process
/vsicurl/ cache is off so every round reads over the wire. Prints medians and ratios.

    .venv/bin/python benchmarks/bench_s3.py [--scale 1.0] [--rounds 2] [--resolution 500]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["CPL_VSIL_CURL_NON_CACHED"] = "/vsis3/eodata/"  # before GDAL is loaded

DAY = "2022/11/30"


def _zip(safe: Path, dest: Path) -> Path:
    target = dest / f"{safe.name[:-5]}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in sorted(safe.rglob("*")):
            if f.is_file():
                zf.write(f, f"{safe.name}/{f.relative_to(safe).as_posix()}")
    return target


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = a full-size EW scene")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--resolution", type=float, default=500.0, help="mosaic pixel size (m)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING, format="  %(name)s: %(message)s")
    logging.getLogger("scanner.safe.radiometry").setLevel(logging.INFO)  # which overview

    from polarscan.common.http import download
    from polarscan.common.meter import metered
    from scanner.demo.cog_twin import write_cog_twin
    from scanner.demo.synthetic_product import write_product
    from scanner.mosaic import build_mosaic
    from scanner.mosaic.config import MosaicConfig
    from tests.support.s3server import S3Server

    cfg = MosaicConfig(resolution_m=args.resolution)
    with tempfile.TemporaryDirectory() as tmp, S3Server(max_lifetime=3600) as s3:
        work = Path(tmp)
        t0 = time.perf_counter()
        original = write_product(work / "orig", scale=args.scale, seed=11)
        twin = write_cog_twin(original, work / "cog")
        zipped = _zip(original, work)
        zip_size, md5 = zipped.stat().st_size, _md5(zipped)
        twin_key = f"Sentinel-1/SAR/EW_GRDM_1S-COG/{DAY}/{twin.name}"
        zip_key = f"download/{zipped.name}"
        twin_size = s3.upload_tree(twin, twin_key)
        s3.client().upload_file(str(zipped), "eodata", zip_key)
        url = s3.client().generate_presigned_url(
            "get_object", Params={"Bucket": "eodata", "Key": zip_key}, ExpiresIn=3600
        )
        tiffs = sum(f.stat().st_size for f in (twin / "measurement").iterdir())
        print(f"prepared in {time.perf_counter() - t0:.0f} s: scale {args.scale}, twin "
              f"{twin_size / 1e6:.1f} MB ({tiffs / 1e6:.1f} MB TIFFs), original zip "
              f"{zip_size / 1e6:.1f} MB")  # fmt: skip
        os.environ.update(s3.env())

        # untimed: the first read pays for imports and GDAL's first use, whichever variant it is
        build_mosaic([f"/vsis3/eodata/{twin_key}"], work / "warm-up.tif", cfg)
        runs: dict[str, list[float]] = {"s3": [], "s3+meter": [], "download": []}
        read: dict[str, list[int]] = {"s3": [], "s3+meter": []}
        tiff_read: list[int] = []
        counted: list[tuple[int, int]] = []  # the meter's (measured, estimated) bytes
        for i in range(args.rounds):
            order = ["s3", "s3+meter"] if i % 2 == 0 else ["s3+meter", "s3"]
            for name in [*order, "download"]:
                out = work / f"{name}-{i}.tif"
                s3.reset_log()
                meter = None
                t0 = time.perf_counter()
                if name == "download":
                    dest = work / f"dl-{i}.zip"
                    download(url, dest, expected_size=zip_size, checksum=("MD5", md5))
                    result = build_mosaic([dest], out, cfg)
                    dest.unlink()
                else:
                    scope = metered() if name == "s3+meter" else contextlib.nullcontext()
                    with scope as meter:
                        result = build_mosaic([f"/vsis3/eodata/{twin_key}"], out, cfg)
                runs[name].append(time.perf_counter() - t0)
                assert result.path is not None and Path(result.path).is_file()
                if name in read:
                    read[name].append(s3.bytes_sent())
                if name == "s3":
                    tiff_read.append(s3.bytes_sent(".tiff"))
                if meter is not None:
                    assert meter.estimated > 0, "no TIFF blocks were noted under the meter"
                    counted.append((meter.measured, meter.estimated))

        med = {k: statistics.median(v) for k, v in runs.items()}
        b = statistics.median(read["s3"])
        bm = statistics.median(read["s3+meter"])
        bt = statistics.median(tiff_read)
        measured = statistics.median(m for m, _ in counted)
        estimated = statistics.median(e for _, e in counted)
        print(f"\n{args.rounds} rounds, mosaic at {args.resolution:.0f} m, median s per scene")
        for k, v in runs.items():
            print(f"  {k:9s} {med[k]:7.2f} s   (runs: {', '.join(f'{x:.2f}' for x in v)})")
        print(f"time s3 / download = {med['s3'] / med['download']:.2f}")
        ratios = [m / o for m, o in zip(runs["s3+meter"], runs["s3"], strict=True)]
        print(f"block-noting on ÷ off: time s3+meter / s3 = {med['s3+meter'] / med['s3']:.3f} "
              f"(per round: {', '.join(f'{r:.3f}' for r in ratios)}); bytes over the wire "
              f"{bm / 1e6:.2f} / {b / 1e6:.2f} MB = {bm / b:.4f}")  # fmt: skip
        print(f"  the meter counted {measured / 1e6:.2f} MB measured (S3 client) + "
              f"{estimated / 1e6:.2f} MB estimated (TIFF blocks) = "
              f"{(measured + estimated) / 1e6:.2f} MB ÷ the server's log "
              f"{bm / 1e6:.2f} MB = {(measured + estimated) / bm:.4f}")  # fmt: skip
        print(f"bytes read in place per scene: {b / 1e6:.2f} MB (TIFFs {bt / 1e6:.2f} MB)")
        print(f"  ÷ twin product {twin_size / 1e6:.1f} MB = {b / twin_size:.1%}  (target <= 5 %)")
        print(f"  ÷ original zip {zip_size / 1e6:.1f} MB = {b / zip_size:.1%}")
        print(f"  TIFF bytes ÷ twin TIFFs {tiffs / 1e6:.1f} MB = {bt / tiffs:.1%}")


if __name__ == "__main__":
    main()
