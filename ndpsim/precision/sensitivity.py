"""`ndpsim precision`: what each layer's bits cost and buy, and a suggested assignment.

For every layer and bit width (all other layers at the hardware's default bits) the model is
lowered at those bits, quantized from ranges calibrated once on the float datapath (ranges
do not depend on bits), run on the evaluation inputs, and compared with the float reference
(onnxruntime, else ndpsim's float datapath): output SQNR, latency and energy. The suggestion
is greedy (docs/quantization.md, "Choosing bits per layer"): moves (layer, weights or
activations, fewer bits) are tried in order of energy saved per dB of SQNR lost in the table,
each one measured on the whole model with the moves already taken, and kept when the model
still meets the target SQNR (or, with an energy budget, while the budget is not yet met).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.errors import ConfigError
from ndpsim.inputs import calibration_inputs, load_npz, random_inputs
from ndpsim.options import SimOptions
from ndpsim.quant.bind import bind
from ndpsim.quant.ptq import plan_from_ranges
from ndpsim.report.agreement import sqnr_db
from ndpsim.session import Session
from ndpsim.sim.calibrate import collect_ranges
from ndpsim.sim.run import read_value, run


@dataclass(frozen=True)
class Point:
    """One precision assignment measured: output SQNR (dB) over the evaluation inputs,
    latency (us) and energy (uJ) of one inference."""

    sqnr_db: float
    latency_us: float
    energy_uj: float


@dataclass(frozen=True)
class Row:
    layer: str
    op_type: str
    dim: str  # "w" (weights) or "a" (the activations the layer writes)
    bits: int
    point: Point


@dataclass
class Suggestion:
    rules: dict[str, str]  # layer -> bits text, e.g. {"conv_1": "w4", "conv_2": "w2a4"}
    point: Point
    goal: str
    met: bool
    tried: int = 0
    log: list[str] = field(default_factory=list)


class Evaluator:
    """Lowers, quantizes and runs one model at any precision rules, sharing the calibration
    ranges, the evaluation inputs and the float reference between assignments."""

    def __init__(self, model: Path, hw: HardwareConfig, opts: SimOptions, n_eval: int):
        self.model, self.hw, self.opts = model, hw, opts
        self.session = Session(model, input_shapes=opts.input_shapes)
        self.graph = self.session.graph
        if self.graph.quant is not None:
            raise ConfigError(
                f"{model}: the model is already quantized; `ndpsim precision` explores the "
                "bits of float models"
            )
        if opts.inputs:
            self.inputs = load_npz(opts.inputs, self.graph)
        else:
            self.inputs = [random_inputs(self.graph, opts.seed + i) for i in range(n_eval)]
        base = self.session.program(hw)
        self.layers = base.layers
        calib = calibration_inputs(self.graph, opts, self.inputs)
        self.ranges = collect_ranges(base, hw, calib, opts.ptq)
        # onnxruntime, else the simulator's float datapath (the same for every sample)
        refs = [self.session.reference(base, hw, x)[1] for x in self.inputs]
        self.reference = np.concatenate(
            [np.asarray(r[o], np.float64).reshape(-1) for r in refs for o in base.outputs]
        )
        self.outputs = base.outputs
        self.evaluations = 0

    def evaluate(self, rules: list[str]) -> Point:
        program = self.session.program(self.hw, rules)
        plan = plan_from_ranges(program, self.ranges, self.hw.preactivation_bits)
        params = bind(program, plan)
        got, res = [], None
        for x in self.inputs:
            res = run(program, self.hw, params, x, plan)
            got += [read_value(program, res, o, plan).reshape(-1) for o in self.outputs]
        rep = self.session.report(program, res, self.hw, "full")
        self.evaluations += 1
        return Point(sqnr_db(self.reference, np.concatenate(got)), rep.latency_us, rep.energy_uj)


def candidates(ev: Evaluator, bits: list[int]) -> list[tuple[str, str, str, int]]:
    """(layer, op type, dim, bits) below the default that the hardware supports: weights of
    MAC layers, activations written by MAC, vector and input layers."""
    hw = ev.hw
    out = []
    for lay in ev.layers:
        if lay.kind == "mac":
            out += [(lay.name, lay.op_type, "w", b) for b in bits
                    if b < hw.weight_bits and b in hw.supported_weight_bits]  # fmt: skip
        if lay.kind in ("mac", "vector") or lay.op_type == "Input":
            out += [(lay.name, lay.op_type, "a", b) for b in bits
                    if b < hw.activation_bits and b in hw.supported_activation_bits]  # fmt: skip
    return out


def sensitivity(
    ev: Evaluator, bits: list[int], progress: Callable[[int], None] | None = None
) -> tuple[Point, list[Row]]:
    """The baseline (all default bits) and one row per candidate (layer, dim, bits)."""
    base = ev.evaluate([])
    rows = []
    for name, op, dim, b in candidates(ev, bits):
        rows.append(Row(name, op, dim, b, ev.evaluate([f"{_glob(name)}={dim}{b}"])))
        if progress:
            progress(1)
    return base, rows


def _glob(name: str) -> str:
    """A layer name as a glob matching only itself ([ ] * ? escaped)."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in name)


