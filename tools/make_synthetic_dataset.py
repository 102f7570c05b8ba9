"""Write a seeded synthetic polar-low dataset laid out like the real one.

    python tools/make_synthetic_dataset.py --out data/synthetic --n-pos 200 --n-neg 200 \\
        --test-pos 50 --test-neg 50 --size 192 --seed 0

Produces ``OUT/train/{pos,neg}``, ``OUT/test/{pos,neg}`` (PNG, the dataset's file naming) and a
``vortices.csv`` per split. Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.synthetic import write_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="dataset root to create")
    ap.add_argument("--n-pos", type=int, default=200, help="train positives")
    ap.add_argument("--n-neg", type=int, default=200, help="train negatives")
    ap.add_argument("--test-pos", type=int, default=50, help="test positives")
    ap.add_argument("--test-neg", type=int, default=50, help="test negatives")
    ap.add_argument("--size", type=int, default=192, help="image side in pixels")
    ap.add_argument("--pixel-m", type=float, default=2000.0, help="pixel spacing in metres")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for split, n_pos, n_neg in (
        ("train", args.n_pos, args.n_neg),
        ("test", args.test_pos, args.test_neg),
    ):
        if n_pos < 0 or n_neg < 0:
            ap.error("image counts must be >= 0")
        if n_pos + n_neg == 0:
            continue
        out = write_dataset(
            args.out,
            n_pos=n_pos,
            n_neg=n_neg,
            size=args.size,
            seed=args.seed,
            split=split,
            pixel_m=args.pixel_m,
        )
        print(f"{out}: {n_pos} pos, {n_neg} neg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
