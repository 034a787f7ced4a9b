"""The numba core: executes a Program (bit-accurate) and times it, bumping event counters.

Everything a cached kernel calls lives in this module (numba's cache does not see edits in
other files); the ISA's constants are compiled in, so ISA_DIGEST stamps this file with the
digest of isa/isa.toml (`python -m ndpsim.isa --write`; tests/test_isa.py checks it).
Semantics are specified by ndpsim/sim/reference.py, which this must match bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ndpsim.sim import kernels_vector
from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

ISA_DIGEST = "e508dc22dc531085"
SIBLING_DIGEST = "30157adf170e07b2"  # hash of kernels_vector.py (see ndpsim.isa.sibling_digest)


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


@njit(cache=True)
def _ceil_div(a, b):
    return -((-a) // b)


@njit(cache=True)
def _activate(f, act, p0, p1, fparams):
    if act == A_RELU:
        if f < 0:
            f = f * np.float32(0.0)
    elif act == A_CLIP:
        lo = fparams[p0]
        hi = fparams[p1]
        if f < lo:
            f = lo
        if f > hi:
            f = hi
    elif act == A_LEAKY:
        if f < 0:
            f = f * fparams[p0]
    return f


@njit(cache=True)
def _store(mem, addr, f, zp, qmin, qmax, float_mode):
    """Quantize (round half to even, add zero point, saturate) and store; floats as they are."""
    if float_mode:
        mem[addr] = f
    else:
        # saturate before converting: a huge f must not overflow the integer conversion
        if f < qmin - zp:
            mem[addr] = qmin
        elif f > qmax - zp:
            mem[addr] = qmax
        else:
            mem[addr] = int(np.rint(f)) + zp


@njit(cache=True)
def _mvm(d, tile, p0, n, mem, weights, acc, xblk, sblk, s32, xmax_state, reuse, float_mode):
    """acc[tile outputs, pixels] += W_tile . im2col(x). The block of input vectors is gathered
    once (xblk[k, pixel]); each output channel is then an axpy over pixels, which vectorizes
    and sums every (channel, pixel) over k in order from zero, as the reference does.
    `reuse`: xblk already holds this block (the previous MVM read the same input vectors)."""
    cin, cout, groups = d[CV_CIN], d[CV_COUT], d[CV_G]
    kh, kw, ow = d[CV_KH], d[CV_KW], d[CV_OW]
    cin_g, cout_g = cin // groups, cout // groups
    khw = kh * kw
    k_g = cin_g * khw
    g0, g1, k0, k1, c0, c1 = tile[0], tile[1], tile[2], tile[3], tile[4], tile[5]
    kt = k1 - k0
    npix = d[CV_OH] * ow
    in_zp = d[CV_IZ]
    for g in range(g0, g1):
        xmax = xmax_state[0] if reuse else 0
        for q in range(0 if reuse else n):
            p = p0 + q
            oy = p // ow
            ox = p - oy * ow
            base_y = oy * d[CV_STH] - d[CV_PT]
            base_x = ox * d[CV_STW] - d[CV_PL]
            ci = k0 // khw
            r = k0 - ci * khw
            ky = r // kw
            kx = r - ky * kw
            for j in range(kt):
                iy = base_y + ky * d[CV_DH]
                ix = base_x + kx * d[CV_DW]
                if iy >= 0 and iy < d[CV_H] and ix >= 0 and ix < d[CV_W]:
                    a = d[CV_IN] + (g * cin_g + ci) * d[CV_SC] + iy * d[CV_SY] + ix * d[CV_SX]
                    v = mem[a] - in_zp
                    xblk[j, q] = v
                    if not float_mode and abs(v) > xmax:
                        xmax = abs(v)
                else:
                    xblk[j, q] = 0
                kx += 1
                if kx == kw:
                    kx = 0
                    ky += 1
                    if ky == kh:
                        ky = 0
                        ci += 1
        xmax_state[0] = xmax
        for co in range(c0, c1):
            oc = g * cout_g + co
            wb = d[CV_WB] + oc * k_g + k0
            narrow = False
            if not float_mode:  # int32 lanes when no partial sum can overflow them
                wmax = 0
                for j in range(kt):
                    if abs(weights[wb + j]) > wmax:
                        wmax = abs(weights[wb + j])
                narrow = np.int64(wmax) * np.int64(xmax) * np.int64(kt) < 2147483647
            if narrow:
                for q in range(n):
                    s32[q] = 0
                for j in range(kt):
                    w = weights[wb + j]
                    for q in range(n):
                        s32[q] += w * xblk[j, q]
                for q in range(n):
                    sblk[q] = s32[q]
            else:
                for q in range(n):
                    sblk[q] = 0
                for j in range(kt):
                    w = weights[wb + j]
                    for q in range(n):
                        sblk[q] += w * xblk[j, q]
            ai0 = d[CV_AB] + oc * npix + p0
            for q in range(n):
                v = acc[ai0 + q] + sblk[q]
                if not float_mode:
                    if v < d[CV_AMIN]:
                        v = d[CV_AMIN]
                    if v > d[CV_AMAX]:
                        v = d[CV_AMAX]
                acc[ai0 + q] = v


@njit(cache=True)
def _requant(d, c0, nc, p0, n, mem, weights, acc, fparams, float_mode):
    ow = d[CV_OW]
    npix = d[CV_OH] * ow
    for c in range(c0, c0 + nc):
        scale = fparams[d[CV_SB] + c]
        for p in range(p0, p0 + n):
            ai = d[CV_AB] + c * npix + p
            v = acc[ai]
            acc[ai] = 0
            if d[CV_BB] >= 0:
                v += weights[d[CV_BB] + c]
            f = np.float32(v) * scale
            f = _activate(f, d[CV_ACT], d[CV_AP0], d[CV_AP1], fparams)
            oy = p // ow
            ox = p - oy * ow
            addr = d[CV_OUT] + c * d[CV_OSC] + oy * d[CV_OSY] + ox * d[CV_OSX]
            _store(mem, addr, f, d[CV_OZ], d[CV_QMIN], d[CV_QMAX], float_mode)


@njit(cache=True)
def _eltwise(d, e0, n, mem, fparams, float_mode):
    d1, d2, d3 = d[EW_D1], d[EW_D2], d[EW_D3]
    ra, rb = fparams[d[EW_RA]], fparams[d[EW_RB]]
    za, zb = d[EW_ZA], d[EW_ZB]
    for e in range(e0, e0 + n):
        i3 = e % d3
        t = e // d3
        i2 = t % d2
        t = t // d2
        i1 = t % d1
        i0 = t // d1
        a = mem[
            d[EW_A_BASE] + i0 * d[EW_A_S0] + i1 * d[EW_A_S1] + i2 * d[EW_A_S2] + i3 * d[EW_A_S3]
        ]
        b = mem[
            d[EW_B_BASE] + i0 * d[EW_B_S0] + i1 * d[EW_B_S1] + i2 * d[EW_B_S2] + i3 * d[EW_B_S3]
        ]
        if d[EW_KIND] == E_MUL:
            f = np.float32(a - za) * np.float32(b - zb) * ra
        else:
            f = np.float32(a - za) * ra + np.float32(b - zb) * rb
        f = _activate(f, d[EW_ACT], d[EW_ACT_P0], d[EW_ACT_P1], fparams)
        y = d[EW_Y_BASE] + i0 * d[EW_Y_S0] + i1 * d[EW_Y_S1] + i2 * d[EW_Y_S2] + i3 * d[EW_Y_S3]
        _store(mem, y, f, d[EW_ZY], d[EW_QMIN], d[EW_QMAX], float_mode)


@njit(cache=True)
def _pool(d, p0, n, mem, fparams, zero_x, float_mode):
    oh, ow, kh, kw = d[PL_OH], d[PL_OW], d[PL_KH], d[PL_KW]
    h, w, zx = d[PL_H], d[PL_W], d[PL_ZX]
    is_max = d[PL_KIND] == P_MAX
    r = fparams[d[PL_R]]
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
        f = _activate(f, d[PL_ACT], d[PL_ACT_P0], d[PL_ACT_P1], fparams)
        y = d[PL_OUT_BASE] + c * d[PL_OUT_SC] + oy * d[PL_OUT_SY] + ox * d[PL_OUT_SX]
        _store(mem, y, f, d[PL_ZY], d[PL_QMIN], d[PL_QMAX], float_mode)


@njit(cache=True)
def _softmax(d, r0, n, mem, fparams, float_mode):
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
    for e in range(e0, e0 + n):
        i3 = e % d3
        t = e // d3
        i2 = t % d2
        t = t // d2
        i1 = t % d1
        i0 = t // d1
        x = mem[
            d[CP_X_BASE] + i0 * d[CP_X_S0] + i1 * d[CP_X_S1] + i2 * d[CP_X_S2] + i3 * d[CP_X_S3]
        ]
        f = np.float32(x - zx) * r
        f = _activate(f, d[CP_ACT], d[CP_ACT_P0], d[CP_ACT_P1], fparams)
        y = d[CP_Y_BASE] + i0 * d[CP_Y_S0] + i1 * d[CP_Y_S1] + i2 * d[CP_Y_S2] + i3 * d[CP_Y_S3]
        _store(mem, y, f, d[CP_ZY], d[CP_QMIN], d[CP_QMAX], float_mode)


@njit(cache=True)
def _duration(ins, t):
    """Cycles the instruction occupies its unit, and of those the compute-bound part."""
    op = ins["op"]
    if op == OP_MVM:
        in_cyc = _ceil_div(np.int64(ins["a_bits"]), t.input_bits_per_cycle)
        readout = max(1, _ceil_div(np.int64(ins["cols"]), t.readout_columns_per_cycle))
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
        nbytes = ins["bytes_in"] + ins["bytes_out"]
        return np.int64(np.ceil(nbytes / t.sram_bytes_per_cycle)), 0
    return np.int64(0), np.int64(0)


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
):
    """Execute (if `execute`) and time `instrs`. Returns (counters[layer, counter],
    unit_busy[unit], start[instr], end[instr]); the makespan is end.max()."""
    n = instrs.shape[0]
    counters = np.zeros((n_layers, N_COUNTERS), dtype=np.int64)
    unit_free = np.zeros(n_units, dtype=np.int64)
    unit_busy = np.zeros(n_units, dtype=np.int64)
    token_ready = np.zeros(max(n_tokens, 1), dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    max_n = 1
    for i in range(n):
        if instrs[i]["op"] == OP_MVM and instrs[i]["a2"] > max_n:
            max_n = instrs[i]["a2"]
    xblk = np.zeros((max(1, _max_tile_rows(tiles)), max_n), dtype=weights.dtype)
    sblk = np.zeros(max_n, dtype=acc.dtype)
    s32 = np.zeros(max_n, dtype=np.int32)
    xmax_state = np.zeros(1, dtype=np.int64)
    last = np.full(6, -1, dtype=np.int64)  # (desc, g0, k0, k1, p0, n) of the gathered block
    zero_x = np.zeros(1, dtype=mem.dtype)[0] - np.int64(0)
    for i in range(n):
        ins = instrs[i]
        op = ins["op"]
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
        if execute:
            if op != OP_MVM:  # anything but an MVM may write memory: regather next time
                last[0] = -1
            if op == OP_MVM:
                _mvm(
                    desc[ins["desc"]],
                    tiles[ins["a0"]],
                    ins["a1"],
                    ins["a2"],
                    mem,
                    weights,
                    acc,
                    xblk,
                    sblk,
                    s32,
                    xmax_state,
                    _same_block(last, ins, tiles[ins["a0"]]),
                    float_mode,
                )
            elif op == OP_REQUANT:
                _requant(
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
                _eltwise(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
            elif op == OP_POOL:
                _pool(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, zero_x, float_mode)
            elif op == OP_SOFTMAX:
                _softmax(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
            elif op == OP_COPY:
                _copy(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
            elif op == OP_FUNC:
                kernels_vector.func(
                    desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode
                )
    return counters, unit_busy, start, end


@njit(cache=True)
def _same_block(last, ins, tile):
    """Whether this single-group MVM reads the block the previous MVM gathered; remembers
    this one's (desc, g0, k0, k1, first pixel, pixels) as the gathered block."""
    i64 = np.int64
    key = (
        i64(ins["desc"]),
        i64(tile[0]),
        i64(tile[2]),
        i64(tile[3]),
        i64(ins["a1"]),
        i64(ins["a2"]),
    )
    same = tile[1] - tile[0] == 1
    for j in range(6):
        same = same and last[j] == key[j]
        last[j] = key[j]
    if tile[1] - tile[0] != 1:
        last[0] = -1
    return same


@njit(cache=True)
def _max_tile_rows(tiles):
    m = 0
    for t in range(tiles.shape[0]):
        k = tiles[t, 3] - tiles[t, 2]
        if k > m:
            m = k
    return m
