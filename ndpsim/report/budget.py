"""Memory budgets: do the weights and the activations fit, which layers overflow and by how
much, and what to change.

Weights are counted as the macro cells they occupy (whole tiles: a partly used tile still
takes a weight set), those of data branches the run did not take included (both branches of
an If on run-time data stay resident), activations as the live bytes at each layer (the SRAM
plan's liveness).
The defaults are the part's own capacities: weight cells and activation SRAM.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.report.schema import SimulationReport

_BYTES = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmg]i?b?|b)?\s*$", re.I)
_UNIT = {"": 1, "b": 1}
for _k, _p in (("k", 1), ("m", 2), ("g", 3)):  # SI prefixes decimal, IEC (Ki, Mi) binary
    _UNIT |= {_k: 1000**_p, _k + "b": 1000**_p, _k + "i": 1024**_p, _k + "ib": 1024**_p}


class LayerMemory(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    weight_cell_bytes: int  # macro cells the layer's tiles occupy
    live_activation_bytes: int  # activations live while the layer runs (inputs + output + held)
    activation_overflow_bytes: int


class Budget(BaseModel):
    """Pass / fail of the weight and activation budgets with the per-layer detail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_budget_bytes: int
    weight_bytes: int  # macro cells occupied by all layers
    useful_weight_bytes: int  # the model's weights themselves
    activation_budget_bytes: int
    peak_activation_bytes: int
    weights_fit: bool
    activations_fit: bool
    layers: list[LayerMemory]
    advice: list[str]

    @property
    def ok(self) -> bool:
        return self.weights_fit and self.activations_fit


def parse_bytes(text: str, option: str) -> int:
    """'65536', '64KiB', '1MB', '1.5MiB': SI prefixes are decimal, IEC (Ki, Mi) binary."""
    m = _BYTES.match(str(text))
    if not m or (m.group(2) or "").lower() not in _UNIT:
        raise UserError(f"{option} expects a size such as 65536, 512KiB or 1MB, got {text!r}")
    n = int(float(m.group(1)) * _UNIT[(m.group(2) or "").lower()])
    if n <= 0:
        raise UserError(f"{option} must be positive, got {text!r}")
    return n


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def check(
    report: SimulationReport,
    hw: HardwareConfig,
    weight_budget: int | None = None,
    activation_budget: int | None = None,
) -> Budget:
    """Check `report`'s memory against the budgets (default: the part's capacities)."""
    w_budget = weight_budget if weight_budget is not None else hw.weight_capacity_bytes
    a_budget = activation_budget if activation_budget is not None else hw.sram_bytes
    tile_bytes = hw.macro_rows * hw.cell_columns // 8
    layers = [
        LayerMemory(
            name=lay.name,
            weight_cell_bytes=lay.tiles * tile_bytes,
            live_activation_bytes=lay.peak_activation_bytes,
            activation_overflow_bytes=max(0, lay.peak_activation_bytes - a_budget),
        )
        for lay in report.layers
        if lay.kind in ("mac", "vector")
    ]
    layers += [  # the data branches not run: resident beside the one that ran
        LayerMemory(name=lay.name, weight_cell_bytes=lay.tiles * tile_bytes,
                    live_activation_bytes=0, activation_overflow_bytes=0)
        for lay in report.idle_branch_layers
    ]  # fmt: skip
    w_total = sum(lay.weight_cell_bytes for lay in layers)
    peak = max([lay.live_activation_bytes for lay in layers] + [0])
    advice = []
    if w_total > w_budget:
        big = sorted(layers, key=lambda x: -x.weight_cell_bytes)[:3]
        advice.append(
            f"weights: {_kib(w_total)} of macro cells exceed the {_kib(w_budget)} budget by "
            f"{_kib(w_total - w_budget)}; largest: "
            + ", ".join(f"{x.name} {_kib(x.weight_cell_bytes)}" for x in big)
            + f"; fewer channels there, channel counts that fill {hw.macro_rows}x{hw.macro_cols}"
            " tiles, or a part with more weight sets"
        )
    over = [x for x in layers if x.activation_overflow_bytes > 0]
    if over:
        worst = sorted(over, key=lambda x: -x.activation_overflow_bytes)[:3]
        advice.append(
            f"activations: {len(over)} layer(s) need more than the {_kib(a_budget)} budget: "
            + ", ".join(f"{x.name} +{_kib(x.activation_overflow_bytes)}" for x in worst)
            + "; shrink their feature maps (stride, resolution or channels) or split the layer"
        )
    return Budget(
        weight_budget_bytes=w_budget,
        weight_bytes=w_total,
        useful_weight_bytes=report.weight_bytes
        + sum(lay.weight_bytes for lay in report.idle_branch_layers),
        activation_budget_bytes=a_budget,
        peak_activation_bytes=peak,
        weights_fit=w_total <= w_budget,
        activations_fit=not over,
        layers=layers,
        advice=advice,
    )


def render(b: Budget) -> str:
    verdict = "PASS" if b.ok else "FAIL"
    lines = [
        f"budget    {verdict}: weights {_kib(b.weight_bytes)} of {_kib(b.weight_budget_bytes)} "
        f"({'fits' if b.weights_fit else 'over'}; useful weights {_kib(b.useful_weight_bytes)}), "
        f"peak activations {_kib(b.peak_activation_bytes)} of {_kib(b.activation_budget_bytes)} "
        f"({'fits' if b.activations_fit else 'over'})",
        f"          {'layer':<28} {'weight cells':>13} {'live activations':>17} {'over by':>12}",
    ]
    for x in b.layers:
        over = _kib(x.activation_overflow_bytes) if x.activation_overflow_bytes else "-"
        lines.append(
            f"          {x.name[:28]:<28} {_kib(x.weight_cell_bytes):>13} "
            f"{_kib(x.live_activation_bytes):>17} {over:>12}"
        )
    lines += [f"  change: {a}" for a in b.advice]
    return "\n".join(lines)
