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

from ndpsim.isa import DESC_FIELDS, Act, Counter, EltwiseKind, Opcode, PoolKind, Unit

ISA_DIGEST = "0a0069fd7cf4536d"


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


# Compiled-in constants (from isa/isa.toml).
OP_NOP, OP_MVM, OP_REQUANT = int(Opcode.NOP), int(Opcode.MVM), int(Opcode.REQUANT)
OP_ELTWISE, OP_POOL, OP_SOFTMAX = int(Opcode.ELTWISE), int(Opcode.POOL), int(Opcode.SOFTMAX)
OP_COPY, OP_LOAD_W, OP_LOAD_A = int(Opcode.COPY), int(Opcode.LOAD_W), int(Opcode.LOAD_A)
OP_STORE_A, OP_HOST_IN, OP_HOST_OUT = int(Opcode.STORE_A), int(Opcode.HOST_IN), int(Opcode.HOST_OUT)
U_MACRO, U_VECTOR, U_DMA = int(Unit.MACRO), int(Unit.VECTOR), int(Unit.DMA)
A_RELU, A_CLIP, A_LEAKY = int(Act.RELU), int(Act.CLIP), int(Act.LEAKY_RELU)
E_MUL, P_MAX = int(EltwiseKind.MUL), int(PoolKind.MAX)
C = {c.name: int(c) for c in Counter}
C_MACS, C_VEC, C_INCYC = C["MACS"], C["MACRO_VECTORS"], C["MACRO_INPUT_CYCLES"]
C_CELL, C_ROWACT, C_READOUT = C["MACRO_CELL_BIT_OPS"], C["MACRO_ROW_ACTIVATIONS"], C["READOUT_CONVERSIONS"]
C_ACCADD, C_VOPS, C_LUT = C["ACCUMULATOR_ADDS"], C["VECTOR_ELEMENT_OPS"], C["VECTOR_LUT_OPS"]
C_SRAM_R, C_SRAM_W = C["SRAM_READ_BYTES"], C["SRAM_WRITE_BYTES"]
C_EXT_R, C_EXT_W, C_WW = C["EXT_READ_BYTES"], C["EXT_WRITE_BYTES"], C["WEIGHT_WRITE_BYTES"]
C_HOST, C_INSTR = C["HOST_BYTES"], C["INSTRUCTIONS"]
C_MBUSY, C_VBUSY, C_DBUSY = C["MACRO_BUSY_CYCLES"], C["VECTOR_BUSY_CYCLES"], C["DMA_BUSY_CYCLES"]
C_MCOMP, C_VCOMP = C["MACRO_COMPUTE_CYCLES"], C["VECTOR_COMPUTE_CYCLES"]
N_COUNTERS = len(Counter)
_F = DESC_FIELDS
CV, EW, PL, SM, CP = _F["conv"], _F["eltwise"], _F["pool"], _F["softmax"], _F["copy"]
# descriptor columns (numba compiles these ints in)
CP_ACT = CP["act"]
CP_ACT_P0 = CP["act_p0"]
CP_ACT_P1 = CP["act_p1"]
CP_D1 = CP["d1"]
CP_D2 = CP["d2"]
CP_D3 = CP["d3"]
CP_QMAX = CP["qmax"]
CP_QMIN = CP["qmin"]
CP_R = CP["r"]
CP_X_BASE = CP["x_base"]
CP_X_S0 = CP["x_s0"]
CP_X_S1 = CP["x_s1"]
CP_X_S2 = CP["x_s2"]
CP_X_S3 = CP["x_s3"]
CP_Y_BASE = CP["y_base"]
CP_Y_S0 = CP["y_s0"]
CP_Y_S1 = CP["y_s1"]
CP_Y_S2 = CP["y_s2"]
CP_Y_S3 = CP["y_s3"]
CP_ZX = CP["zx"]
CP_ZY = CP["zy"]
EW_A_BASE = EW["a_base"]
EW_A_S0 = EW["a_s0"]
EW_A_S1 = EW["a_s1"]
EW_A_S2 = EW["a_s2"]
EW_A_S3 = EW["a_s3"]
EW_ACT = EW["act"]
EW_ACT_P0 = EW["act_p0"]
EW_ACT_P1 = EW["act_p1"]
EW_B_BASE = EW["b_base"]
EW_B_S0 = EW["b_s0"]
EW_B_S1 = EW["b_s1"]
EW_B_S2 = EW["b_s2"]
EW_B_S3 = EW["b_s3"]
EW_D1 = EW["d1"]
EW_D2 = EW["d2"]
EW_D3 = EW["d3"]
EW_KIND = EW["kind"]
EW_QMAX = EW["qmax"]
EW_QMIN = EW["qmin"]
EW_RA = EW["ra"]
EW_RB = EW["rb"]
EW_Y_BASE = EW["y_base"]
EW_Y_S0 = EW["y_s0"]
EW_Y_S1 = EW["y_s1"]
EW_Y_S2 = EW["y_s2"]
EW_Y_S3 = EW["y_s3"]
EW_ZA = EW["za"]
EW_ZB = EW["zb"]
EW_ZY = EW["zy"]
PL_ACT = PL["act"]
PL_ACT_P0 = PL["act_p0"]
PL_ACT_P1 = PL["act_p1"]
PL_COUNT_INCLUDE_PAD = PL["count_include_pad"]
PL_DIL_H = PL["dil_h"]
PL_DIL_W = PL["dil_w"]
PL_H = PL["h"]
PL_IN_BASE = PL["in_base"]
PL_IN_SC = PL["in_sc"]
PL_IN_SX = PL["in_sx"]
PL_IN_SY = PL["in_sy"]
PL_KH = PL["kh"]
PL_KIND = PL["kind"]
PL_KW = PL["kw"]
PL_OH = PL["oh"]
PL_OUT_BASE = PL["out_base"]
PL_OUT_SC = PL["out_sc"]
PL_OUT_SX = PL["out_sx"]
PL_OUT_SY = PL["out_sy"]
PL_OW = PL["ow"]
PL_PAD_LEFT = PL["pad_left"]
PL_PAD_TOP = PL["pad_top"]
PL_QMAX = PL["qmax"]
PL_QMIN = PL["qmin"]
PL_R = PL["r"]
PL_STRIDE_H = PL["stride_h"]
PL_STRIDE_W = PL["stride_w"]
PL_W = PL["w"]
PL_ZX = PL["zx"]
PL_ZY = PL["zy"]
SM_INNER = SM["inner"]
SM_LENGTH = SM["length"]
SM_QMAX = SM["qmax"]
SM_QMIN = SM["qmin"]
SM_SX = SM["sx"]
SM_SY = SM["sy"]
SM_X_BASE = SM["x_base"]
SM_Y_BASE = SM["y_base"]
SM_ZX = SM["zx"]
SM_ZY = SM["zy"]
# conv descriptor columns
CV_IN, CV_SC, CV_SY, CV_SX = CV["in_base"], CV["in_sc"], CV["in_sy"], CV["in_sx"]
CV_CIN, CV_H, CV_W = CV["cin"], CV["h"], CV["w"]
CV_OUT, CV_OSC, CV_OSY, CV_OSX = CV["out_base"], CV["out_sc"], CV["out_sy"], CV["out_sx"]
CV_COUT, CV_OH, CV_OW, CV_KH, CV_KW = CV["cout"], CV["oh"], CV["ow"], CV["kh"], CV["kw"]
CV_STH, CV_STW, CV_DH, CV_DW = CV["stride_h"], CV["stride_w"], CV["dil_h"], CV["dil_w"]
CV_PT, CV_PL, CV_G, CV_WB, CV_AB = CV["pad_top"], CV["pad_left"], CV["groups"], CV["w_base"], CV["acc_base"]
CV_BB, CV_SB, CV_IZ, CV_OZ = CV["bias_base"], CV["scale_base"], CV["in_zp"], CV["out_zp"]
CV_QMIN, CV_QMAX, CV_ACT, CV_AP0, CV_AP1 = CV["qmin"], CV["qmax"], CV["act"], CV["act_p0"], CV["act_p1"]
CV_AMIN, CV_AMAX = CV["acc_min"], CV["acc_max"]


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
        q = int(np.rint(f)) + zp
        if q < qmin:
            q = qmin
        if q > qmax:
            q = qmax
        mem[addr] = q


