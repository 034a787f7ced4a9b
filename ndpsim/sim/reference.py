"""The reference interpreter: the ISA's semantics in plain Python, one element at a time.

This file is the specification. ndpsim/sim/core.py (numba) must produce the same outputs
and the same counters bit for bit (tests/test_differential.py). Float arithmetic is done in
numpy float32 scalars where the hardware computes in float32, in the same order as the core;
except that the core's float MVM tiles of FLOAT_DOT_MIN_ROWS rows or more reassociate their
sums (ndpsim/sim/kernels_mac.py), so there the float datapath agrees to float32 rounding.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ndpsim.isa import (
    DESC_FIELDS,
    EXECUTES,
    N_COUNTERS,
    OPCODE_TIMING,
    Act,
    Counter,
    EltwiseKind,
    Opcode,
    PoolKind,
    TimingClass,
)
from ndpsim.sim.reference_func import evaluate
from ndpsim.sim.reference_logic import LOGIC_KINDS, eltwise_logic
from ndpsim.sim.reference_ort import fma_f32, pool_ort, softmax_lut
from ndpsim.sim.schedule import Timing

_F32 = np.float32
CV, EW, PL, SM, CP = (DESC_FIELDS[k] for k in ("conv", "eltwise", "pool", "softmax", "copy"))
FN, MM = DESC_FIELDS["func"], DESC_FIELDS["matmul"]


class Machine(NamedTuple):
    """The arrays an instruction's semantics read and write (run_program's arguments)."""

    tiles: np.ndarray
    fparams: np.ndarray
    weights: np.ndarray
    mem: np.ndarray
    acc: np.ndarray
    float_mode: bool


def _integer_datapath_only(float_mode: bool) -> None:
    """onnxruntime's quantized kinds (QADD, AVG_SCALED, AVG_DQ, softmax modes 1 and 2) are
    defined on the integer datapath only (isa/isa.toml)."""
    if float_mode:
        raise ValueError("onnxruntime's quantized kinds run on the integer datapath only")


def _activate(f, act: int, p0: int, p1: int, fparams: np.ndarray):
    if act == Act.RELU and f < 0:
        f = f * _F32(0.0)
    elif act == Act.CLIP:
        if f < fparams[p0]:
            f = fparams[p0]
        if f > fparams[p1]:
            f = fparams[p1]
    elif act == Act.LEAKY_RELU and f < 0:
        f = f * fparams[p0]
    return f


def _store(mem, addr: int, f, zp: int, qmin: int, qmax: int, float_mode: bool) -> None:
    if float_mode:
        mem[addr] = f
    else:
        if f < qmin - zp:  # saturate before converting, as the core does
            mem[addr] = qmin
        elif f > qmax - zp:
            mem[addr] = qmax
        else:
            mem[addr] = int(np.rint(f)) + zp


def _mvm(ins, d, m: Machine):
    tile, p0, n = m.tiles[int(ins["a0"])], int(ins["a1"]), int(ins["a2"])
    mem, weights, acc, float_mode = m.mem, m.weights, m.acc, m.float_mode
    cin, cout, groups = int(d[CV["cin"]]), int(d[CV["cout"]]), int(d[CV["groups"]])
    kh, kw, ow = int(d[CV["kh"]]), int(d[CV["kw"]]), int(d[CV["ow"]])
    cin_g, cout_g, khw = cin // groups, cout // groups, kh * kw
    g0, g1, k0, k1, c0, c1 = (int(v) for v in tile)
    npix = int(d[CV["oh"]]) * ow
    for p in range(p0, p0 + n):
        oy, ox = divmod(p, ow)
        for g in range(g0, g1):
            xs = []
            for k in range(k0, k1):
                ci, r = divmod(k, khw)
                ky, kx = divmod(r, kw)
                iy = oy * d[CV["stride_h"]] - d[CV["pad_top"]] + ky * d[CV["dil_h"]]
                ix = ox * d[CV["stride_w"]] - d[CV["pad_left"]] + kx * d[CV["dil_w"]]
                if 0 <= iy < d[CV["h"]] and 0 <= ix < d[CV["w"]]:
                    a = d[CV["in_base"]] + (g * cin_g + ci) * d[CV["in_sc"]]
                    a += iy * d[CV["in_sy"]] + ix * d[CV["in_sx"]]
                    x = mem[a] - d[CV["in_zp"]]
                    xs.append(_F32(x) if float_mode else int(x))
                else:
                    xs.append(0 if not float_mode else _F32(0.0))
            for co in range(c0, c1):
                oc = g * cout_g + co
                wb = int(d[CV["w_base"]]) + oc * cin_g * khw + k0
                if float_mode:
                    s = _F32(0.0)
                    for j, x in enumerate(xs):
                        s = _F32(s + _F32(weights[wb + j]) * x)
                    acc[int(d[CV["acc_base"]]) + oc * npix + p] += s
                else:
                    s = sum(int(weights[wb + j]) * int(x) for j, x in enumerate(xs))
                    ai = int(d[CV["acc_base"]]) + oc * npix + p
                    acc[ai] = min(
                        max(int(acc[ai]) + s, int(d[CV["acc_min"]])), int(d[CV["acc_max"]])
                    )


def _requant(ins, d, m: Machine):
    c0, nc, p0, n = int(ins["a0"]), int(ins["rows"]), int(ins["a1"]), int(ins["a2"])
    mem, weights, acc, fparams, float_mode = m.mem, m.weights, m.acc, m.fparams, m.float_mode
    ow = int(d[CV["ow"]])
    npix = int(d[CV["oh"]]) * ow
    for c in range(c0, c0 + nc):
        scale = fparams[d[CV["scale_base"]] + c]
        for p in range(p0, p0 + n):
            ai = int(d[CV["acc_base"]]) + c * npix + p
            v = acc[ai]
            acc[ai] = 0
            if d[CV["bias_base"]] >= 0:
                v = v + weights[d[CV["bias_base"]] + c]
            f = _F32(v) * scale
            pre_max = int(d[CV["pre_max"]])
            if pre_max > 0 and not float_mode:  # the rounded, saturated pre-activation
                t = min(max(float(np.rint(f)), -pre_max - 1), pre_max)
                f = _F32(t) * fparams[d[CV["pre_r"]]]
            f = _activate(f, d[CV["act"]], d[CV["act_p0"]], d[CV["act_p1"]], fparams)
            oy, ox = divmod(p, ow)
            addr = (
                d[CV["out_base"]]
                + c * d[CV["out_sc"]]
                + oy * d[CV["out_sy"]]
                + ox * d[CV["out_sx"]]
            )
            _store(mem, addr, f, d[CV["out_zp"]], d[CV["qmin"]], d[CV["qmax"]], float_mode)


def _view_index(e, dims):
    i3 = e % dims[3]
    t = e // dims[3]
    i2 = t % dims[2]
    t //= dims[2]
    return t // dims[1], t % dims[1], i2, i3


def _addr(d, f, base, prefix, idx):
    return d[f[base]] + sum(i * d[f[f"{prefix}{k}"]] for k, i in enumerate(idx))


def divide(fa, fb, float_mode: bool):
    """fa / fb in float32; at fb = 0: +-inf (the signs of fa and fb), and 0 / 0 is NaN on the
    float datapath, 0 on the integer one."""
    if fb == 0:
        if fa == 0 or fa != fa:
            return _F32(math.nan) if float_mode else _F32(0.0)
        return _F32(math.copysign(math.inf, fa) * math.copysign(1.0, fb))
    return fa / fb


def _binary(kind: int, fa, fb, ra, rb, float_mode: bool):
    """ELTWISE's operation on dequantized-domain operands (MAX / MIN: a NaN operand wins)."""
    if kind == EltwiseKind.MUL:
        return fa * fb * ra
    if kind == EltwiseKind.ADD:
        return fa * ra + fb * rb
    if kind == EltwiseKind.DIV:
        return divide(fa, fb, float_mode) * ra
    va, vb = fa * ra, fb * rb
    if kind == EltwiseKind.MAX:
        return va if va >= vb or va != va else vb
    return va if va <= vb or va != va else vb  # MIN


