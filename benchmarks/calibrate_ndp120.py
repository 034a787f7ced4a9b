"""Fit the ndp120 preset's free constants to Syntiant NDP120 silicon (MLPerf Tiny v1.0).

The calibration set is KWS (DS-CNN) and IC (ResNet-8) at 0.9 V / 30.7 MHz and 1.1 V / 98.7 MHz
(MLCommons `tiny_results_v1.0`, `closed/syntiant`; docs/machine_model.md, "ndp120"). The
models are the bundled `models/*.onnx`: the MLPerf Tiny reference structures (the trained
weights do not change timing or energy, which depend on shapes only).

The fit sets constants only; every equation is the machine model's (docs/machine_model.md):

1. structure: a small grid of macro arrays (macros, rows, columns, input bits per cycle) with
   the weight capacity held at 384 KiB;
2. timing: per structure and `macro_pipeline_cycles`, latency is linear in the per-layer setup
   (`layer_setup_cycles` on the core clock, `layer_setup_us` on a fixed clock), fitted by
   bounded least squares on relative error;
3. energy: at the chosen timing, energy is linear in `clock_energy_pj_per_cycle` and
   `fixed_power_mw` (the per-event energies stay at their cited values), fitted the same way.

`python benchmarks/calibrate_ndp120.py` prints every calibration point (measured, simulated,
error) for the preset as it is; `--fit` runs the search and prints the constants it finds
(copy them into ndpsim/presets/ndp120.yaml).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from ndpsim.api import simulate
from ndpsim.config import HardwareConfig, load_preset
from ndpsim.frontend import load_model
from ndpsim.isa import Opcode
from ndpsim.lower import lower
from ndpsim.report.energy import dynamic_pj
from ndpsim.sim.run import run

MODELS = Path(__file__).resolve().parent.parent / "models"
# (benchmark, model file, operating point) -> (latency us, energy uJ), measured on silicon
MEASURED = {
    ("KWS", "kws_dscnn.onnx", "0.9V"): (4367.2, 31.537),
    ("KWS", "kws_dscnn.onnx", "1.1V"): (1481.4, 43.802),
    ("IC", "ic_resnet8.onnx", "0.9V"): (15975.0, 101.833),
    ("IC", "ic_resnet8.onnx", "1.1V"): (5122.0, 139.367),
}
WEIGHT_CAPACITY_BYTES = 384 * 1024
LATENCY_TOL, ENERGY_TOL = 0.05, 0.10


def _box_lstsq(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """min |a x - b| with lo <= x <= hi, exactly: try every free / at-lower / at-upper pattern
    (3^k for the k <= 3 unknowns here) and keep the best feasible solution."""
    best, best_err = None, np.inf
    k = a.shape[1]
    for pattern in itertools.product((0, 1, 2), repeat=k):
        x = np.where(np.array(pattern) == 1, lo, np.where(np.array(pattern) == 2, hi, 0.0))
        free = [i for i in range(k) if pattern[i] == 0]
        rhs = b - a @ x
        if free:
            x[free] = np.linalg.lstsq(a[:, free], rhs, rcond=None)[0]
        if np.any(x < lo - 1e-9) or np.any(x > hi + 1e-9):
            continue
        err = float(np.sum((a @ x - b) ** 2))
        if err < best_err:
            best, best_err = x, err
    return best


def _points(hw: HardwareConfig):
    for (bench, model, point), meas in MEASURED.items():
        yield bench, model, hw.at_operating_point(point), meas


def _structure_grid(base: HardwareConfig):
    for macros, rows, cols, in_bits in itertools.product(
        (1, 2, 4), (16, 32, 64, 128), (4, 8, 16, 32), (1, 2, 4, 8)
    ):
        hw = base.with_(macros_per_core=macros, macro_rows=rows, macro_cols=cols,
                        input_bits_per_cycle=in_bits, readout_columns_per_cycle=cols)  # fmt: skip
        if not 16 <= hw.peak_macs_per_cycle <= 128:
            continue
        sets = WEIGHT_CAPACITY_BYTES * 8 // (hw.total_macros * rows * cols * hw.weight_bits)
        yield hw.with_(macro_weight_sets=sets)


def _fit_setup(hw: HardwareConfig, progs: dict) -> tuple[HardwareConfig, float]:
    """Best macro_pipeline_cycles and per-layer setup for one structure (lowered `progs`)."""
    setups = {m: int(((p.instrs["op"] == Opcode.NOP) & (p.instrs["a0"] == 1)).sum())
              for m, p in progs.items()}  # fmt: skip
    best, best_err = hw, np.inf
    for pipe in range(0, 65, 4):
        t = hw.with_(macro_pipeline_cycles=pipe, layer_setup_cycles=0, layer_setup_us=0.0)
        cyc = {m: run(p, t).cycles for m, p in progs.items()}
        rows, rhs = [], []
        for _, model, op, (lat_us, _) in _points(t):
            # latency_us = (cycles + n_setup * s) / f + n_setup * u, relative to measured
            n, f = setups[model], op.clock_mhz
            rows.append([n / f / lat_us, n / lat_us])
            rhs.append(1.0 - cyc[model] / f / lat_us)
        x = _box_lstsq(np.array(rows), np.array(rhs), np.zeros(2), np.array([5000.0, 100.0]))
        err = float(np.max(np.abs(np.array(rows) @ x - np.array(rhs))))
        if err < best_err:
            best_err = err
            best = t.with_(layer_setup_cycles=int(round(x[0])), layer_setup_us=float(x[1]))
    return best, best_err


def fit_timing(base: HardwareConfig, graphs: dict) -> tuple[HardwareConfig, float]:
    """Stage 1: every structure of the grid; stage 2: the best few with other SRAM widths
    and vector lanes. Returns the best config and its worst relative latency residual."""
    scored = []
    for hw in _structure_grid(base):
        progs = {m: lower(g, hw) for m, g in graphs.items()}
        scored.append((*_fit_setup(hw, progs)[::-1], progs))
    scored.sort(key=lambda s: s[0])
    best_err, best, _ = scored[0]
    for _, hw, progs in scored[:8]:
        for sram, lanes in itertools.product((2, 4, 8, 16, 32), (2, 4, 8, 16)):
            cand = hw.with_(sram_bytes_per_cycle=sram, vector_lanes=lanes)
            fitted, err = _fit_setup(cand, progs)
            if err < best_err:
                best, best_err = fitted, err
    return best, best_err


def fit_energy(hw: HardwareConfig, graphs: dict) -> HardwareConfig:
    """clock_energy_pj_per_cycle and fixed_power_mw at the fitted timing (bounded LS)."""
    rows, rhs = [], []
    zero = hw.with_(clock_energy_pj_per_cycle=0.0, fixed_power_mw=0.0)
    for _, model, op, (_, e_uj) in _points(zero):
        res = run(lower(graphs[model], op), op)
        v2 = (op.voltage_v / op.energy_reference_voltage_v) ** 2
        dyn_pj = sum(float(v[0]) for v in dynamic_pj(res.counters.sum(0), op).values())
        leak_pj = (
            op.leakage_mw
            * op.voltage_v
            / op.energy_reference_voltage_v
            * res.cycles
            / (op.clock_mhz)
            * 1e3
        )
        t_us = res.cycles / op.clock_mhz
        # E_pj = dyn + leak + cycles * v2 * e_clk + t_us * 1e3 * fixed, relative to measured
        rows.append([res.cycles * v2 / (e_uj * 1e6), t_us * 1e3 / (e_uj * 1e6)])
        rhs.append(1.0 - (dyn_pj + leak_pj) / (e_uj * 1e6))
    x = _box_lstsq(np.array(rows), np.array(rhs), np.zeros(2), np.array([1e4, 100.0]))
    return hw.with_(clock_energy_pj_per_cycle=round(float(x[0]), 1),
                    fixed_power_mw=round(float(x[1]), 3))  # fmt: skip


def table(hw: HardwareConfig) -> bool:
    """Print every calibration point; True when all are within tolerance."""
    print(f"{'benchmark':<9} {'point':<14} {'latency us':>22} {'err':>7} "
          f"{'energy uJ':>20} {'err':>7}")  # fmt: skip
    print(f"{'':<9} {'':<14} {'measured':>10} {'simulated':>11} {'':>7} "
          f"{'measured':>9} {'simulated':>10}")  # fmt: skip
    ok = True
    for bench, model, op, (lat, e) in _points(hw):
        r = simulate(MODELS / model, op, _timing_only())
        el, ee = r.latency_us / lat - 1, r.energy_uj / e - 1
        ok &= abs(el) <= LATENCY_TOL and abs(ee) <= ENERGY_TOL
        point = f"{op.voltage_v:g} V {op.clock_mhz:g} MHz"
        print(f"{bench:<9} {point:<14} {lat:>10.1f} {r.latency_us:>11.1f} {100 * el:>+6.1f}% "
              f"{e:>9.3f} {r.energy_uj:>10.3f} {100 * ee:>+6.1f}%")  # fmt: skip
    print(f"targets: latency within +-{LATENCY_TOL:.0%}, energy within +-{ENERGY_TOL:.0%}: "
          f"{'all met' if ok else 'NOT met'}")  # fmt: skip
    return ok


def _timing_only():
    from ndpsim.api import SimOptions

    return SimOptions(timing_only=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="search the constants (about a minute)")
    args = ap.parse_args()
    hw = load_preset("ndp120")
    if args.fit:
        graphs = {m: load_model(MODELS / m) for _, m, _ in MEASURED}
        hw, err = fit_timing(hw, graphs)
        hw = fit_energy(hw, graphs)
        keys = ("macros_per_core", "macro_rows", "macro_cols", "input_bits_per_cycle",
                "readout_columns_per_cycle", "macro_weight_sets", "sram_bytes_per_cycle",
                "vector_lanes", "macro_pipeline_cycles",
                "layer_setup_cycles", "layer_setup_us", "clock_energy_pj_per_cycle",
                "fixed_power_mw")  # fmt: skip
        print(f"fitted constants (worst latency residual {100 * err:.2f}%):")
        for k in keys:
            print(f"  {k}: {getattr(hw, k)}")
    raise SystemExit(0 if table(hw) else 1)


if __name__ == "__main__":
    main()