@njit(cache=True)
def _mvm(d, tile, p0, n, mem, weights, acc, xbuf, float_mode):
    cin, cout, groups = d[CV_CIN], d[CV_COUT], d[CV_G]
    kh, kw, ow = d[CV_KH], d[CV_KW], d[CV_OW]
    cin_g, cout_g = cin // groups, cout // groups
    khw = kh * kw
    k_g = cin_g * khw
    g0, g1, k0, k1, c0, c1 = tile[0], tile[1], tile[2], tile[3], tile[4], tile[5]
    npix = d[CV_OH] * ow
    in_zp = d[CV_IZ]
    for p in range(p0, p0 + n):
        oy = p // ow
        ox = p - oy * ow
        base_y = oy * d[CV_STH] - d[CV_PT]
        base_x = ox * d[CV_STW] - d[CV_PL]
        for g in range(g0, g1):
            ci = k0 // khw
            r = k0 - ci * khw
            ky = r // kw
            kx = r - ky * kw
            for j in range(k1 - k0):
                iy = base_y + ky * d[CV_DH]
                ix = base_x + kx * d[CV_DW]
                if iy >= 0 and iy < d[CV_H] and ix >= 0 and ix < d[CV_W]:
                    a = d[CV_IN] + (g * cin_g + ci) * d[CV_SC] + iy * d[CV_SY] + ix * d[CV_SX]
                    xbuf[j] = mem[a] - in_zp
                else:
                    xbuf[j] = 0
                kx += 1
                if kx == kw:
                    kx = 0
                    ky += 1
                    if ky == kh:
                        ky = 0
                        ci += 1
            for co in range(c0, c1):
                oc = g * cout_g + co
                wb = d[CV_WB] + oc * k_g + k0
                s = acc[0] * 0
                for j in range(k1 - k0):
                    s += weights[wb + j] * xbuf[j]
                ai = d[CV_AB] + oc * npix + p
                v = acc[ai] + s
                if not float_mode:
                    if v < d[CV_AMIN]:
                        v = d[CV_AMIN]
                    if v > d[CV_AMAX]:
                        v = d[CV_AMAX]
                acc[ai] = v


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
        a = mem[d[EW_A_BASE] + i0 * d[EW_A_S0] + i1 * d[EW_A_S1] + i2 * d[EW_A_S2] + i3 * d[EW_A_S3]]
        b = mem[d[EW_B_BASE] + i0 * d[EW_B_S0] + i1 * d[EW_B_S1] + i2 * d[EW_B_S2] + i3 * d[EW_B_S3]]
        if d[EW_KIND] == E_MUL:
            f = np.float32(a - za) * np.float32(b - zb) * ra
        else:
            f = np.float32(a - za) * ra + np.float32(b - zb) * rb
        f = _activate(f, d[EW_ACT], d[EW_ACT_P0], d[EW_ACT_P1], fparams)
        y = d[EW_Y_BASE] + i0 * d[EW_Y_S0] + i1 * d[EW_Y_S1] + i2 * d[EW_Y_S2] + i3 * d[EW_Y_S3]
        _store(mem, y, f, d[EW_ZY], d[EW_QMIN], d[EW_QMAX], float_mode)


