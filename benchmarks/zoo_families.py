"""The zoo's network families: what their samplers produce (MACs, parameters, channel
counts off multiples of 8) and how long a timing-only simulation of each takes.

    python benchmarks/zoo_families.py [--samples N] [--preset generic] [--seed S] [FAMILY...]

One row per family over N sampled specs (default 30): MACs and learned parameters
(min / median / max), the share of conv and recurrent output widths that are not a multiple
of 8, and the timing-only simulation time from the ONNX model (import, lower, run; median and
max, after a warm-up, so compilation is not timed). The target is every network well under a
second: a row whose max exceeds 1 s is marked SLOW and the exit code is 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import ndpsim
from ndpsim.api import SimOptions
from ndpsim.config import load_preset
from ndpsim.zoo.families import NETWORK_FAMILIES, build_network, network_stats, sample_spec

TARGET_S = 1.0


def _widths(model) -> list[int]:
    """Output widths of the MAC layers: conv filters, Gemm outputs, recurrent hidden sizes."""
    dims = {i.name: tuple(i.dims) for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm") and node.input[1] in dims:
            out.append(dims[node.input[1]][0])
        elif node.op_type in ("LSTM", "GRU"):
            out.append(next(a.i for a in node.attribute if a.name == "hidden_size"))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("families", nargs="*", default=list(NETWORK_FAMILIES))
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--preset", default="generic")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    unknown = sorted(set(args.families) - set(NETWORK_FAMILIES))
    if unknown or args.samples < 1:
        print(f"error: unknown families {unknown} or --samples < 1", file=sys.stderr)
        return 2
    hw = load_preset(args.preset)
    opts = SimOptions(timing_only=True)
    ndpsim.simulate(build_network({"family": "dscnn", "filters": 8, "blocks": 1}), hw, opts)
    print(f"{args.samples} samples per family, seed {args.seed}, timing-only on {args.preset}")
    head = (f"{'family':18} {'MACs min':>9} {'median':>9} {'max':>9} {'params min':>11} "
            f"{'median':>9} {'max':>9} {'off-8':>6} {'sim med':>8} {'sim max':>8}")  # fmt: skip
    print(head)
    status = 0
    for family in args.families:
        rng = np.random.default_rng(args.seed)
        macs, params, secs, off8 = [], [], [], []
        for i in range(args.samples):
            spec = sample_spec(family, rng)
            stats = network_stats(spec)
            model = build_network(spec, seed=i)
            data = model.SerializeToString()
            t0 = time.perf_counter()
            ndpsim.simulate(data, hw, opts)
            secs.append(time.perf_counter() - t0)
            macs.append(stats["macs"])
            params.append(stats["params"])
            off8 += [w % 8 != 0 for w in _widths(model)]
        slow = max(secs) > TARGET_S
        status |= slow
        print(f"{family:18} {min(macs) / 1e6:8.2f}M {statistics.median(macs) / 1e6:8.2f}M "
              f"{max(macs) / 1e6:8.2f}M {min(params) / 1e3:10.1f}k "
              f"{statistics.median(params) / 1e3:8.1f}k {max(params) / 1e3:8.1f}k "
              f"{np.mean(off8):6.0%} {statistics.median(secs):7.3f}s {max(secs):7.3f}s"
              f"{'  SLOW' if slow else ''}", flush=True)  # fmt: skip
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
