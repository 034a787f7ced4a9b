"""The numba core: executes a Program (bit-accurate) and times it, bumping event counters.
run_program is the entry point: the schedule (timing and counters, schedule.py), then the
arithmetic (execute_program here: MVM runs, shared over threads, and the vector ops).

numba's cache only watches the file a cached function lives in, so this file carries two
stamps that change whenever what it compiles in changes: ISA_DIGEST (isa/isa.toml, whose
constants are compiled in) and KERNELS_DIGEST (the kernel modules it calls, e.g.
kernels_mac.py). `python -m ndpsim.isa --write` restamps both; tests/test_isa.py checks them.
Semantics are specified by ndpsim/sim/reference.py, which this must match bit for bit (on
the float datapath, long MVM tiles to float32 rounding: kernels_mac.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange, threading_layer

from ndpsim.sim import kernels_rows, kernels_vector
from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels
from ndpsim.sim.kernels_common import _act_params, _activate, _store, unravel4
from ndpsim.sim.kernels_mac import CHANNEL_BLOCK, _tile_weight_max, mvm
from ndpsim.sim.kernels_ort import _pool_ort, _softmax_lut
from ndpsim.sim.schedule import Timing, schedule  # noqa: F401 - Timing: part of this API

ISA_DIGEST = "a1607d4aa61826c5"
# Runs of MVMs with at least this many MACs are split over threads. On the ResNet-50-sized
# net 2^18..2^20 ran within 6% of each other; 2^22 split too few runs (463 vs 396 ms).
PARALLEL_MIN_MACS = 1 << 20
KERNELS_DIGEST = "2714e4ea2c49359c"


@njit(cache=True)
def _pool(d, p0, n, mem, fparams, zero_x, float_mode):
    if d[PL_KIND] == P_AVG_SCALED or d[PL_KIND] == P_AVG_DQ:
        _pool_ort(d, p0, n, mem, fparams)
        return
    oh, ow, kh, kw = d[PL_OH], d[PL_OW], d[PL_KH], d[PL_KW]
    h, w, zx = d[PL_H], d[PL_W], d[PL_ZX]
    is_max = d[PL_KIND] == P_MAX
    r = fparams[d[PL_R]]
    a0, a1 = _act_params(d[PL_ACT], d[PL_ACT_P0], d[PL_ACT_P1], fparams)
    for p in range(p0, p0 + n):
        c = p // (oh * ow)
        t = p - c * oh * ow
        oy = t // ow
        ox = t - oy * ow
        m = zero_x  # int64, or float64 on the float datapath (as x = mem - zx)
        s = zero_x
        count = 0
        first = True
        for ky in range(kh):
            iy = oy * d[PL_STRIDE_H] - d[PL_PAD_TOP] + ky * d[PL_DIL_H]
            for kx in range(kw):
                ix = ox * d[PL_STRIDE_W] - d[PL_PAD_LEFT] + kx * d[PL_DIL_W]
                if iy >= 0 and iy < h and ix >= 0 and ix < w:
                    a = d[PL_IN_BASE] + c * d[PL_IN_SC] + iy * d[PL_IN_SY] + ix * d[PL_IN_SX]
                    x = mem[a] - zx
                    if first or x > m:
                        m = x
                    first = False
                    s += x
                    count += 1
        if d[PL_COUNT_INCLUDE_PAD] != 0:
            count = kh * kw
        if is_max:
            f = np.float32(m) * r
        else:
            f = np.float32(s) / np.float32(count) * r
        f = _activate(f, d[PL_ACT], a0, a1)
        y = d[PL_OUT_BASE] + c * d[PL_OUT_SC] + oy * d[PL_OUT_SY] + ox * d[PL_OUT_SX]
        _store(mem, y, f, d[PL_ZY], d[PL_QMIN], d[PL_QMAX], float_mode)


@njit(cache=True)
def _softmax(d, r0, n, mem, fparams, float_mode):
    if d[SM_MODE] != 0:
        _softmax_lut(d, r0, n, mem, fparams)
        return
    length, inner = d[SM_LENGTH], d[SM_INNER]
    sx, sy, zx = fparams[d[SM_SX]], fparams[d[SM_SY]], d[SM_ZX]
    for row in range(r0, r0 + n):
        o = row // inner
        i = row - o * inner
        base = o * length * inner + i
        m = -np.inf
        for j in range(length):
            v = np.float64(np.float32(mem[d[SM_X_BASE] + base + j * inner] - zx) * sx)
            if v > m:
                m = v
        total = 0.0
        for j in range(length):
            v = np.float64(np.float32(mem[d[SM_X_BASE] + base + j * inner] - zx) * sx)
            total += np.exp(v - m)
        for j in range(length):
            v = np.float64(np.float32(mem[d[SM_X_BASE] + base + j * inner] - zx) * sx)
            f = np.float32(np.exp(v - m) / total) / sy
            _store(
                mem,
                d[SM_Y_BASE] + base + j * inner,
                f,
                d[SM_ZY],
                d[SM_QMIN],
                d[SM_QMAX],
                float_mode,
            )


@njit(cache=True)
def _copy(d, e0, n, mem, fparams, float_mode):
    d1, d2, d3 = d[CP_D1], d[CP_D2], d[CP_D3]
    r, zx = fparams[d[CP_R]], d[CP_ZX]
    a0, a1 = _act_params(d[CP_ACT], d[CP_ACT_P0], d[CP_ACT_P1], fparams)
    for e in range(e0, e0 + n):
        i0, i1, i2, i3 = unravel4(e, d1, d2, d3)
        x = mem[
            d[CP_X_BASE] + i0 * d[CP_X_S0] + i1 * d[CP_X_S1] + i2 * d[CP_X_S2] + i3 * d[CP_X_S3]
        ]
        f = np.float32(x - zx) * r
        if d[CP_MODE] == 1:  # dequantize, then quantize (onnxruntime's QLinearConcat table)
            f = f / fparams[d[CP_R2]]
        f = _activate(f, d[CP_ACT], a0, a1)
        y = d[CP_Y_BASE] + i0 * d[CP_Y_S0] + i1 * d[CP_Y_S1] + i2 * d[CP_Y_S2] + i3 * d[CP_Y_S3]
        _store(mem, y, f, d[CP_ZY], d[CP_QMIN], d[CP_QMAX], float_mode)


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
    threads (-1: never). Two compiled calls: numba cannot cache a function that calls a
    parallel one."""
    if parallel_min_macs is None:
        parallel_min_macs = PARALLEL_MIN_MACS
    out = schedule(instrs, timing, n_units, n_tokens, n_layers)
    if execute:  # the arithmetic never depends on the schedule
        threads = _threads(instrs, parallel_min_macs)
        execute_program(instrs, desc, tiles, fparams, weights, mem, acc, float_mode,
                        parallel_min_macs, threads)  # fmt: skip
    return out