@njit(cache=True)
def _pool(d, p0, n, mem, fparams, float_mode):
    oh, ow, kh, kw = d[PL_OH], d[PL_OW], d[PL_KH], d[PL_KW]
    h, w, zx = d[PL_H], d[PL_W], d[PL_ZX]
    is_max = d[PL_KIND] == P_MAX
    r = fparams[d[PL_R]]
    for p in range(p0, p0 + n):
        c = p // (oh * ow)
        t = p - c * oh * ow
        oy = t // ow
        ox = t - oy * ow
        m = mem[0] * 0
        s = mem[0] * 0
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
            _store(mem, d[SM_Y_BASE] + base + j * inner, f, d[SM_ZY], d[SM_QMIN], d[SM_QMAX], float_mode)


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
        x = mem[d[CP_X_BASE] + i0 * d[CP_X_S0] + i1 * d[CP_X_S1] + i2 * d[CP_X_S2] + i3 * d[CP_X_S3]]
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
    if op == OP_REQUANT or op == OP_ELTWISE or op == OP_POOL or op == OP_COPY or op == OP_SOFTMAX:
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
def run_program(instrs, desc, tiles, fparams, weights, mem, acc, timing, n_units, n_tokens,
                n_layers, execute, float_mode):
    """Execute (if `execute`) and time `instrs`. Returns (counters[layer, counter],
    unit_busy[unit], start[instr], end[instr]); the makespan is end.max()."""
    n = instrs.shape[0]
    counters = np.zeros((n_layers, N_COUNTERS), dtype=np.int64)
    unit_free = np.zeros(n_units, dtype=np.int64)
    unit_busy = np.zeros(n_units, dtype=np.int64)
    token_ready = np.zeros(max(n_tokens, 1), dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    xbuf = np.zeros(max(1, _max_tile_rows(tiles)), dtype=weights.dtype)
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
            if op == OP_MVM:
                _mvm(desc[ins["desc"]], tiles[ins["a0"]], ins["a1"], ins["a2"], mem, weights, acc, xbuf, float_mode)
            elif op == OP_REQUANT:
                _requant(desc[ins["desc"]], ins["a0"], ins["rows"], ins["a1"], ins["a2"], mem, weights, acc, fparams, float_mode)
            elif op == OP_ELTWISE:
                _eltwise(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
            elif op == OP_POOL:
                _pool(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
            elif op == OP_SOFTMAX:
                _softmax(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
            elif op == OP_COPY:
                _copy(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)
    return counters, unit_busy, start, end


@njit(cache=True)
def _max_tile_rows(tiles):
    m = 0
    for t in range(tiles.shape[0]):
        k = tiles[t, 3] - tiles[t, 2]
        if k > m:
            m = k
    return m
