"""Measure a model on the simulator: one row per executed kernel and one for the model.

Timing-only runs (no arithmetic): latency, counters and energy are those of a full run,
because timing never depends on data (docs/architecture.md). A kernel's latency is its
layer's span in the program (first start to last end); the spans of a chain of layers
tile the makespan, since each layer waits for its producer's "done" token.
"""

from __future__ import annotations

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.frontend import load_model
from ndpsim.isa import Counter as C
from ndpsim.lower import Program, lower
from ndpsim.report.build import layer_spans
from ndpsim.report.energy import COMPONENTS, clock_pj, dynamic_pj, static_pj
from ndpsim.sim.run import RunResult, run

# Simulator outputs recorded per kernel (and summed per model where that is meaningful).
OUTPUT_FIELDS = (
    "cycles",
    "compute_cycles",
    "stalled_cycles",
    "latency_us",
    "energy_pj",
    "dynamic_energy_pj",
    *(f"energy_{c}_pj" for c in COMPONENTS),
    "sram_read_bytes",
    "sram_write_bytes",
    "ext_read_bytes",
    "ext_write_bytes",
    "weight_write_bytes",
    "host_bytes",
    "peak_activation_bytes",
    "weights_resident",
    "instructions",
)


def warm_up() -> None:
    """Compile (or load from cache) the numba core once per process: a tiny program."""
    from ndpsim.zoo.builder import GraphBuilder

    b = GraphBuilder("warm", (1, 4, 4, 4))
    run(
        lower(load_model(b.build(b.conv(b.input, 4, 1)).SerializeToString()), HardwareConfig()),
        HardwareConfig(),
    )


def _per_layer(program: Program, res: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """Span and busiest-unit busy cycles of every layer."""
    n, u = len(program.layers), program.n_units
    layer = program.instrs["layer"].astype(np.int64)
    first, last = layer_spans(program, res)
    busy = np.zeros(n * u, dtype=np.int64)
    np.add.at(busy, layer * u + program.instrs["unit"].astype(np.int64), res.end - res.start)
    return np.maximum(last - first, 0), busy.reshape(n, u).max(axis=1)


def measure_program(program: Program, hw: HardwareConfig) -> tuple[list[dict], dict]:
    """(kernel rows, model row) of one lowered program on `hw`."""
    res = run(program, hw)
    span, crit = _per_layer(program, res)
    dyn = dynamic_pj(res.counters, hw)
    cnt = res.counters
    rows = []
    for i, layer in enumerate(program.layers):
        if layer.kernel is None:
            continue
        row = layer.kernel.as_row()
        parts = {c: float(dyn[c][i]) for c in dyn}
        parts["clock"] = float(clock_pj(span[i], hw))  # per active cycle, as report/build.py
        parts["leakage"] = float(static_pj(span[i], hw))
        row.update(
            cycles=int(span[i]),
            compute_cycles=int(crit[i]),
            stalled_cycles=int(span[i] - min(crit[i], span[i])),
            latency_us=float(span[i] / hw.clock_mhz),
            energy_pj=sum(parts.values()),
            dynamic_energy_pj=sum(v for c, v in parts.items() if c != "leakage"),
            **{f"energy_{c}_pj": parts[c] for c in COMPONENTS},
            sram_read_bytes=int(cnt[i, C.SRAM_READ_BYTES]),
            sram_write_bytes=int(cnt[i, C.SRAM_WRITE_BYTES]),
            ext_read_bytes=int(cnt[i, C.EXT_READ_BYTES]),
            ext_write_bytes=int(cnt[i, C.EXT_WRITE_BYTES]),
            weight_write_bytes=int(cnt[i, C.WEIGHT_WRITE_BYTES]),
            host_bytes=int(cnt[i, C.HOST_BYTES]),
            peak_activation_bytes=int(layer.peak_activation_bytes),
            weights_resident=bool(layer.weights_resident),
            instructions=int(cnt[i, C.INSTRUCTIONS]),
            macs=int(layer.macs),
            params=int(layer.params),
        )
        rows.append(row)
    total = cnt.sum(axis=0)
    parts = {c: float(dyn[c].sum()) for c in dyn}
    parts["clock"] = float(clock_pj(res.cycles, hw))
    parts["leakage"] = float(static_pj(res.cycles, hw))
    model = {
        "cycles": res.cycles,
        "latency_us": res.cycles / hw.clock_mhz,
        "energy_pj": sum(parts.values()),
        "dynamic_energy_pj": sum(v for c, v in parts.items() if c != "leakage"),
        **{f"energy_{c}_pj": parts[c] for c in COMPONENTS},
        "macs": int(total[C.MACS]),
        "params": sum(layer.params for layer in program.layers),
        "weight_bytes": program.weight_bytes,
        "peak_activation_bytes": program.peak_activation_bytes,
        "fits_on_chip": bool(program.weights_resident and not program.spilled),
        "instructions": int(total[C.INSTRUCTIONS]),
        "n_kernels": len(rows),
        "sum_kernel_cycles": int(sum(r["cycles"] for r in rows)),
    }
    return rows, model


def measure_onnx(model_bytes: bytes, hws: list[HardwareConfig]) -> list[tuple[list[dict], dict]]:
    """Import once, lower and time on every config."""
    graph = load_model(model_bytes)
    return [measure_program(lower(graph, hw), hw) for hw in hws]
