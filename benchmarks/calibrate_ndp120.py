"""Calibrate an NDP preset to silicon measurements and validate it leave-one-network-out.

    python benchmarks/calibrate_ndp120.py [--measurements FILE.csv] [--preset ndp120 |
        --config FILE] [--plot fidelity.png] [--save calibrated.yaml] [--scan]

Default data: benchmarks/ndp120_silicon.csv, Syntiant NDP120 in MLPerf Tiny (KWS and IC at
0.9 V / 30.7 MHz and 1.1 V / 98.7 MHz, v1.0; the streaming wake word at 1.0 V / 49.2 MHz,
v1.3; docs/fidelity.md). CSV columns: model, voltage_v, clock_mhz, latency_ms, energy_uj,
period_ms, average_power_mw. `model` is an ONNX path (relative to the CSV or the working
directory) or a bundled model's name (models/NAME.onnx). A row gives energy_uj (per
inference), or, for an always-on measurement, period_ms and average_power_mw instead.

The array (macros, rows, columns, input bits, SRAM port) is the preset's: it is fixed by a
physical argument (docs/fidelity.md) and never changed here. Four constants are fitted,
each by bounded least squares on relative error; every equation is the simulator's own
(docs/machine_model.md), linear in the fitted constants:

  latency_us = (cycles_0 + positions x position_cycles) / clock_mhz + layers x layer_setup_us
  energy_uj  = (V/V_ref)^2 x (events_0 + macro busy cycles x macro_active_energy_pj_per_cycle)
               + (leakage(V) + fixed_power_mw) x latency
  always-on:   average_power x period = energy + idle_power_mw x (period - latency)

cycles_0 and events_0 are a simulation with the fitted constants at zero; idle power is the
preset's estimate, never fitted (nothing but an always-on row could see it). The script prints
the fit, the calibration table, the leave-one-network-out table (each network predicted by a
fit on the others) and how each prediction moves with each constant (+10 %).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ndpsim.api import SimOptions, simulate
from ndpsim.config import HardwareConfig, load_config, load_preset
from ndpsim.errors import UserError
from ndpsim.frontend import load_model
from ndpsim.isa import Counter, Opcode
from ndpsim.lower import lower
from ndpsim.report.energy import dynamic_pj
from ndpsim.report.power import always_on
from ndpsim.sim.run import run

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "models"
DEFAULT_CSV = HERE / "ndp120_silicon.csv"
COLUMNS = (
    "model",
    "voltage_v",
    "clock_mhz",
    "latency_ms",
    "energy_uj",
    "period_ms",
    "average_power_mw",
)
FITTED = ("position_cycles", "layer_setup_us", "macro_active_energy_pj_per_cycle", "fixed_power_mw")
CAL_TOL = (0.05, 0.10)  # latency, energy: every calibration point
LONO_TOL = (0.10, 0.15)  # latency, energy: every held-out point


class InputError(Exception):
    """A bad measurements file or option: one line, exit code 2."""


@dataclass(frozen=True)
class Point:
    """One measurement: a network at an operating point."""

    network: str
    model: Path
    voltage_v: float
    clock_mhz: float
    latency_us: float
    energy_uj: float | None  # per inference
    period_ms: float | None = None  # always-on: one inference per period ...
    average_power_mw: float | None = None  # ... at this average power, idle time included

    @property
    def label(self) -> str:
        return f"{self.network} {self.voltage_v:g} V {self.clock_mhz:g} MHz"

    def active_energy_uj(self, idle_mw: float) -> float:
        """Energy of one inference: measured, or what an always-on row leaves after idling."""
        if self.energy_uj is not None:
            return self.energy_uj
        return self.average_power_mw * self.period_ms - idle_mw * (
            self.period_ms - self.latency_us / 1e3
        )


def _model_path(name: str, csv_dir: Path) -> Path:
    for cand in (csv_dir / name, Path(name), MODELS / name, MODELS / f"{name}.onnx"):
        if cand.is_file():
            return cand
    raise InputError(f"model {name!r}: no such ONNX file (nor models/{name}.onnx)")


def _number(row: dict, key: str, line: int, optional: bool = False) -> float | None:
    text = (row.get(key) or "").strip()
    if not text and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"line {line}: {key} must be a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"line {line}: {key} must be positive, got {text!r}")
    return value


def read_measurements(path: Path) -> list[Point]:
    """Points of a measurements CSV (columns COLUMNS); InputError names what is wrong."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS[:4] if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}"
        )
    points = []
    for line, row in enumerate(reader, start=2):
        energy = _number(row, "energy_uj", line, optional=True)
        period = _number(row, "period_ms", line, optional=True)
        power = _number(row, "average_power_mw", line, optional=True)
        if energy is None and (period is None or power is None):
            raise InputError(f"line {line}: give energy_uj, or period_ms and average_power_mw")
        name = (row.get("model") or "").strip()
        if not name:
            raise InputError(f"line {line}: model is empty")
        lat_ms = _number(row, "latency_ms", line)
        if period is not None and lat_ms > period:
            raise InputError(f"line {line}: latency_ms {lat_ms:g} exceeds period_ms {period:g}")
        points.append(
            Point(
                Path(name).stem,
                _model_path(name, path.parent),
                _number(row, "voltage_v", line),
                _number(row, "clock_mhz", line),
                lat_ms * 1e3,
                energy,
                period,
                power,
            )
        )
    if not points:
        raise InputError(f"{path}: no measurements")
    return points


