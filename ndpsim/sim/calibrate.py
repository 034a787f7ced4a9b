"""Calibration for post-training quantization: run the program on the float datapath over
calibration inputs and record each stored value's range (min-max, or percentiles); the
plan is then chosen from the ranges (quant/ptq.py).

Ranges do not depend on bits, so one `collect_ranges` serves every precision assignment of a
model (`ndpsim precision` reuses it across all its rows)."""

from __future__ import annotations

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.lower.program import Program
from ndpsim.quant.bind import bind
from ndpsim.quant.params import QuantPlan
from ndpsim.quant.ptq import PTQOptions, Ranges, plan_from_ranges
from ndpsim.sim.run import run

_SAMPLE_CAP = 1 << 16  # values kept per tensor and calibration input for percentiles


def collect_ranges(
    program: Program,
    hw: HardwareConfig,
    samples: list[dict[str, np.ndarray]],
    opts: PTQOptions | None = None,
) -> Ranges:
    """Run the float datapath on every calibration sample and record each stored value's
    range: min and max, or the `percentile` of |x| (symmetric) / of each tail (asymmetric)."""
    opts = opts or PTQOptions()
    fparams = bind(program, None)
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    kept: dict[str, list[np.ndarray]] = {}
    rng = np.random.default_rng(0)
    for inputs in samples:
        res = run(program, hw, fparams, inputs)
        for name, p in program.placements.items():
            vals = res.mem[p.addr : p.addr + p.size]  # float32: min and max are exact in it
            if not vals.size:
                continue
            lo[name] = min(lo.get(name, 0.0), float(vals.min()))
            hi[name] = max(hi.get(name, 0.0), float(vals.max()))
            if opts.method == "percentile":
                vals = vals.astype(np.float64)
                if vals.size > _SAMPLE_CAP:
                    vals = rng.choice(vals, _SAMPLE_CAP, replace=False)
                kept.setdefault(name, []).append(vals)
    out = {name: (lo[name], hi[name]) for name in lo}
    if opts.method == "percentile":
        q = opts.percentile
        for name, parts in kept.items():
            v = np.concatenate(parts)
            if opts.activations == "symmetric":
                a = float(np.percentile(np.abs(v), q))
                out[name] = (-a, a)
            else:
                out[name] = (float(np.percentile(v, 100 - q)), float(np.percentile(v, q)))
    return Ranges(out, opts)


def calibrate(
    program: Program,
    hw: HardwareConfig,
    samples: list[dict[str, np.ndarray]],
    opts: PTQOptions | None = None,
) -> QuantPlan:
    """The QuantPlan of a float model calibrated on `samples`."""
    ranges = collect_ranges(program, hw, samples, opts)
    return plan_from_ranges(program, ranges, hw.preactivation_bits)