def _eltwise(ins, d, m: Machine):
    e0, n = int(ins["a1"]), int(ins["a2"])
    mem, fparams, float_mode = m.mem, m.fparams, m.float_mode
    dims = [d[EW[f"d{k}"]] for k in range(4)]
    if d[EW["kind"]] in LOGIC_KINDS:  # comparisons, logic, select
        return eltwise_logic(d, e0, n, mem, fparams, float_mode)
    if d[EW["kind"]] == EltwiseKind.QADD:  # onnxruntime's QLinearAdd
        _integer_datapath_only(float_mode)
        ra, rb, rc = fparams[d[EW["ra"]]], fparams[d[EW["rb"]]], fparams[d[EW["rc"]]]
        for e in range(e0, e0 + n):
            idx = _view_index(e, dims)
            a = _F32(mem[_addr(d, EW, "a_base", "a_s", idx)])
            b = _F32(mem[_addr(d, EW, "b_base", "b_s", idx)])
            f = fma_f32(a, ra, fma_f32(b, rb, rc))
            y = _addr(d, EW, "y_base", "y_s", idx)
            _store(mem, y, f, 0, d[EW["qmin"]], d[EW["qmax"]], False)
        return
    ra, rb = fparams[d[EW["ra"]]], fparams[d[EW["rb"]]]
    for e in range(e0, e0 + n):
        idx = _view_index(e, dims)
        a = mem[_addr(d, EW, "a_base", "a_s", idx)]
        b = mem[_addr(d, EW, "b_base", "b_s", idx)]
        fa = _F32(a - d[EW["za"]])
        fb = _F32(b - d[EW["zb"]])
        f = _binary(d[EW["kind"]], fa, fb, ra, rb, float_mode)
        f = _activate(f, d[EW["act"]], d[EW["act_p0"]], d[EW["act_p1"]], fparams)
        _store(
            mem,
            _addr(d, EW, "y_base", "y_s", idx),
            f,
            d[EW["zy"]],
            d[EW["qmin"]],
            d[EW["qmax"]],
            float_mode,
        )


