"""The core's timing half: every instruction's start and end cycle on its unit and the event
counters it bumps (docs/machine_model.md's timing equations). Never depends on data: the
arithmetic (core.execute_program) runs after it, or not at all for timing-only runs.

Each opcode's equation is its timing class's (isa/isa.toml: OP_TIMING), so a new opcode of
an existing class is timed and counted with no edit here. KERNELS_DIGEST: see
ndpsim/isa_gen.py.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

KERNELS_DIGEST = "dd8666560c8ec52d"


class Timing(NamedTuple):
    """Timing parameters of the machine (HardwareConfig fields that do not change programs)."""

    input_bits_per_cycle: int
    readout_columns_per_cycle: int
    macro_pipeline_cycles: int
    vector_lanes: int
    vector_pipeline_cycles: int
    softmax_cycles_per_element: int
    sram_bytes_per_cycle: float
    ext_mem_bytes_per_cycle: float
    ext_mem_latency_cycles: int
    instruction_issue_cycles: int
    layer_setup_cycles: int = 0  # a setup NOP (a0 = 1): per-layer configuration time
    column_bits: int = 8  # bit-cell columns behind one readout column (macro_column_bits)
    position_cycles: int = 0  # a setup NOP's per output position (its a2) sequencing time


@njit(inline="always")
def _ceil_div(a, b):
    return -((-a) // b)


@njit(cache=True)
def _duration(ins, t):
    """Cycles the instruction occupies its unit, and of those the compute-bound part: the
    equation of the opcode's timing class (isa/isa.toml)."""
    op = ins["op"]
    cls = OP_TIMING[op]
    if cls == T_MACRO:
        in_cyc = _ceil_div(np.int64(ins["a_bits"]), t.input_bits_per_cycle)
        # bit-sliced weights: cols outputs of w_bits each occupy cols * w_bits cell columns
        cell_cols = np.int64(ins["cols"]) * np.int64(ins["w_bits"])
        readout = max(1, _ceil_div(cell_cols, t.readout_columns_per_cycle * t.column_bits))
        compute = np.int64(ins["a2"]) * in_cyc * readout + t.macro_pipeline_cycles
        sram = np.int64(np.ceil(ins["bytes_in"] / t.sram_bytes_per_cycle))
        return max(compute, sram), compute
    if cls == T_VECTOR:
        per = t.softmax_cycles_per_element if op == OP_SOFTMAX else 1
        compute = _ceil_div(ins["work"], t.vector_lanes) * per + t.vector_pipeline_cycles
        sram = np.int64(np.ceil((ins["bytes_in"] + ins["bytes_out"]) / t.sram_bytes_per_cycle))
        return max(compute, sram), compute
    if cls == T_EXT_MEM:
        nbytes = ins["bytes_in"] + ins["bytes_out"]
        return t.ext_mem_latency_cycles + np.int64(np.ceil(nbytes / t.ext_mem_bytes_per_cycle)), 0
    if cls == T_HOST:
        return np.int64(np.ceil((ins["bytes_in"] + ins["bytes_out"]) / t.sram_bytes_per_cycle)), 0
    if op == OP_NOP and ins["a0"] == 1:  # T_CONTROL: a layer setup, then per-position sequencing
        return np.int64(t.layer_setup_cycles + np.int64(ins["a2"]) * t.position_cycles), np.int64(0)
    return np.int64(0), np.int64(0)  # other NOPs take 0 cycles


