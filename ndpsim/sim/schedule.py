"""The core's timing half: every instruction's start and end cycle on its unit and the event
counters it bumps (docs/machine_model.md's timing equations). Never depends on data: the
arithmetic (core.execute_program) runs after it, or not at all for timing-only runs.

Carries ISA_DIGEST like the other kernel modules (numba's cache does not see isa.toml).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

ISA_DIGEST = "a1607d4aa61826c5"


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


@njit(cache=True)
def _ceil_div(a, b):
    return -((-a) // b)


@njit(cache=True)
def _duration(ins, t):
    """Cycles the instruction occupies its unit, and of those the compute-bound part."""
    op = ins["op"]
    if op == OP_MVM:
        in_cyc = _ceil_div(np.int64(ins["a_bits"]), t.input_bits_per_cycle)
        # bit-sliced weights: cols outputs of w_bits each occupy cols * w_bits cell columns
        cell_cols = np.int64(ins["cols"]) * np.int64(ins["w_bits"])
        readout = max(1, _ceil_div(cell_cols, t.readout_columns_per_cycle * t.column_bits))
        compute = np.int64(ins["a2"]) * in_cyc * readout + t.macro_pipeline_cycles
        sram = np.int64(np.ceil(ins["bytes_in"] / t.sram_bytes_per_cycle))
        return max(compute, sram), compute
    if (
        op == OP_REQUANT
        or op == OP_ELTWISE
        or op == OP_POOL
        or op == OP_COPY
        or op == OP_SOFTMAX
        or op == OP_FUNC
    ):
        per = t.softmax_cycles_per_element if op == OP_SOFTMAX else 1
        compute = _ceil_div(ins["work"], t.vector_lanes) * per + t.vector_pipeline_cycles
        sram = np.int64(np.ceil((ins["bytes_in"] + ins["bytes_out"]) / t.sram_bytes_per_cycle))
        return max(compute, sram), compute
    if op == OP_LOAD_W or op == OP_LOAD_A or op == OP_STORE_A:
        nbytes = ins["bytes_in"] + ins["bytes_out"]
        return t.ext_mem_latency_cycles + np.int64(np.ceil(nbytes / t.ext_mem_bytes_per_cycle)), 0
    if op == OP_HOST_IN or op == OP_HOST_OUT:
        return np.int64(np.ceil((ins["bytes_in"] + ins["bytes_out"]) / t.sram_bytes_per_cycle)), 0
    if op == OP_NOP and ins["a0"] == 1:  # a layer setup: configuration + per-position sequencing
        return np.int64(t.layer_setup_cycles + np.int64(ins["a2"]) * t.position_cycles), np.int64(0)
    return np.int64(0), np.int64(0)  # other NOPs take 0 cycles


@njit(cache=True)
def _count(cnt, ins, dur, compute, in_cycles):
    op = ins["op"]
    cnt[C_INSTR] += 1
    n = np.int64(ins["a2"])
    rows, cols = np.int64(ins["rows"]), np.int64(ins["cols"])
    if op == OP_MVM:
        cnt[C_MACS] += ins["work"]
        cnt[C_VEC] += n
        cnt[C_INCYC] += n * in_cycles
        cnt[C_CELL] += n * rows * cols * ins["w_bits"] * ins["a_bits"]
        cnt[C_ROWACT] += n * in_cycles * rows
        cnt[C_READOUT] += n * in_cycles * cols
        cnt[C_ACCADD] += n * cols
        cnt[C_SRAM_R] += ins["bytes_in"]
        cnt[C_MBUSY] += dur
        cnt[C_MCOMP] += compute
    elif op == OP_REQUANT:
        cnt[C_VOPS] += ins["work"]
        cnt[C_SRAM_W] += ins["bytes_out"]
        cnt[C_VBUSY] += dur
        cnt[C_VCOMP] += compute
    elif op == OP_ELTWISE or op == OP_POOL or op == OP_COPY or op == OP_SOFTMAX:
        cnt[C_VOPS] += ins["work"] * (3 if op == OP_SOFTMAX else 1)
        if op == OP_SOFTMAX:
            cnt[C_LUT] += ins["work"]
        cnt[C_SRAM_R] += ins["bytes_in"]
        cnt[C_SRAM_W] += ins["bytes_out"]
        cnt[C_VBUSY] += dur
        cnt[C_VCOMP] += compute
    elif op == OP_FUNC:
        cnt[C_VOPS] += ins["work"]
        cnt[C_LUT] += n
        cnt[C_SRAM_R] += ins["bytes_in"]
        cnt[C_SRAM_W] += ins["bytes_out"]
        cnt[C_VBUSY] += dur
        cnt[C_VCOMP] += compute
    elif op == OP_LOAD_W:
        cnt[C_EXT_R] += ins["bytes_in"]
        cnt[C_WW] += ins["bytes_in"]
        cnt[C_DBUSY] += dur
    elif op == OP_LOAD_A:
        cnt[C_EXT_R] += ins["bytes_in"]
        cnt[C_SRAM_W] += ins["bytes_in"]
        cnt[C_DBUSY] += dur
    elif op == OP_STORE_A:
        cnt[C_SRAM_R] += ins["bytes_out"]
        cnt[C_EXT_W] += ins["bytes_out"]
        cnt[C_DBUSY] += dur
    elif op == OP_HOST_IN:
        cnt[C_HOST] += ins["bytes_in"]
        cnt[C_SRAM_W] += ins["bytes_in"]
        cnt[C_DBUSY] += dur
    elif op == OP_HOST_OUT:
        cnt[C_HOST] += ins["bytes_out"]
        cnt[C_SRAM_R] += ins["bytes_out"]
        cnt[C_DBUSY] += dur


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