def _pool(ins, d, m: Machine):
    p0, n = int(ins["a1"]), int(ins["a2"])
    mem, fparams, float_mode = m.mem, m.fparams, m.float_mode
    g = {k: int(d[v]) for k, v in PL.items()}
    if g["kind"] in (PoolKind.AVG_SCALED, PoolKind.AVG_DQ):
        _integer_datapath_only(float_mode)
        pool_ort(g, p0, n, mem, fparams, _store)
        return
    r = fparams[g["r"]]
    for p in range(p0, p0 + n):
        c, t = divmod(p, g["oh"] * g["ow"])
        oy, ox = divmod(t, g["ow"])
        vals = []
        for ky in range(g["kh"]):
            iy = oy * g["stride_h"] - g["pad_top"] + ky * g["dil_h"]
            for kx in range(g["kw"]):
                ix = ox * g["stride_w"] - g["pad_left"] + kx * g["dil_w"]
                if 0 <= iy < g["h"] and 0 <= ix < g["w"]:
                    x = mem[g["in_base"] + c * g["in_sc"] + iy * g["in_sy"] + ix * g["in_sx"]]
                    vals.append(float(x) - g["zx"] if float_mode else int(x) - g["zx"])
        count = g["kh"] * g["kw"] if g["count_include_pad"] else len(vals)
        if g["kind"] == PoolKind.MAX:
            f = _F32(max(vals) if vals else 0) * r
        else:
            s = 0.0 if float_mode else 0  # float64 sums in float mode, as the core's
            for v in vals:
                s += v
            f = _F32(s) * r if g["kind"] == PoolKind.SUM else _F32(s) / _F32(count) * r
        f = _activate(f, g["act"], g["act_p0"], g["act_p1"], fparams)
        y = g["out_base"] + c * g["out_sc"] + oy * g["out_sy"] + ox * g["out_sx"]
        _store(mem, y, f, g["zy"], g["qmin"], g["qmax"], float_mode)