@njit(cache=True)
def _count(cnt, ins, dur, compute, in_cycles):
    """Bump the counters the opcode declares in isa/isa.toml: by timing class, with the
    opcodes that count differently named."""
    op = ins["op"]
    cls = OP_TIMING[op]
    cnt[C_INSTRUCTIONS] += 1
    n = np.int64(ins["a2"])
    rows, cols = np.int64(ins["rows"]), np.int64(ins["cols"])
    if cls == T_MACRO:
        cnt[C_MACS] += ins["work"]
        cnt[C_MACRO_VECTORS] += n
        cnt[C_MACRO_INPUT_CYCLES] += n * in_cycles
        cnt[C_MACRO_CELL_BIT_OPS] += n * rows * cols * ins["w_bits"] * ins["a_bits"]
        cnt[C_MACRO_ROW_ACTIVATIONS] += n * in_cycles * rows
        cnt[C_READOUT_CONVERSIONS] += n * in_cycles * cols
        cnt[C_ACCUMULATOR_ADDS] += n * cols
        cnt[C_SRAM_READ_BYTES] += ins["bytes_in"]
        cnt[C_MACRO_BUSY_CYCLES] += dur
        cnt[C_MACRO_COMPUTE_CYCLES] += compute
    elif cls == T_VECTOR:
        cnt[C_VECTOR_ELEMENT_OPS] += ins["work"] * (3 if op == OP_SOFTMAX else 1)
        if op == OP_MATMUL:  # a product of two activations: its work is its MACs
            cnt[C_MACS] += ins["work"]
        if op == OP_SOFTMAX:
            cnt[C_VECTOR_LUT_OPS] += ins["work"]
        if op == OP_FUNC:
            cnt[C_VECTOR_LUT_OPS] += n
        if op != OP_REQUANT:  # REQUANT reads the accumulator, not SRAM
            cnt[C_SRAM_READ_BYTES] += ins["bytes_in"]
        cnt[C_SRAM_WRITE_BYTES] += ins["bytes_out"]
        cnt[C_VECTOR_BUSY_CYCLES] += dur
        cnt[C_VECTOR_COMPUTE_CYCLES] += compute
    elif op == OP_LOAD_W:
        cnt[C_EXT_READ_BYTES] += ins["bytes_in"]
        cnt[C_WEIGHT_WRITE_BYTES] += ins["bytes_in"]
    elif op == OP_LOAD_A:
        cnt[C_EXT_READ_BYTES] += ins["bytes_in"]
        cnt[C_SRAM_WRITE_BYTES] += ins["bytes_in"]
    elif op == OP_STORE_A:
        cnt[C_SRAM_READ_BYTES] += ins["bytes_out"]
        cnt[C_EXT_WRITE_BYTES] += ins["bytes_out"]
    elif op == OP_HOST_IN:
        cnt[C_HOST_BYTES] += ins["bytes_in"]
        cnt[C_SRAM_WRITE_BYTES] += ins["bytes_in"]
    elif op == OP_HOST_OUT:
        cnt[C_HOST_BYTES] += ins["bytes_out"]
        cnt[C_SRAM_READ_BYTES] += ins["bytes_out"]
    if cls == T_EXT_MEM or cls == T_HOST:
        cnt[C_DMA_BUSY_CYCLES] += dur


@njit(cache=True)
def schedule(instrs, timing, n_units, n_tokens, n_layers):
    """(counters[layer, counter], unit_busy[unit], start[instr], end[instr])."""
    n = instrs.shape[0]
    counters = np.zeros((n_layers, N_COUNTERS), dtype=np.int64)
    unit_free = np.zeros(n_units, dtype=np.int64)
    unit_busy = np.zeros(n_units, dtype=np.int64)
    token_ready = np.zeros(max(n_tokens, 1), dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    for i in range(n):
        ins = instrs[i]
        u = ins["unit"]
        t0 = np.int64(i) * timing.instruction_issue_cycles
        if unit_free[u] > t0:
            t0 = unit_free[u]
        if ins["wait0"] >= 0 and token_ready[ins["wait0"]] > t0:
            t0 = token_ready[ins["wait0"]]
        if ins["wait1"] >= 0 and token_ready[ins["wait1"]] > t0:
            t0 = token_ready[ins["wait1"]]
        if ins["wait2"] >= 0 and token_ready[ins["wait2"]] > t0:
            t0 = token_ready[ins["wait2"]]
        dur, compute = _duration(ins, timing)
        t1 = t0 + dur
        start[i] = t0
        end[i] = t1
        unit_free[u] = t1
        unit_busy[u] += dur
        if ins["signal"] >= 0 and token_ready[ins["signal"]] < t1:
            token_ready[ins["signal"]] = t1
        in_cycles = _ceil_div(np.int64(ins["a_bits"]), timing.input_bits_per_cycle)
        _count(counters[ins["layer"]], ins, dur, compute, in_cycles)
    return counters, unit_busy, start, end