@dataclass
class Features:
    """What a model contributes to the linear fit, from one simulation at the fitted constants'
    zero: cycles, output positions and layer setups (timing); counters (energy)."""

    cycles: int
    positions: int
    setups: int
    counters: np.ndarray


def features(hw: HardwareConfig, model: Path, cache: dict) -> Features:
    """Features of `model` on `hw` (the fitted constants are zeroed here)."""
    zero = hw.with_(position_cycles=0, layer_setup_us=0.0, layer_setup_cycles=0)
    key = (model, zero.config_id())  # the fitted constants do not change these
    if key not in cache:
        prog = lower(load_model(model), zero)
        res = run(prog, zero)
        setup = (prog.instrs["op"] == Opcode.NOP) & (prog.instrs["a0"] == 1)
        cache[key] = Features(
            res.cycles,
            int(prog.instrs["a2"][setup].sum()),
            int(setup.sum()),
            res.counters.sum(axis=0),
        )
    return cache[key]


def _box_lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min |a x - b| subject to x >= 0, exactly for the few unknowns here (every active set)."""
    best, best_err = np.zeros(a.shape[1]), float(np.sum(b**2))
    for free in itertools.product((False, True), repeat=a.shape[1]):
        idx = [i for i, f in enumerate(free) if f]
        if not idx:
            continue
        x = np.zeros(a.shape[1])
        x[idx] = np.linalg.lstsq(a[:, idx], b, rcond=None)[0]
        err = float(np.sum((a @ x - b) ** 2))
        if np.all(x >= -1e-12) and err < best_err:
            best, best_err = np.maximum(x, 0.0), err
    return best


def fit(hw: HardwareConfig, points: list[Point], cache: dict) -> HardwareConfig:
    """`hw` with the four FITTED constants set from `points` (timing first, then energy)."""
    rows, rhs = [], []
    for p in points:
        f = features(hw, p.model, cache)
        rows.append([f.positions / p.clock_mhz / p.latency_us, f.setups / p.latency_us])
        rhs.append(1.0 - f.cycles / p.clock_mhz / p.latency_us)
    a, b = np.array(rows), np.array(rhs)
    pos = int(round(_box_lstsq(a, b)[0]))  # an integer field: refit the setup with it fixed
    setup_us = float(_box_lstsq(a[:, 1:], b - a[:, 0] * pos)[0])
    hw = hw.with_(position_cycles=pos, layer_setup_us=round(setup_us, 2), layer_setup_cycles=0)
    rows, rhs = [], []
    idle_mw = hw.idle_power_total_mw
    for p in points:
        f = features(hw, p.model, cache)
        op = hw.with_(
            voltage_v=p.voltage_v,
            clock_mhz=p.clock_mhz,
            fixed_power_mw=0.0,
            macro_active_energy_pj_per_cycle=0.0,
        )
        cycles = f.cycles + f.positions * pos + f.setups * op.layer_setup_total_cycles
        t_us = cycles / op.clock_mhz
        v2 = (op.voltage_v / op.energy_reference_voltage_v) ** 2
        known_pj = sum(float(v[0]) for v in dynamic_pj(f.counters, op).values())
        known_pj += v2 * cycles * op.clock_energy_pj_per_cycle
        known_pj += op.leakage_mw * op.voltage_v / op.energy_reference_voltage_v * t_us * 1e3
        target_pj = p.active_energy_uj(idle_mw) * 1e6
        rows.append(
            [v2 * f.counters[Counter.MACRO_BUSY_CYCLES] / target_pj, t_us * 1e3 / target_pj]
        )
        rhs.append(1.0 - known_pj / target_pj)
    x = _box_lstsq(np.array(rows), np.array(rhs))
    return hw.with_(
        macro_active_energy_pj_per_cycle=round(float(x[0]), 1), fixed_power_mw=round(float(x[1]), 3)
    )


@dataclass(frozen=True)
class Prediction:
    latency_us: float
    energy: float  # uJ per inference, or mW average for an always-on point

    def errors(self, p: Point) -> tuple[float, float]:
        measured = p.energy_uj if p.energy_uj is not None else p.average_power_mw
        return self.latency_us / p.latency_us - 1.0, self.energy / measured - 1.0


def predict(hw: HardwareConfig, p: Point) -> Prediction:
    """The simulator's figures for a point (timing-only: the same cycles and energy)."""
    op = hw.with_(voltage_v=p.voltage_v, clock_mhz=p.clock_mhz)
    r = simulate(p.model, op, SimOptions(timing_only=True))
    if p.energy_uj is not None:
        return Prediction(r.latency_us, r.energy_uj)
    if r.latency_us / 1e3 > p.period_ms:  # cannot keep up: report it as a latency miss
        return Prediction(r.latency_us, float("nan"))
    return Prediction(r.latency_us, always_on(r, op, 1e3 / p.period_ms).average_power_mw)