def _softmax(ins, d, m: Machine):
    r0, n = int(ins["a1"]), int(ins["a2"])
    mem, fparams, float_mode = m.mem, m.fparams, m.float_mode
    g = {k: int(d[v]) for k, v in SM.items()}
    if g["mode"]:
        _integer_datapath_only(float_mode)
        softmax_lut(g, r0, n, mem, fparams)
        return
    sx, sy = fparams[g["sx"]], fparams[g["sy"]]
    for row in range(r0, r0 + n):
        o, i = divmod(row, g["inner"])
        addrs = [o * g["length"] * g["inner"] + i + j * g["inner"] for j in range(g["length"])]
        vs = [float(_F32(_F32(mem[g["x_base"] + a] - g["zx"]) * sx)) for a in addrs]
        m = max(vs)
        total = 0.0
        for v in vs:
            total += math.exp(v - m)
        for a, v in zip(addrs, vs, strict=True):
            f = _F32(math.exp(v - m) / total) / sy
            _store(mem, g["y_base"] + a, f, g["zy"], g["qmin"], g["qmax"], float_mode)


def _copy(ins, d, m: Machine):
    e0, n = int(ins["a1"]), int(ins["a2"])
    mem, fparams, float_mode = m.mem, m.fparams, m.float_mode
    dims = [d[CP[f"d{k}"]] for k in range(4)]
    r = fparams[d[CP["r"]]]
    for e in range(e0, e0 + n):
        idx = _view_index(e, dims)
        x = mem[_addr(d, CP, "x_base", "x_s", idx)]
        f = _F32(x - d[CP["zx"]]) * r
        if d[CP["mode"]] == 1:  # dequantize, then quantize
            f = f / fparams[d[CP["r2"]]]
        f = _activate(f, d[CP["act"]], d[CP["act_p0"]], d[CP["act_p1"]], fparams)
        _store(
            mem,
            _addr(d, CP, "y_base", "y_s", idx),
            f,
            d[CP["zy"]],
            d[CP["qmin"]],
            d[CP["qmax"]],
            float_mode,
        )


def _func(ins, d, m: Machine):
    e0, n = int(ins["a1"]), int(ins["a2"])
    mem, fparams, float_mode = m.mem, m.fparams, m.float_mode
    g = {k: int(d[v]) for k, v in FN.items()}
    sx, ry = fparams[g["sx"]], fparams[g["ry"]]
    for e in range(e0, e0 + n):
        v = _F32(mem[g["x_base"] + e] - g["zx"]) * sx
        f = evaluate(g["kind"], v, fparams, g) * ry
        _store(mem, g["y_base"] + e, f, g["zy"], g["qmin"], g["qmax"], float_mode)


def _matmul(ins, d, m: Machine):
    r0, n = int(ins["a1"]), int(ins["a2"])
    mem, fparams, float_mode = m.mem, m.fparams, m.float_mode
    g = {k: int(d[v]) for k, v in MM.items()}
    r = fparams[g["r"]]
    for t in range(r0, r0 + n):
        b0, rest = divmod(t, g["d1"] * g["m"])
        b1, i = divmod(rest, g["m"])
        a_row = g["a_base"] + b0 * g["a_s0"] + b1 * g["a_s1"] + i * g["a_sm"]
        b_mat = g["b_base"] + b0 * g["b_s0"] + b1 * g["b_s1"]
        y_row = g["y_base"] + b0 * g["y_s0"] + b1 * g["y_s1"] + i * g["y_sm"]
        for j in range(g["n"]):
            a_at = [a_row + kk * g["a_sk"] for kk in range(g["k"])]
            b_at = [b_mat + kk * g["b_sk"] + j * g["b_sn"] for kk in range(g["k"])]
            if float_mode:  # float32 products summed in k order
                s = _F32(0.0)
                for a, b in zip(a_at, b_at, strict=True):
                    s = _F32(s + _F32(mem[a] - g["za"]) * _F32(mem[b] - g["zb"]))
            else:  # exact integer products and sum
                s = sum(int(mem[a] - g["za"]) * int(mem[b] - g["zb"])
                        for a, b in zip(a_at, b_at, strict=True))  # fmt: skip
            f = _activate(_F32(s) * r, g["act"], g["act_p0"], g["act_p1"], fparams)
            _store(mem, y_row + j * g["y_sn"], f, g["zy"], g["qmin"], g["qmax"], float_mode)


