"""The numba core: executes a Program (bit-accurate) and times it, bumping event counters.

`run_program` is the entry point: the schedule (timing and counters: schedule.py), then the
arithmetic (`execute_program`). The arithmetic is dispatched from here, in Python, one run at
a time: a run is a stretch of instructions whose arithmetic one kernel does (consecutive
MVMs of one descriptor, or consecutive instructions of one vector opcode; instructions
without arithmetic in between are skipped by the kernel). Each opcode that has arithmetic
(isa.EXECUTES, from isa/isa.toml) has its entry point `run_<opcode>` in its unit's kernel
module, `kernels_<unit>.py`: the table `ENTRIES` is built from the ISA, so a model compiles
only the kernels of the opcodes it uses, and a new instruction needs no edit here. A call
costs about a microsecond (some 4,000 runs in the ResNet-50-sized network).

Semantics are specified by ndpsim/sim/reference.py, which this must match bit for bit (on
the float datapath, long MVM tiles to float32 rounding: kernels_mac.py).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import numpy as np

from ndpsim.isa import DESC_FIELDS, EXECUTES, OPCODE_UNIT, WRITES_ARENA, Opcode
from ndpsim.sim.kernels_mac import CHANNEL_BLOCK
from ndpsim.sim.kernels_macro import run_mvm_parallel
from ndpsim.sim.schedule import Timing, schedule  # noqa: F401 - Timing: part of this API

# Runs of MVMs with at least this many MACs are split over threads. On the ResNet-50-sized
# net 2^18..2^20 ran within 6% of each other; 2^22 split too few runs (463 vs 396 ms).
PARALLEL_MIN_MACS = 1 << 20

# opcode -> its kernel: kernels_<unit>.run_<opcode>, for every opcode with arithmetic
ENTRIES = {
    op: getattr(importlib.import_module(f"ndpsim.sim.kernels_{OPCODE_UNIT[op].name.lower()}"),
                f"run_{op.name.lower()}")
    for op in sorted(EXECUTES)
}  # fmt: skip
_EXECUTES = np.zeros(256, bool)  # indexed by opcode (a u1 field)
_EXECUTES[list(EXECUTES)] = True
_KH, _KW = DESC_FIELDS["conv"]["kh"], DESC_FIELDS["conv"]["kw"]


class Workspace(NamedTuple):
    """Per-thread MVM buffers (first index: thread) and each tile's max |w|: see
    kernels_macro.py."""

    xblk: np.ndarray
    sblk: np.ndarray
    off: np.ndarray
    xmax: np.ndarray
    last: np.ndarray
    wmax_tiles: np.ndarray


def workspace(instrs, desc, tiles, weights, acc, threads: int) -> Workspace:
    """Buffers for the program's largest MVM: pixels, tile rows and kernel window."""
    mvms = instrs[instrs["op"] == Opcode.MVM]
    max_n = max(1, int(mvms["a2"].max(initial=0)))
    rows = max(1, int((tiles[:, 3] - tiles[:, 2]).max(initial=0)))
    d = desc[mvms["desc"]]
    window = max(1, int((d[:, _KH] * d[:, _KW]).max(initial=0)))
    return Workspace(
        np.zeros((threads, rows * max_n), dtype=weights.dtype),
        np.zeros((threads, CHANNEL_BLOCK, max_n), dtype=acc.dtype),
        np.zeros((threads, max_n, window), dtype=np.int64),
        np.zeros(threads, dtype=np.int64),
        np.full((threads, 6), -1, dtype=np.int64),
        np.full(tiles.shape[0], -1, dtype=np.int64),
    )


def kernel_runs(instrs) -> list[tuple[int, int, int, int, int, int]]:
    """(opcode, first, end, MACs, first pixel, last pixel + 1) of every run, in program order:
    maximal stretches of instructions with arithmetic of one opcode (and, for MVMs, one
    descriptor: another's accumulators may overlap). MACs and pixels are the MVMs' (else 0)."""
    ops = instrs["op"]
    idx = np.flatnonzero(_EXECUTES[ops])
    if not idx.size:
        return []
    op = ops[idx].astype(np.int64)
    key = op << 32 | np.where(op == Opcode.MVM, instrs["desc"][idx].astype(np.int64), 0)
    starts = np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1]
    ends = np.r_[idx[starts[1:] - 1] + 1, idx[-1] + 1]
    sel = instrs[idx]
    mvm = op == Opcode.MVM
    a1 = sel["a1"].astype(np.int64)
    macs = np.add.reduceat(np.where(mvm, sel["work"], 0), starts)
    lo = np.minimum.reduceat(np.where(mvm, a1, 0), starts)
    hi = np.maximum.reduceat(np.where(mvm, a1 + sel["a2"], 0), starts)
    return list(zip(*(a.tolist() for a in (op[starts], idx[starts], ends, macs, lo, hi)),
                    strict=True))  # fmt: skip