def _threads(instrs, parallel_min_macs: int) -> int:
    """Threads to split MVM runs over: numba's when some run is that large, else 1, without
    starting numba's thread pool (~16 ms, once per process). Also 1 under numba's fallback
    "workqueue" layer, which aborts the process when two Python threads enter it at once
    (numba picks OpenMP or TBB first when either is installed)."""
    if parallel_min_macs < 0 or _largest_run_macs(instrs) < parallel_min_macs:
        return 1
    n = get_num_threads()
    return n if threading_layer() != "workqueue" else 1


@njit(cache=True)
def _largest_run_macs(instrs):
    """The most MACs of any MVM run that execute_program could split (see _segment)."""
    most = np.int64(0)
    i = 0
    while i < instrs.shape[0]:
        if instrs[i]["op"] == OP_MVM:
            j, macs, _, _ = _segment(instrs, i)
            most = max(most, macs)
            i = j
        else:
            i += 1
    return most


class Workspace(NamedTuple):
    """Per-thread MVM buffers (first index: thread): the flat input block, the float axpys'
    sums, the offsets table, max |x| of the gathered block, and the (desc, g0, k0, k1, p0,
    n) key of the gathered block; plus each tile's max |w| (-1: not yet known), shared."""

    xblk: np.ndarray
    sblk: np.ndarray
    off: np.ndarray
    xmax: np.ndarray
    last: np.ndarray
    wmax_tiles: np.ndarray