# The semantics of every opcode with arithmetic (isa.EXECUTES): fn(instruction, its
# descriptor row, the machine). Opcodes without arithmetic only take time and move traffic.
SEMANTICS = {
    Opcode.MVM: _mvm,
    Opcode.REQUANT: _requant,
    Opcode.ELTWISE: _eltwise,
    Opcode.POOL: _pool,
    Opcode.SOFTMAX: _softmax,
    Opcode.COPY: _copy,
    Opcode.FUNC: _func,
    Opcode.MATMUL: _matmul,
}
if set(SEMANTICS) != EXECUTES:
    raise RuntimeError(f"isa/isa.toml says {sorted(EXECUTES)} have arithmetic; "
                       f"reference.py has semantics for {sorted(SEMANTICS)}")  # fmt: skip


def duration(ins, t: Timing) -> tuple[int, int]:
    """(cycles on the unit, of which compute-bound): docs/machine_model.md's timing equation
    of the opcode's timing class (isa/isa.toml)."""
    op = Opcode(int(ins["op"]))
    cls = OPCODE_TIMING[op]
    if cls == TimingClass.MACRO:
        in_cycles = math.ceil(int(ins["a_bits"]) / t.input_bits_per_cycle)
        cell_cols = int(ins["cols"]) * int(ins["w_bits"])  # bit-sliced weights
        readout = max(1, math.ceil(cell_cols / (t.readout_columns_per_cycle * t.column_bits)))
        compute = int(ins["a2"]) * in_cycles * readout + t.macro_pipeline_cycles
        return max(compute, math.ceil(int(ins["bytes_in"]) / t.sram_bytes_per_cycle)), compute
    if cls == TimingClass.VECTOR:
        per = t.softmax_cycles_per_element if op == Opcode.SOFTMAX else 1
        compute = math.ceil(int(ins["work"]) / t.vector_lanes) * per + t.vector_pipeline_cycles
        sram = math.ceil((int(ins["bytes_in"]) + int(ins["bytes_out"])) / t.sram_bytes_per_cycle)
        return max(compute, sram), compute
    nbytes = int(ins["bytes_in"]) + int(ins["bytes_out"])
    if cls == TimingClass.EXT_MEM:
        return t.ext_mem_latency_cycles + math.ceil(nbytes / t.ext_mem_bytes_per_cycle), 0
    if cls == TimingClass.HOST:
        return math.ceil(nbytes / t.sram_bytes_per_cycle), 0
    if op == Opcode.NOP and int(ins["a0"]) == 1:  # CONTROL: a layer setup, a2 output positions
        return t.layer_setup_cycles + int(ins["a2"]) * t.position_cycles, 0
    return 0, 0


