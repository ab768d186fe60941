"""Time clutrr-baselines' DataUtility.split_indices (a set rebuilt for every row: O(n^2))
against patches.clutrr.compat.split_indices (O(n), same draws, same split) on n story ids.

    python benchmarks/clutrr_split_indices.py [--rows 1000 2000 4000]
"""
import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from patches import vendor
from patches.clutrr import NAME, captured_output, compat, shims


class Rows:
    """What split_indices reads of a DataUtility: dataRows['train'] (id -> row) and the split."""

    def __init__(self, n: int):
        self.dataRows = {"train": {f"story-{i:06d}": type("Row", (), {"id": f"story-{i:06d}"})() for i in range(n)}}
        self.train_test_split = 0.8


def seconds(split, n: int) -> float:
    rows = Rows(n)
    np.random.seed(0)
    start = time.perf_counter()
    split(rows)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 2000, 4000])
    args = parser.parse_args()
    with compat.numpy_int_alias(), vendor.isolated(vendor.checkout(NAME), shims()), captured_output(None):
        upstream = __import__("codes.utils.data", fromlist=["_"]).DataUtility.split_indices
    print("| rows | upstream (s) | O(n) (s) |\n|---|---|---|")
    for n in args.rows:
        print(f"| {n} | {seconds(upstream, n):.3f} | {seconds(compat.split_indices, n):.4f} |")


if __name__ == "__main__":
    main()