@njit(cache=True)
def _workspace(instrs, desc, tiles, weights, acc, threads):
    max_n = 1
    for i in range(instrs.shape[0]):
        if instrs[i]["op"] == OP_MVM and instrs[i]["a2"] > max_n:
            max_n = instrs[i]["a2"]
    rows = max(1, _max_tile_extent(tiles, 2))
    return Workspace(
        np.zeros((threads, rows * max_n), dtype=weights.dtype),
        np.zeros((threads, CHANNEL_BLOCK, max_n), dtype=acc.dtype),
        np.zeros((threads, max_n, max(1, _max_window(instrs, desc))), dtype=np.int64),
        np.zeros(threads, dtype=np.int64),
        np.full((threads, 6), -1, dtype=np.int64),
        np.full(tiles.shape[0], -1, dtype=np.int64),
    )


@njit(cache=True, parallel=True)
def execute_program(instrs, desc, tiles, fparams, weights, mem, acc, float_mode, parallel_min_macs,
                    threads):  # fmt: skip
    """The arithmetic of every instruction, in program order, except that a run of MVMs of
    one descriptor with no arena store in between (a "segment") may be split by output
    pixel over threads: each thread runs every MVM of the run on its own pixels, in program
    order, so every accumulator sees the same additions in the same order as serially.
    (Only the prange below runs in parallel: everything else is in plain helpers, so that
    numba does not turn their array expressions into parallel loops; and `threads` comes in
    as an argument: numba.get_num_threads() in compiled code would stop it being cached.)"""
    n = instrs.shape[0]
    ws = _workspace(instrs, desc, tiles, weights, acc, threads)
    i = 0
    while i < n:
        if instrs[i]["op"] != OP_MVM:
            _vector_op(instrs[i], desc, fparams, weights, mem, acc, ws.last, float_mode)
            i += 1
            continue
        j, macs, lo, hi = _segment(instrs, i)
        if threads > 1 and macs >= parallel_min_macs and hi - lo >= 2 * threads:
            if not float_mode:  # the shared bound table is filled before threads read it
                _fill_weight_max(instrs, i, j, desc, tiles, weights, ws.wmax_tiles)
            # the workspace goes in as plain arrays: numba's parallel loops cannot take a
            # NamedTuple from the enclosing function
            xblk, sblk, off, xmax, last, wmax = ws
            for t in prange(threads):
                a = lo + (hi - lo) * t // threads
                b = lo + (hi - lo) * (t + 1) // threads
                _mvm_range(instrs, i, j, t, a, b, desc, tiles, mem, weights, acc, xblk, sblk,
                           off, xmax, last, wmax, float_mode)  # fmt: skip
        else:
            _mvm_range(instrs, i, j, 0, lo, hi, desc, tiles, mem, weights, acc, ws.xblk,
                       ws.sblk, ws.off, ws.xmax, ws.last, ws.wmax_tiles, float_mode)  # fmt: skip
        i = j