def _rules_of(assign: dict[tuple[str, str], int]) -> dict[str, str]:
    per: dict[str, str] = {}
    for (name, dim), b in sorted(assign.items(), key=lambda kv: (kv[0][0], kv[0][1] != "w")):
        per[name] = per.get(name, "") + f"{dim}{b}"
    return per


def suggest(
    ev: Evaluator,
    base: Point,
    rows: list[Row],
    target_sqnr_db: float | None = None,
    energy_budget_uj: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> Suggestion:
    """Greedy assignment (module docstring): with a target SQNR, keep every move after which
    the model still meets it; with an energy budget, take moves until the budget is met."""
    if target_sqnr_db is None and energy_budget_uj is None:
        target_sqnr_db = base.sqnr_db - 3.0
    goal = (
        f"energy <= {energy_budget_uj:g} uJ"
        if energy_budget_uj is not None
        else f"SQNR >= {target_sqnr_db:.1f} dB"
    )

    def score(r: Row) -> float:  # energy saved per dB lost (a gain counts as 0.1 dB lost)
        return (base.energy_uj - r.point.energy_uj) / max(0.1, base.sqnr_db - r.point.sqnr_db)

    moves = sorted((r for r in rows if r.point.energy_uj < base.energy_uj), key=score,
                   reverse=True)  # fmt: skip
    assign: dict[tuple[str, str], int] = {}
    point = base
    sug = Suggestion({}, base, goal, False)
    for r in moves:
        if energy_budget_uj is not None and point.energy_uj <= energy_budget_uj:
            break
        key = (r.layer, r.dim)
        if key in assign and assign[key] <= r.bits:
            continue
        trial = {**assign, key: r.bits}
        rules = [f"{_glob(n)}={b}" for n, b in _rules_of(trial).items()]
        p = ev.evaluate(rules)
        sug.tried += 1
        if progress:
            progress(1)
        ok = p.energy_uj < point.energy_uj and (
            energy_budget_uj is not None or p.sqnr_db >= target_sqnr_db
        )
        sug.log.append(f"{r.layer} {r.dim}{r.bits}: {p.sqnr_db:.1f} dB, {p.energy_uj:.4f} uJ "
                       f"{'kept' if ok else 'rejected'}")  # fmt: skip
        if ok:
            assign, point = trial, p
    sug.rules, sug.point = _rules_of(assign), point
    sug.met = (
        point.energy_uj <= energy_budget_uj
        if energy_budget_uj is not None
        else point.sqnr_db >= target_sqnr_db
    )
    return sug


def render(model: str, hw: HardwareConfig, base: Point, rows: list[Row], sug: Suggestion) -> str:
    """The sensitivity table and the suggestion, as text."""
    head = (
        f"{'layer':<24} {'op':<12} {'bits':>5} {'SQNR dB':>8} {'dSQNR':>7} "
        f"{'latency us':>11} {'saved':>7} {'energy uJ':>10} {'saved':>7}"
    )
    lines = [
        f"precision sensitivity of {model} on {hw.name}: one layer at a time, the others at "
        f"w{hw.weight_bits}a{hw.activation_bits}",
        f"baseline  SQNR {base.sqnr_db:.1f} dB, latency {base.latency_us:,.2f} us, "
        f"energy {base.energy_uj:.4f} uJ",
        "",
        head,
        "-" * len(head),
    ]
    for r in rows:
        p = r.point
        lines.append(
            f"{r.layer[:24]:<24} {r.op_type[:12]:<12} {f'{r.dim}{r.bits}':>5} "
            f"{p.sqnr_db:>8.1f} {p.sqnr_db - base.sqnr_db:>+7.1f} {p.latency_us:>11,.2f} "
            f"{_pct(base.latency_us, p.latency_us):>7} {p.energy_uj:>10.4f} "
            f"{_pct(base.energy_uj, p.energy_uj):>7}"
        )
    lines += ["", f"suggested assignment ({sug.goal}; greedy, {sug.tried} trials): "
              + ("met" if sug.met else "NOT met")]  # fmt: skip
    for name, bits in sug.rules.items():
        lines.append(f"  {name}={bits}")
    if not sug.rules:
        lines.append("  (no layer below the default bits)")
    p = sug.point
    lines.append(
        f"  -> SQNR {p.sqnr_db:.1f} dB, latency {p.latency_us:,.2f} us "
        f"({_pct(base.latency_us, p.latency_us)} saved), energy {p.energy_uj:.4f} uJ "
        f"({_pct(base.energy_uj, p.energy_uj)} saved)"
    )
    return "\n".join(lines)


def _pct(base: float, new: float) -> str:
    return f"{100 * (base - new) / base:.1f}%" if base else "-"