def run_program(
    instrs,
    desc,
    tiles,
    fparams,
    weights,
    mem,
    acc,
    timing,
    n_units,
    n_tokens,
    n_layers,
    execute,
    float_mode,
    parallel_min_macs=None,
):
    """Execute (if `execute`) and time `instrs`. Returns (counters[layer, counter],
    unit_busy[unit], start[instr], end[instr]); the makespan is end.max(). Runs of MVMs of
    at least `parallel_min_macs` MACs (default PARALLEL_MIN_MACS) are shared out over numba's
    threads (-1: never)."""
    if parallel_min_macs is None:
        parallel_min_macs = PARALLEL_MIN_MACS
    out = schedule(instrs, timing, n_units, n_tokens, n_layers)
    if execute:  # the arithmetic never depends on the schedule
        runs = kernel_runs(instrs)
        threads = _threads(runs, parallel_min_macs)
        _execute(runs, instrs, desc, tiles, fparams, weights, mem, acc, float_mode,
                 parallel_min_macs, threads)  # fmt: skip
    return out


def execute_program(instrs, desc, tiles, fparams, weights, mem, acc, float_mode,
                    parallel_min_macs, threads):  # fmt: skip
    """The arithmetic of every instruction, in program order, with runs of MVMs of at least
    `parallel_min_macs` MACs split into `threads` slices (more than the machine's cores is
    allowed)."""
    _execute(kernel_runs(instrs), instrs, desc, tiles, fparams, weights, mem, acc, float_mode,
             parallel_min_macs, threads)  # fmt: skip


def _execute(runs, instrs, desc, tiles, fparams, weights, mem, acc, float_mode,
             parallel_min_macs, threads):  # fmt: skip
    ws = workspace(instrs, desc, tiles, weights, acc, threads)
    for op, i0, i1, macs, lo, hi in runs:
        split = threads > 1 and macs >= parallel_min_macs and hi - lo >= 2 * threads
        _call(op, instrs, i0, i1, lo, hi, desc, tiles, fparams, weights, mem, acc, ws,
              float_mode, threads if split else 1)  # fmt: skip
        if op in WRITES_ARENA:
            ws.last[:, 0] = -1  # the next MVM gathers its block again


def _call(op, instrs, i0, i1, lo, hi, desc, tiles, fparams, weights, mem, acc, ws, float_mode,
          threads):  # fmt: skip
    """The kernel of opcode `op` on instrs[i0:i1] (MVMs: on pixels [lo, hi), split into
    `threads` slices when more than one), with its unit's arguments."""
    if op != Opcode.MVM:
        ENTRIES[op](instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode)
    elif threads > 1:
        run_mvm_parallel(instrs, i0, i1, lo, hi, threads, desc, tiles, mem, weights, acc, *ws,
                         float_mode)  # fmt: skip
    else:
        ENTRIES[op](instrs, i0, i1, 0, lo, hi, desc, tiles, mem, weights, acc, *ws)


def compile_kernels(opcodes, float_mode: bool) -> None:
    """Load or compile the kernels of `opcodes` for one datapath, on empty runs of arrays of
    the types a real run passes (precompile.py's helper process calls this)."""
    from ndpsim.isa import DESC_WIDTH, empty_program

    ftype = np.float32 if float_mode else np.int32
    instrs, desc, tiles = (
        empty_program(1),
        np.zeros((1, DESC_WIDTH), np.int64),
        np.zeros((1, 6), np.int64),
    )
    weights, mem = np.zeros(1, ftype), np.zeros(1, ftype)
    acc = np.zeros(1, np.float32 if float_mode else np.int64)
    ws = workspace(instrs, desc, tiles, weights, acc, 1)
    for op in sorted(set(opcodes) & EXECUTES):
        _call(op, instrs, 0, 0, 0, 0, desc, tiles, np.zeros(1, np.float32), weights, mem, acc,
              ws, bool(float_mode), 1)  # fmt: skip


def _threads(runs, parallel_min_macs: int) -> int:
    """Threads to split MVM runs over: numba's when some run is that large, else 1, without
    starting numba's thread pool (~16 ms, once per process). Also 1 under numba's fallback
    "workqueue" layer, which aborts the process when two Python threads enter it at once
    (numba picks OpenMP or TBB first when either is installed)."""
    largest = max((macs for op, _, _, macs, _, _ in runs if op == Opcode.MVM), default=0)
    if parallel_min_macs < 0 or largest < parallel_min_macs:
        return 1
    from numba import get_num_threads, threading_layer

    n = get_num_threads()
    return n if threading_layer() != "workqueue" else 1