@njit(cache=True)
def _vector_op(ins, desc, fparams, weights, mem, acc, last, float_mode):
    """One non-MVM instruction's arithmetic (weight loads, DMA and NOPs have none)."""
    op = ins["op"]
    if _stores_to_arena(op):
        for t in range(last.shape[0]):
            last[t, 0] = -1  # the next MVM gathers its block again
    if op == OP_REQUANT:
        kernels_rows.requant(
            desc[ins["desc"]],
            ins["a0"],
            ins["rows"],
            ins["a1"],
            ins["a2"],
            mem,
            weights,
            acc,
            fparams,
            float_mode,
        )
    elif op == OP_ELTWISE:
        kernels_rows.eltwise(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
    elif op == OP_POOL:
        zero_x = np.zeros(1, dtype=mem.dtype)[0] - np.int64(0)  # int64, or float64
        _pool(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, zero_x, float_mode)
    elif op == OP_SOFTMAX:
        _softmax(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
    elif op == OP_COPY:
        _copy(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
    elif op == OP_FUNC:
        kernels_vector.func(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)


@njit(cache=True)
def _segment(instrs, i):
    """The segment starting at MVM i: (end, MACs, first pixel, last pixel + 1). It runs over
    instructions that do no arithmetic (weight loads, DMA, NOPs) and stops at an arena store
    or an MVM of another descriptor (whose accumulators may overlap this one's)."""
    d = instrs[i]["desc"]
    macs = np.int64(0)
    lo = np.int64(instrs[i]["a1"])
    hi = lo
    j = i
    while j < instrs.shape[0]:
        op = instrs[j]["op"]
        if op == OP_MVM:
            if instrs[j]["desc"] != d:
                break
            macs += instrs[j]["work"]
            lo = min(lo, np.int64(instrs[j]["a1"]))
            hi = max(hi, np.int64(instrs[j]["a1"]) + instrs[j]["a2"])
        elif _stores_to_arena(op):
            break
        j += 1
    return j, macs, lo, hi


@njit(cache=True)
def _fill_weight_max(instrs, i0, i1, desc, tiles, weights, wmax_tiles):
    for i in range(i0, i1):
        if instrs[i]["op"] == OP_MVM:
            ti = instrs[i]["a0"]
            if wmax_tiles[ti] < 0:
                wmax_tiles[ti] = _tile_weight_max(desc[instrs[i]["desc"]], tiles[ti], weights)


@njit(cache=True)
def _mvm_range(instrs, i0, i1, t, a, b, desc, tiles, mem, weights, acc, xblk, sblk, off, xmax,
               last, wmax_tiles, float_mode):  # fmt: skip
    """MVMs i0..i1 restricted to output pixels [a, b), with thread t's buffers (Workspace)."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] != OP_MVM:
            continue
        p0 = max(np.int64(ins["a1"]), a)
        p1 = min(np.int64(ins["a1"]) + ins["a2"], b)
        if p1 <= p0:
            continue
        ti = ins["a0"]
        tile = tiles[ti]
        mvm(
            desc[ins["desc"]],
            tile,
            ti,
            p0,
            p1 - p0,
            mem,
            weights,
            acc,
            xblk[t],
            sblk[t],
            off[t],
            xmax[t:],
            wmax_tiles,
            _same_block(last[t], ins["desc"], tile, p0, p1 - p0),
            float_mode,
        )


@njit(cache=True)
def _stores_to_arena(op):
    """Whether op's kernel stores into the arena: the vector ops (reference.py's _VECTOR_OPS).
    Weight loads and DMA transfers move no arena data in the functional model."""
    return (
        op == OP_REQUANT
        or op == OP_ELTWISE
        or op == OP_POOL
        or op == OP_SOFTMAX
        or op == OP_COPY
        or op == OP_FUNC
    )


@njit(cache=True)
def _same_block(last, d, tile, p0, n):
    """Whether this single-group MVM (descriptor d, pixels p0..p0+n) reads the block the
    previous one gathered; remembers this one's (desc, g0, k0, k1, p0, n) as gathered."""
    i64 = np.int64
    key = (i64(d), i64(tile[0]), i64(tile[2]), i64(tile[3]), i64(p0), i64(n))
    same = tile[1] - tile[0] == 1
    for j in range(6):
        same = same and last[j] == key[j]
        last[j] = key[j]
    if tile[1] - tile[0] != 1:
        last[0] = -1
    return same


@njit(cache=True)
def _max_window(instrs, desc):
    """Largest kernel window (kh * kw) of any MVM's descriptor."""
    m = 0
    for i in range(instrs.shape[0]):
        if instrs[i]["op"] == OP_MVM:
            d = desc[instrs[i]["desc"]]
            m = max(m, d[CV_KH] * d[CV_KW])
    return m


@njit(cache=True)
def _max_tile_extent(tiles, lo):
    """Largest tiles[t, lo + 1] - tiles[t, lo]: k rows (lo = 2) or output columns (lo = 4)."""
    m = 0
    for t in range(tiles.shape[0]):
        if tiles[t, lo + 1] - tiles[t, lo] > m:
            m = tiles[t, lo + 1] - tiles[t, lo]
    return m
