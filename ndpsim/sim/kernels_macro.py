"""The macro unit's kernels: runs of MVMs (core.execute_program hands over one run at a time:
consecutive MVMs of one descriptor with no arena store in between, weight loads and other
instructions without arithmetic among them).

`run_mvm` runs a run's MVMs on output pixels [a, b) with thread t's buffers;
`run_mvm_parallel` splits a run by output pixel over threads: each thread runs every MVM of
the run on its own pixels, in program order, so every accumulator sees the same additions in
the same order as on one thread. It is compiled only when some run of a model reaches the
split threshold (core.PARALLEL_MIN_MACS): numba's parallel lowering is slow to compile.

The workspace (core.Workspace, allocated by the caller) goes in as plain arrays, each with a
first index per thread: the flat input block xblk, the float axpys' sums sblk, the offsets
table off, max |x| of the gathered block xmax, and `last`, the (desc, g0, k0, k1, p0, n) key
of the gathered block (-1: none; the caller clears it after an arena store); plus
wmax_tiles, each tile's max |w| (-1: not yet known), shared. The MVM itself is in
kernels_mac.py. KERNELS_DIGEST: see ndpsim/isa_gen.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels
from ndpsim.sim.kernels_mac import _tile_weight_max, mvm

KERNELS_DIGEST = "dd8666560c8ec52d"


@njit(cache=True)
def run_mvm(instrs, i0, i1, t, a, b, desc, tiles, mem, weights, acc, xblk, sblk, off, xmax, last,
            wmax_tiles):  # fmt: skip
    """The MVMs among instrs[i0:i1] restricted to output pixels [a, b), with thread t's
    buffers. The datapath is the weights' dtype's (kernels_mac.mvm)."""
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
        )


@njit(cache=True, parallel=True)
def run_mvm_parallel(instrs, i0, i1, lo, hi, threads, desc, tiles, mem, weights, acc, xblk, sblk,
                     off, xmax, last, wmax_tiles, float_mode):  # fmt: skip
    """The MVMs among instrs[i0:i1] on output pixels [lo, hi), split into `threads` slices.
    (Only the prange below runs in parallel: everything else is in plain helpers, so that
    numba does not turn their array expressions into parallel loops; and `threads` comes in
    as an argument: numba.get_num_threads() in compiled code would stop it being cached.)"""
    if not float_mode:  # the shared bound table is filled before threads read it
        _fill_weight_max(instrs, i0, i1, desc, tiles, weights, wmax_tiles)
    for t in prange(threads):
        a = lo + (hi - lo) * t // threads
        b = lo + (hi - lo) * (t + 1) // threads
        run_mvm(instrs, i0, i1, t, a, b, desc, tiles, mem, weights, acc, xblk, sblk, off, xmax,
                last, wmax_tiles)  # fmt: skip


@njit(cache=True)
def _fill_weight_max(instrs, i0, i1, desc, tiles, weights, wmax_tiles):
    for i in range(i0, i1):
        if instrs[i]["op"] == OP_MVM:
            ti = instrs[i]["a0"]
            if wmax_tiles[ti] < 0:
                wmax_tiles[ti] = _tile_weight_max(desc[instrs[i]["desc"]], tiles[ti], weights)


@njit(inline="always")
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