def _energy_name(p: Point) -> str:
    return "uJ" if p.energy_uj is not None else "mW avg"


def table(title: str, hw_of: dict[str, HardwareConfig], points: list[Point], tol) -> bool:
    """Print measured / simulated / error per point; True when all are within `tol`."""
    print(title)
    print(
        f"  {'point':<40} {'latency us':>10} {'sim':>10} {'err':>7}   "
        f"{'energy':>10} {'sim':>10} {'err':>7}"
    )
    ok = True
    for p in points:
        pr = predict(hw_of[p.network], p)
        el, ee = pr.errors(p)
        ok &= abs(el) <= tol[0] and abs(ee) <= tol[1]
        meas = p.energy_uj if p.energy_uj is not None else p.average_power_mw
        print(
            f"  {p.label:<40} {p.latency_us:>10.1f} {pr.latency_us:>10.1f} {100 * el:>+6.1f}%   "
            f"{meas:>10.4g} {pr.energy:>10.4g} {100 * ee:>+6.1f}% {_energy_name(p)}"
        )
    print(
        f"  targets latency +-{tol[0]:.0%}, energy +-{tol[1]:.0%}: "
        f"{'all met' if ok else 'NOT met'}\n"
    )
    return ok


def networks(points: list[Point]) -> list[str]:
    return list(dict.fromkeys(p.network for p in points))


def lono(base: HardwareConfig, points: list[Point], cache: dict) -> dict[str, HardwareConfig]:
    """Per network, the constants fitted on every other network's points."""
    return {
        n: fit(base, [p for p in points if p.network != n], cache)
        for n in networks(points)
        if any(p.network != n for p in points)
    }


