"""Download throughput: common.http.download vs a plain streaming copy, same server, same run.

A loopback HTTP server (tests/support/loopback.py, in its own process so it does not share the
client's GIL) serves SIZE MB of random bytes. Measured alternately, ROUNDS times each:

- plain:   ``requests.get(stream=True)`` + ``iter_content(1 MiB)`` written to a file
- ours:    ``polarscan.common.http.download`` with the BLAKE3 checksum verified (what CDSE advertises)
- ours+md5: the same with MD5 (what ASF advertises)

Prints the median MB/s of each and the ratios ours/plain (target ≥ 0.8).

    .venv/bin/python benchmarks/bench_download.py [--size-mb 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _serve(size: int, port_q: mp.Queue, stop: mp.Event) -> None:
    import numpy as np

    from tests.support.loopback import LoopbackServer

    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    with LoopbackServer(max_lifetime=1800) as srv:
        srv.add_bytes("/product.zip", data)
        port_q.put((srv.url, hashlib.md5(data).hexdigest(), _blake3(data)))
        stop.wait(1800)


def _blake3(data: bytes) -> str:
    import blake3

    return blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()


def plain_copy(url: str, dest: Path) -> None:
    import requests

    with requests.get(url, stream=True, timeout=60) as r, open(dest, "wb") as f:
        r.raise_for_status()
        for block in r.iter_content(1 << 20):
            f.write(block)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    size = args.size_mb * 1_000_000

    from polarscan.common.http import download, new_hasher

    ctx = mp.get_context("spawn")
    q, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(size, q, stop), daemon=True)
    proc.start()
    try:
        url, md5, b3 = q.get(timeout=120)
        url += "/product.zip"
        runs: dict[str, list[float]] = {"plain": [], "ours (BLAKE3)": [], "ours (MD5)": []}
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.rounds):
                for name in runs:
                    dest = Path(tmp) / f"{i}-{len(runs[name])}-{name[:4]}.zip"
                    t0 = time.perf_counter()
                    if name == "plain":
                        plain_copy(url, dest)
                    else:
                        checksum = ("BLAKE3", b3) if "BLAKE3" in name else ("MD5", md5)
                        download(url, dest, expected_size=size, checksum=checksum)
                    dt = time.perf_counter() - t0
                    assert dest.stat().st_size == size
                    runs[name].append(size / 1e6 / dt)
                    dest.unlink()
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"{args.size_mb} MB from {url}, {args.rounds} rounds, median MB/s")
        for k, v in runs.items():
            print(f"  {k:14s} {med[k]:8.0f} MB/s   (runs: {', '.join(f'{x:.0f}' for x in v)})")
        print("hashing alone, in memory (the ceiling of a verified download on this CPU):")
        block = bytes(range(256)) * 4096  # 1 MiB
        for algo in ("BLAKE3", "MD5"):
            h = new_hasher(algo)
            t0 = time.perf_counter()
            for _ in range(200):
                h.update(block)
            print(f"  {algo:14s} {200 * len(block) / 1e6 / (time.perf_counter() - t0):8.0f} MB/s")
        for k in ("ours (BLAKE3)", "ours (MD5)"):
            print(f"ratio {k} / plain = {med[k] / med['plain']:.2f}  (target >= 0.8)")
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


if __name__ == "__main__":
    main()
