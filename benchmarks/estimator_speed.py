"""Estimator prediction speed: architectures of the search space scored per second.

    python benchmarks/estimator_speed.py --estimator estimator.npz [--n 10000] [--repeats 5]

Each repeat draws fresh random genomes and times the whole path a search runs: the batched
kernel table (numpy), hardware-aware features, one tree-ensemble call per kernel type and
target, the model-level sum. Genome sampling is not timed (a search makes its own). The
median of the repeats is reported against the 10,000 architectures/s target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ndpsim.config import load_preset
from ndpsim.estimator.model import Estimator
from ndpsim.zoo.search_space import sample_genome

TARGET_PER_S = 10_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--estimator", type=Path, required=True)
    ap.add_argument("--preset", default="neural-engine")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    est, hw = Estimator.load(args.estimator), load_preset(args.preset)
    rng = np.random.default_rng(0)
    est.predict_genomes([sample_genome(rng) for _ in range(100)], hw)  # numba compile / load
    times = []
    for _ in range(args.repeats):
        genomes = [sample_genome(rng) for _ in range(args.n)]
        t0 = time.perf_counter()
        cycles, energy = est.predict_genomes(genomes, hw)
        times.append(time.perf_counter() - t0)
        assert len(cycles) == args.n and np.all(cycles > 0) and np.all(energy > 0)
    med = statistics.median(times)
    rate = args.n / med
    verdict = "PASS" if rate >= TARGET_PER_S else "FAIL"
    print(f"{'architectures':>13s} {'median s':>9s} {'min s':>7s} {'arch/s':>9s} {'target':>8s}")
    print(f"{args.n:13d} {med:9.3f} {min(times):7.3f} {rate:9.0f} {TARGET_PER_S:8d}  {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