def print_constants(fitted: HardwareConfig, folds: dict[str, HardwareConfig]) -> None:
    print("fitted constants (all points; and with each network held out)")
    print(f"  {'constant':<36} {'all':>9}" + "".join(f" {'w/o ' + n:>26}" for n in folds))
    for k in FITTED:
        print(
            f"  {k:<36} {getattr(fitted, k):>9g}"
            + "".join(f" {getattr(h, k):>26g}" for h in folds.values())
        )
    print()


def sensitivity(hw: HardwareConfig, points: list[Point]) -> None:
    """How each prediction moves (%) when one constant is raised by 10 %."""
    consts = [*FITTED, "idle_power_mw"]
    base = {p: predict(hw, p) for p in points}
    print("sensitivity: change of each prediction (%) for one constant +10 %")
    print("  " + ", ".join(f"({i + 1}) {c}" for i, c in enumerate(consts)))
    print(f"  {'prediction':<48}" + "".join(f" {f'({i + 1})':>7}" for i in range(len(consts))))
    moved = {}
    for c in consts:
        v = getattr(hw, c)
        bumped = hw.with_(**{c: type(v)(round(v * 1.1)) if isinstance(v, int) else v * 1.1})
        moved[c] = {p: predict(bumped, p) for p in points}
    for p in points:
        for what, unit in (("latency_us", "latency"), ("energy", _energy_name(p))):
            vals = [getattr(moved[c][p], what) / getattr(base[p], what) - 1 for c in consts]
            label = f"{p.label} {unit}"
            print(f"  {label:<48}" + "".join(f" {100 * v:>+6.1f}%" for v in vals))
    print()