def count(cnt: np.ndarray, ins, dur: int, compute: int, t: Timing) -> None:
    """Bump the counters the opcode declares in isa/isa.toml: by timing class, with the
    opcodes that count differently named."""
    op = Opcode(int(ins["op"]))
    cls = OPCODE_TIMING[op]
    C = Counter
    cnt[C.INSTRUCTIONS] += 1
    n, rows, cols = int(ins["a2"]), int(ins["rows"]), int(ins["cols"])
    b_in, b_out, work = int(ins["bytes_in"]), int(ins["bytes_out"]), int(ins["work"])
    if cls == TimingClass.MACRO:
        in_cycles = math.ceil(int(ins["a_bits"]) / t.input_bits_per_cycle)
        cnt[C.MACS] += work
        cnt[C.MACRO_VECTORS] += n
        cnt[C.MACRO_INPUT_CYCLES] += n * in_cycles
        cnt[C.MACRO_CELL_BIT_OPS] += n * rows * cols * int(ins["w_bits"]) * int(ins["a_bits"])
        cnt[C.MACRO_ROW_ACTIVATIONS] += n * in_cycles * rows
        cnt[C.READOUT_CONVERSIONS] += n * in_cycles * cols
        cnt[C.ACCUMULATOR_ADDS] += n * cols
        cnt[C.SRAM_READ_BYTES] += b_in
        cnt[C.MACRO_BUSY_CYCLES] += dur
        cnt[C.MACRO_COMPUTE_CYCLES] += compute
    elif cls == TimingClass.VECTOR:
        cnt[C.VECTOR_ELEMENT_OPS] += work * (3 if op == Opcode.SOFTMAX else 1)
        if op == Opcode.MATMUL:  # a product of two activations: its work is its MACs
            cnt[C.MACS] += work
        if op == Opcode.SOFTMAX:
            cnt[C.VECTOR_LUT_OPS] += work
        if op == Opcode.FUNC:
            cnt[C.VECTOR_LUT_OPS] += n
        if op != Opcode.REQUANT:  # REQUANT reads the accumulator, not SRAM
            cnt[C.SRAM_READ_BYTES] += b_in
        cnt[C.SRAM_WRITE_BYTES] += b_out
        cnt[C.VECTOR_BUSY_CYCLES] += dur
        cnt[C.VECTOR_COMPUTE_CYCLES] += compute
    elif op == Opcode.LOAD_W:
        cnt[C.EXT_READ_BYTES] += b_in
        cnt[C.WEIGHT_WRITE_BYTES] += b_in
    elif op == Opcode.LOAD_A:
        cnt[C.EXT_READ_BYTES] += b_in
        cnt[C.SRAM_WRITE_BYTES] += b_in
    elif op == Opcode.STORE_A:
        cnt[C.SRAM_READ_BYTES] += b_out
        cnt[C.EXT_WRITE_BYTES] += b_out
    elif op == Opcode.HOST_IN:
        cnt[C.HOST_BYTES] += b_in
        cnt[C.SRAM_WRITE_BYTES] += b_in
    elif op == Opcode.HOST_OUT:
        cnt[C.HOST_BYTES] += b_out
        cnt[C.SRAM_READ_BYTES] += b_out
    if cls in (TimingClass.EXT_MEM, TimingClass.HOST):
        cnt[C.DMA_BUSY_CYCLES] += dur


def run_program(
    instrs,
    desc,
    tiles,
    fparams,
    weights,
    mem,
    acc,
    timing: Timing,
    n_units: int,
    n_tokens: int,
    n_layers: int,
    execute: bool,
    float_mode: bool,
):
    """Same contract as core.run_program; mutates mem and acc."""
    counters = np.zeros((n_layers, N_COUNTERS), dtype=np.int64)
    unit_free = [0] * n_units
    unit_busy = np.zeros(n_units, dtype=np.int64)
    token_ready = [0] * max(n_tokens, 1)
    start = np.zeros(len(instrs), dtype=np.int64)
    end = np.zeros(len(instrs), dtype=np.int64)
    machine = Machine(tiles, fparams, weights, mem, acc, float_mode)
    for i, ins in enumerate(instrs):
        u = int(ins["unit"])
        waits = [token_ready[int(ins[w])] for w in ("wait0", "wait1", "wait2") if ins[w] >= 0]
        t0 = max([i * timing.instruction_issue_cycles, unit_free[u], *waits])
        dur, compute = duration(ins, timing)
        start[i], end[i] = t0, t0 + dur
        unit_free[u] = t0 + dur
        unit_busy[u] += dur
        if ins["signal"] >= 0:
            token_ready[int(ins["signal"])] = max(token_ready[int(ins["signal"])], t0 + dur)
        count(counters[int(ins["layer"])], ins, dur, compute, timing)
        semantics = SEMANTICS.get(int(ins["op"]))
        if execute and semantics is not None:
            semantics(ins, desc[int(ins["desc"])], machine)
    return counters, unit_busy, start, end
