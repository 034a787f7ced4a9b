"""Run a Program on the numba core (or the reference interpreter): place inputs, execute and
time, read outputs back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.lower.program import Program
from ndpsim.quant.bind import Params
from ndpsim.quant.params import QuantPlan
from ndpsim.sim import core


def timing_of(hw: HardwareConfig) -> core.Timing:
    return core.Timing(
        input_bits_per_cycle=int(hw.input_bits_per_cycle),
        readout_columns_per_cycle=int(hw.readout_columns_per_cycle),
        macro_pipeline_cycles=int(hw.macro_pipeline_cycles),
        vector_lanes=int(hw.vector_lanes),
        vector_pipeline_cycles=int(hw.vector_pipeline_cycles),
        softmax_cycles_per_element=int(hw.softmax_cycles_per_element),
        sram_bytes_per_cycle=float(hw.sram_bytes_per_cycle),
        ext_mem_bytes_per_cycle=float(hw.ext_mem_bytes_per_cycle),
        ext_mem_latency_cycles=int(hw.ext_mem_latency_cycles),
        instruction_issue_cycles=int(hw.instruction_issue_cycles),
        layer_setup_cycles=int(hw.layer_setup_total_cycles),
        column_bits=int(hw.macro_column_bits),
        position_cycles=int(hw.position_cycles),
    )


@dataclass
class RunResult:
    counters: np.ndarray  # [layer, counter] int64
    unit_busy: np.ndarray  # [unit] cycles
    start: np.ndarray  # [instruction] cycle
    end: np.ndarray
    mem: np.ndarray | None  # the arena after the run (None for timing-only)

    @property
    def cycles(self) -> int:
        return int(self.end.max()) if self.end.size else 0


_EMPTY_I = (np.zeros(1, np.int32), np.zeros(1, np.int64))


def run(
    program: Program,
    hw: HardwareConfig,
    params: Params | None = None,
    inputs: dict[str, np.ndarray] | None = None,
    plan: QuantPlan | None = None,
    reference: bool = False,
) -> RunResult:
    """Time the program; with `params` and `inputs` also execute it. Inputs are float arrays,
    quantized here with `plan` (the host's job) unless the params are float."""
    runner = core.run_program
    if reference:
        from ndpsim.sim import reference as ref

        runner = ref.run_program
    timing = timing_of(hw)
    n_layers = len(program.layers)
    if params is None:  # timing only: no arithmetic, tiny dummy arrays
        mem, acc = _EMPTY_I
        counters, busy, start, end = runner(
            program.instrs,
            program.desc,
            program.tiles,
            np.zeros(1, np.float32),
            mem,
            mem,
            acc,
            timing,
            program.n_units,
            program.n_tokens,
            n_layers,
            False,
            False,
        )
        return RunResult(counters, busy, start, end, None)
    mem = params.fresh_arena()
    for name, x in (inputs or {}).items():
        p = program.placements[name]
        flat = np.asarray(x, np.float64).reshape(-1)
        if flat.size != p.size:
            raise ValueError(f"input {name!r}: {flat.size} elements, expected {p.size}")
        mem[p.addr : p.addr + p.size] = (
            flat if params.float_mode else plan.tensors[name].quantize(flat)
        )
    acc = np.zeros(program.acc_size, dtype=np.float32 if params.float_mode else np.int64)
    counters, busy, start, end = runner(
        program.instrs,
        params.desc,
        program.tiles,
        params.fparams,
        params.weights,
        mem,
        acc,
        timing,
        program.n_units,
        program.n_tokens,
        n_layers,
        True,
        params.float_mode,
    )
    return RunResult(counters, busy, start, end, mem)


def read_value(
    program: Program, result: RunResult, name: str, plan: QuantPlan | None, dequantize: bool = True
) -> np.ndarray:
    """A value of the program after a run, as a float array of its logical shape."""
    p = program.placements[name]
    raw = result.mem[p.addr : p.addr + p.size]
    if plan is not None and dequantize:
        raw = plan.tensors[name].dequantize(raw)
    return np.asarray(raw, np.float64).reshape(p.shape)
