"""Turn a run's counters and timeline into a SimulationReport."""

from __future__ import annotations

import numpy as np

from ndpsim import __version__
from ndpsim.config import HardwareConfig
from ndpsim.isa import Counter as C
from ndpsim.isa import Opcode, Unit
from ndpsim.lower.program import Program
from ndpsim.report.energy import COMPONENTS, clock_pj, dynamic_pj, static_pj, static_power_mw
from ndpsim.report.schema import Agreement, IdleLayer, LayerReport, SimulationReport
from ndpsim.sim.run import RunResult


def layer_spans(program: Program, res: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """First start and last end cycle of every layer's instructions (0, 0 for none)."""
    n = len(program.layers)
    layer = program.instrs["layer"].astype(np.int64)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.zeros(n, dtype=np.int64)
    np.minimum.at(first, layer, res.start)
    np.maximum.at(last, layer, res.end)
    first[first == np.iinfo(np.int64).max] = 0
    return first, last


def _macro_cells(program: Program, hw: HardwareConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Per layer: useful weight-bit cells (MACs x w_bits) and bit cells offered (vectors x
    rows x cell columns), the two sides of utilization; and the whole model's useful
    bit-cell input cycles (MACs x w_bits x input cycles)."""
    ins = program.instrs[program.instrs["op"] == Opcode.MVM]
    f64 = np.float64
    used = np.zeros(len(program.layers), dtype=f64)
    offered = np.zeros(len(program.layers), dtype=f64)
    in_cycles = np.ceil(ins["a_bits"].astype(f64) / hw.input_bits_per_cycle)
    np.add.at(used, ins["layer"], ins["work"].astype(f64) * ins["w_bits"])
    np.add.at(offered, ins["layer"], ins["a2"].astype(f64) * hw.macro_rows * hw.cell_columns)
    busy = float(np.sum(ins["work"].astype(f64) * ins["w_bits"] * in_cycles))
    return used, offered, busy


def _bound(cnt: np.ndarray, kind: str) -> str:
    if kind in ("alias",) or cnt[C.INSTRUCTIONS] == 0:
        return "none"
    macro, vec, dma = cnt[C.MACRO_BUSY_CYCLES], cnt[C.VECTOR_BUSY_CYCLES], cnt[C.DMA_BUSY_CYCLES]
    if dma >= max(macro, vec) and dma > 0:
        return "memory"
    if macro >= vec:
        return "compute" if cnt[C.MACRO_COMPUTE_CYCLES] >= macro else "memory"
    return "vector" if cnt[C.VECTOR_COMPUTE_CYCLES] >= vec else "memory"


def build_report(
    program: Program,
    res: RunResult,
    hw: HardwareConfig,
    *,
    model: str,
    model_sha256: str,
    mode: str,
    agreement: list[Agreement] | None = None,
    outputs: dict[str, list] | None = None,
    with_layers: bool = True,  # False: totals only, `layers` left empty (fast, for sweeps)
) -> SimulationReport:
    cycles = res.cycles
    dyn = dynamic_pj(res.counters, hw)
    first, last = layer_spans(program, res)
    span = last - first
    used, offered, used_bit_cycles = _macro_cells(program, hw)
    layers = []
    for i, lay in enumerate(program.layers if with_layers else ()):
        cnt = res.counters[i]
        parts = {k: float(dyn[k][i]) / 1e6 for k in dyn}
        parts["clock"] = float(clock_pj(span[i], hw)) / 1e6
        parts["leakage"] = float(static_pj(span[i], hw)) / 1e6
        layers.append(
            LayerReport(
                name=lay.name,
                op_type=lay.op_type,
                kind=lay.kind,
                fused=list(lay.fused),
                start_cycle=int(first[i]),
                end_cycle=int(last[i]),
                cycles=int(span[i]),
                bound=_bound(cnt, lay.kind),
                macs=lay.macs,
                params=lay.params,
                weight_bytes=lay.weight_bytes,
                tiles=lay.tiles,
                folds_k=lay.folds_k,
                folds_cout=lay.folds_cout,
                weights_resident=lay.weights_resident,
                macro_utilization=float(used[i] / offered[i]) if offered[i] else 0.0,
                macro_busy_cycles=int(cnt[C.MACRO_BUSY_CYCLES]),
                vector_busy_cycles=int(cnt[C.VECTOR_BUSY_CYCLES]),
                dma_busy_cycles=int(cnt[C.DMA_BUSY_CYCLES]),
                energy_uj=sum(parts.values()),
                energy_breakdown_uj=parts,
                sram_read_bytes=int(cnt[C.SRAM_READ_BYTES]),
                sram_write_bytes=int(cnt[C.SRAM_WRITE_BYTES]),
                ext_read_bytes=int(cnt[C.EXT_READ_BYTES]),
                ext_write_bytes=int(cnt[C.EXT_WRITE_BYTES]),
                peak_activation_bytes=lay.peak_activation_bytes,
                output_shape=list(lay.output_shape),
                w_bits=lay.w_bits,
                a_bits=lay.a_bits,
                in_bits=lay.in_bits,
            )
        )
    total = res.counters.sum(axis=0)
    breakdown = {k: float(dyn[k].sum()) / 1e6 for k in dyn}
    breakdown["clock"] = float(clock_pj(cycles, hw)) / 1e6
    breakdown["leakage"] = float(static_pj(cycles, hw)) / 1e6
    breakdown = {k: breakdown[k] for k in COMPONENTS}
    util = {
        name: float(busy / cycles) if cycles else 0.0
        for name, busy in zip(program.unit_names, res.unit_busy, strict=True)
    }
    macs = int(total[C.MACS])
    # bit cells x input cycles used / offered: MACs / (peak x cycles) at the default bits
    offered_bit_cycles = hw.total_macros * hw.macro_rows * hw.cell_columns * cycles
    return SimulationReport(
        ndpsim_version=__version__,
        model=model,
        model_sha256=model_sha256,
        hardware=hw.model_dump(mode="json"),
        config_id=hw.config_id(),
        mode=mode,
        latency_cycles=cycles,
        latency_us=cycles / hw.clock_mhz,
        clock_mhz=hw.clock_mhz,
        voltage_v=hw.voltage_v,
        energy_uj=sum(breakdown.values()),
        energy_breakdown_uj=breakdown,
        dynamic_energy_uj=sum(v for k, v in breakdown.items() if k != "leakage"),
        static_power_mw=static_power_mw(hw),
        traffic_bytes={
            "sram_read": int(total[C.SRAM_READ_BYTES]),
            "sram_write": int(total[C.SRAM_WRITE_BYTES]),
            "ext_read": int(total[C.EXT_READ_BYTES]),
            "ext_write": int(total[C.EXT_WRITE_BYTES]),
            "weight_write": int(total[C.WEIGHT_WRITE_BYTES]),
            "host": int(total[C.HOST_BYTES]),
        },
        utilization=util,
        macro_utilization=used_bit_cycles / offered_bit_cycles if cycles else 0.0,
        macs=macs,
        params=sum(lay.params for lay in program.layers),
        weight_bytes=program.weight_bytes,
        weight_capacity_bytes=hw.weight_capacity_bytes,
        weights_resident=program.weights_resident,
        peak_activation_bytes=program.peak_activation_bytes,
        sram_bytes=hw.sram_bytes,
        spilled_tensors=program.spilled,
        fits_on_chip=(
            program.weights_resident and not program.spilled and _branches_fit(program, hw)
        ),  # fmt: skip
        instructions=int(total[C.INSTRUCTIONS]),
        layers=layers,
        branches={b.name: "then" if b.taken else "else" for b in program.graph.branches},
        idle_branch_layers=[
            IdleLayer(name=ly.name, tiles=ly.tiles, weight_bytes=ly.weight_bytes)
            for ly in program.idle_layers
        ],  # fmt: skip
        agreement=agreement or [],
        outputs=outputs,
    )


def _branches_fit(program: Program, hw: HardwareConfig) -> bool:
    """Whether the weights of every data branch, run or not, fit the macros' weight sets."""
    if not program.idle_layers:
        return True
    tiles = sum(ly.tiles for ly in program.layers + program.idle_layers if ly.kind == "mac")
    return tiles <= hw.total_macros * hw.macro_weight_sets


def unit_class_busy(program: Program, res: RunResult) -> dict[str, int]:
    """Busy cycles summed per unit class (MACRO / VECTOR / DMA)."""
    return {u.name: int(res.unit_busy[program.unit_class == int(u)].sum()) for u in Unit}