def scan(base: HardwareConfig, points: list[Point], cache: dict) -> None:
    """Other arrays, each fitted like the preset's: whether two networks identify the array."""
    print("arrays fitted like the preset's (timing only): worst latency error on the fitted")
    print("points and on the held-out network; the array is fixed by argument, not by this")
    nets = networks(points)
    print(f"  {'array':<28} {'all: fit':>9}" + "".join(f" {'w/o ' + n:>30}" for n in nets))
    for m, r, c in itertools.product((1, 2, 4), (16, 32, 64, 128), (4, 8, 16)):
        hw = base.with_(
            macros_per_core=m,
            macro_rows=r,
            macro_cols=c,
            readout_columns_per_cycle=c,
            macro_weight_sets=max(1, base.weight_capacity_bytes // (m * r * c)),
        )
        if not 32 <= hw.peak_macs_per_cycle <= 256:
            continue
        cells = []
        for train in [nets, *([n2 for n2 in nets if n2 != n] for n in nets)]:
            pts = [p for p in points if p.network in train]
            h = fit(hw, pts, cache)
            lat = {p: _linear_latency(h, p, cache) for p in points}
            fit_err = max(abs(lat[p] / p.latency_us - 1) for p in pts)
            out = [abs(lat[p] / p.latency_us - 1) for p in points if p not in pts]
            cells.append((fit_err, max(out) if out else None))
        array = f"{m} x {r}x{c} (peak {hw.peak_macs_per_cycle:.0f})"
        text = f"  {array:<28} {100 * cells[0][0]:>8.1f}%"
        for fe, he in cells[1:]:
            cell = f"fit {100 * fe:.1f}% held-out {100 * he:.1f}%"
            text += f" {cell:>30}"
        print(text)
    print()


def _linear_latency(hw: HardwareConfig, p: Point, cache: dict) -> float:
    f = features(hw, p.model, cache)
    op = hw.with_(clock_mhz=p.clock_mhz)
    cycles = f.cycles + f.positions * hw.position_cycles + f.setups * op.layer_setup_total_cycles
    return cycles / p.clock_mhz


def plot(path: Path, fitted, folds, points: list[Point]) -> None:
    """Measured vs simulated, calibration fit and held-out predictions (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install matplotlib)") from None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for i, (ax, what) in enumerate(zip(axes, ("latency", "energy"), strict=True)):
        for tol, shade in ((LONO_TOL[i], 0.08), (CAL_TOL[i], 0.12)):
            ax.axhspan(-100 * tol, 100 * tol, color="tab:green", alpha=shade, lw=0)
        series = (
            (lambda p: fitted, "o", "fitted on all (band: calibration target)"),
            (lambda p: folds[p.network], "x", "held out: fit on the others (band: LONO target)"),
        )
        for hw_of, marker, name in series:
            xs, ys = [], []
            for p in points:
                err = predict(hw_of(p), p).errors(p)[i]
                meas = p.energy_uj if p.energy_uj is not None else p.average_power_mw
                xs.append(p.latency_us / 1e3 if i == 0 else meas)
                ys.append(100 * err)
            ax.scatter(xs, ys, marker=marker, s=60, label=name)
            if marker == "o":
                for p, x, y in zip(points, xs, ys, strict=True):
                    short = f"{p.network.split('_')[0]} {p.voltage_v:g} V"
                    ax.annotate(
                        short, (x, y), fontsize=8, xytext=(6, 4), textcoords="offset points"
                    )
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(-100 * LONO_TOL[i] * 1.6, 100 * LONO_TOL[i] * 1.6)
        unit = "ms" if i == 0 else "uJ per inference; mW average if always-on"
        ax.set_xlabel(f"measured {what} ({unit})")
        ax.set_ylabel("simulated / measured - 1 (%)")
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("ndpsim vs measured silicon: the calibration fit and leave-one-network-out")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def saved_config(fitted: HardwareConfig, base: HardwareConfig, args) -> str:
    """The calibrated hardware as a file `--config` loads: the preset and the fitted fields, or
    (started from a config file) every field."""
    import yaml

    head = f"# calibrated by benchmarks/calibrate_ndp120.py on {args.measurements.name}\n"
    if args.config:
        return head + yaml.safe_dump(fitted.model_dump(mode="json"), sort_keys=False)
    keep = {k: getattr(fitted, k) for k in (*FITTED, "layer_setup_cycles")}
    return head + yaml.safe_dump({"preset": base.name, **keep}, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--measurements", type=Path, default=DEFAULT_CSV, help="CSV (see above)")
    ap.add_argument("--preset", default=None, help="starting preset (default ndp120)")
    ap.add_argument("--config", type=Path, default=None, help="starting hardware file")
    ap.add_argument("--plot", type=Path, default=None, help="write measured-vs-simulated PNG")
    ap.add_argument("--save", type=Path, default=None, help="write the calibrated config YAML")
    ap.add_argument("--scan", action="store_true", help="also fit other arrays (identifiability)")
    ap.add_argument("--debug", action="store_true", help="tracebacks instead of one-line errors")
    args = ap.parse_args(argv)
    try:
        return _main(args)
    except (InputError, UserError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(args) -> int:
    if args.preset and args.config:
        raise InputError("give --preset or --config, not both")
    base = load_config(args.config) if args.config else load_preset(args.preset or "ndp120")
    points = read_measurements(args.measurements)
    cache: dict = {}
    fitted = fit(base, points, cache)
    folds = lono(base, points, cache)
    print_constants(fitted, folds)
    ok = table(
        "calibration: every point, constants fitted on all points",
        {n: fitted for n in networks(points)},
        points,
        CAL_TOL,
    )
    if folds:
        ok &= table(
            "leave-one-network-out: each network predicted by a fit on the others",
            folds,
            points,
            LONO_TOL,
        )
    sensitivity(fitted, points)
    if args.scan:
        scan(base, points, cache)
    if args.plot:
        plot(args.plot, fitted, folds or {n: fitted for n in networks(points)}, points)
        print(f"wrote {args.plot}")
    if args.save:
        args.save.write_text(saved_config(fitted, base, args))
        print(f"wrote {args.save}")
    print("all targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
