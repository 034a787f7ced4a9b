"""Random *valid* small programs for differential tests (reference interpreter vs numba core).

`random_program(seed)` draws a machine (units, timing), a memory arena, weights, float
parameters and a short list of operations — convs (dense, grouped, depthwise, Gemm-like h x 1,
strides, dilations, pads, non-square kernels, k-folded and block-diagonal tiles), element-wise
add/mul with broadcasting, max/avg pooling, softmax, strided copies, function-unit
(FUNC: tables, piecewise, sqrt) evaluations and batched products of two activations
(MATMUL) — lowered to MVM / REQUANT / vector instructions, with DMA, HOST and NOP
instructions sprinkled in, random units, report rows and dependency tokens. Everything is
small (arena < ~5,000 elements, < ~60 instructions) so the reference runs in milliseconds.

"Valid" means: every address an instruction touches is inside its array, every tile lies
inside its conv's weight matrix, waits name tokens signaled earlier in program order, and no
AVG pool window has zero valid elements with count_include_pad=0 (the one undefined case).
Outputs may alias inputs only where both interpreters agree by definition: exactly in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ndpsim.isa import Act, EltwiseKind, FuncKind, Opcode, PoolKind, Unit
from ndpsim.lower.program import Builder
from ndpsim.sim.core import Timing

MAX_INSTRUCTIONS = 60
_DMA_OPS = (Opcode.LOAD_W, Opcode.LOAD_A, Opcode.STORE_A, Opcode.HOST_IN, Opcode.HOST_OUT)
# (qmin, qmax) of the stored activations: int8, uint8, and narrow ones that saturate often.
_QRANGES = ((-128, 127), (0, 255), (-8, 7), (0, 15))
# Accumulator saturation bounds: 32-bit, and narrow ones that clip real sums.
_ACC_RANGES = ((-(2**31), 2**31 - 1), (-(2**15), 2**15 - 1), (-(2**10), 2**10 - 1))


@dataclass
class RandomProgram:
    """Everything `run_program` takes. `run` copies mem and acc, so a program can be rerun."""

    seed: int
    instrs: np.ndarray
    desc: np.ndarray
    tiles: np.ndarray
    fparams: np.ndarray
    weights: np.ndarray
    mem: np.ndarray
    acc: np.ndarray
    timing: Timing
    n_units: int
    n_tokens: int
    n_layers: int
    float_mode: bool

    def run(self, runner: Callable, timing: Timing | None = None, execute: bool = True):
        """(counters, unit_busy, start, end, mem, acc) after running on `runner`."""
        mem, acc = self.mem.copy(), self.acc.copy()
        out = runner(
            self.instrs,
            self.desc,
            self.tiles,
            self.fparams,
            self.weights,
            mem,
            acc,
            timing or self.timing,
            self.n_units,
            self.n_tokens,
            self.n_layers,
            execute,
            self.float_mode,
        )
        return (*out, mem, acc)


def random_timing(rng: np.random.Generator) -> Timing:
    """Random timing parameters (ints stay int and bandwidths float: one numba specialization)."""
    return Timing(
        input_bits_per_cycle=int(rng.choice([1, 2, 3, 4, 8])),
        readout_columns_per_cycle=int(rng.choice([1, 8, 16, 64, 128])),
        macro_pipeline_cycles=int(rng.integers(0, 9)),
        vector_lanes=int(rng.choice([1, 4, 8, 16, 32])),
        vector_pipeline_cycles=int(rng.integers(0, 7)),
        softmax_cycles_per_element=int(rng.integers(1, 9)),
        sram_bytes_per_cycle=float(rng.choice([0.5, 1.0, 3.5, 8.0, 16.0, 64.0])),
        ext_mem_bytes_per_cycle=float(rng.choice([0.25, 1.0, 2.0, 4.5, 8.0])),
        ext_mem_latency_cycles=int(rng.integers(0, 200)),
        instruction_issue_cycles=int(rng.integers(0, 4)),
        layer_setup_cycles=int(rng.integers(0, 40)),
        column_bits=int(rng.choice([1, 4, 8])),
        position_cycles=int(rng.integers(0, 50)),
    )


def _ilist(rng, n: int, lo: int, hi: int) -> list[int]:
    return [int(v) for v in rng.integers(lo, hi + 1, n)]


def _layout(rng, dims: list[int], broadcast_p: float = 0.0) -> tuple[list[int], int]:
    """Strides of a view of `dims` laid out in a random axis order (a permutation), with
    some axes broadcast (stride 0) with probability `broadcast_p`; and the span in elements."""
    strides = [0] * len(dims)
    step = 1
    for axis in rng.permutation(len(dims)):
        if dims[axis] > 1 and rng.random() < broadcast_p:
            continue
        strides[axis] = step
        step *= dims[axis]
    span = 1 + sum((d - 1) * s for d, s in zip(dims, strides, strict=True))
    return strides, span


def _chunks(rng, total: int, max_chunks: int = 3) -> list[tuple[int, int]]:
    """Split range(total) into 1..max_chunks consecutive (first, count) pieces."""
    k = int(rng.integers(1, min(max_chunks, total) + 1))
    cuts = (
        sorted(int(c) for c in rng.choice(np.arange(1, total), k - 1, replace=False))
        if k > 1
        else []
    )
    edges = [0, *cuts, total]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _out_size(n: int, k: int, stride: int, dil: int, pad0: int, pad1: int) -> int:
    return max(1, (n + pad0 + pad1 - dil * (k - 1) - 1) // stride + 1)


class _Gen:
    def __init__(
        self,
        seed: int,
        float_mode: bool,
        size: int,
        empty_pool_windows: bool,
        wide: bool = False,
        deep: bool = False,
    ):
        self.rng = np.random.default_rng(seed)
        self.float_mode = float_mode
        self.wide = wide
        self.deep = deep
        self.size = size
        self.empty_pool_windows = empty_pool_windows
        r = self.rng
        classes = (
            [Unit.MACRO] * int(r.integers(1, 4))
            + [Unit.VECTOR] * int(r.integers(1, 3))
            + [Unit.DMA] * int(r.integers(1, 3))
        )
        classes = [classes[i] for i in r.permutation(len(classes))]
        self.units = {c: [i for i, k in enumerate(classes) if k == c] for c in Unit}
        self.b = Builder(classes, [f"{c.name.lower()}{i}" for i, c in enumerate(classes)])
        self.n_layers = int(r.integers(1, 5))
        self.mem: list[float] = []
        self.weights: list[float] = []
        self.fparams: list[float] = []
        self.acc_size = 0
        self.regions: list[tuple[int, int]] = []  # (base, size) of initialized data
        self.ops: list[dict] = []  # instruction keyword arguments, before tokens

    # --- storage -----------------------------------------------------------------------
    def values(self, n: int) -> list[float]:
        r = self.rng
        if self.float_mode and r.random() < 0.7:
            return [float(v) for v in r.normal(0.0, 4.0, n).astype(np.float32)]
        lo, hi = ((-128, 127), (0, 255))[int(r.integers(0, 2))]
        if self.wide:
            lo, hi = -(2**15), 2**15 - 1
        return _ilist(r, n, lo, hi)

    def alloc(self, n: int) -> int:
        """A fresh arena region of `n` elements holding random values (garbage for outputs)."""
        base = len(self.mem)
        self.mem += self.values(n)
        return base

    def source(self, n: int) -> int:
        """An input region of `n` elements: often data an earlier operation wrote."""
        fits = [(b, s) for b, s in self.regions if s >= n]
        if fits and self.rng.random() < 0.5:
            b, s = fits[int(self.rng.integers(0, len(fits)))]
            return b + int(self.rng.integers(0, s - n + 1))
        base = self.alloc(n)
        self.regions.append((base, n))
        return base

    def fp(self, value: float) -> int:
        self.fparams.append(float(np.float32(value)))
        return len(self.fparams) - 1

    def scale(self) -> int:
        return self.fp(10.0 ** self.rng.uniform(-3.0, 0.0))

    def wslots(self, values: list[float]) -> int:
        self.weights += values
        return len(self.weights) - len(values)

    def quant(self) -> dict[str, int]:
        qmin, qmax = _QRANGES[int(self.rng.integers(0, len(_QRANGES)))]
        return {"qmin": qmin, "qmax": qmax}

    def zp(self) -> int:
        r = self.rng
        return int(r.choice([0, 0, int(r.integers(-20, 21)), 128, -128]))

    def act(self) -> dict[str, int]:
        r = self.rng
        act = Act(int(r.integers(0, len(Act))))
        if act == Act.CLIP:
            lo = float(r.uniform(-100.0, 50.0))
            hi = lo + float(r.uniform(0.0, 150.0))
            if r.random() < 0.15:  # lo > hi: defined (clamp to lo, then to hi), rarely used
                lo, hi = hi, lo
            return {"act": int(act), "act_p0": self.fp(lo), "act_p1": self.fp(hi)}
        if act == Act.LEAKY_RELU:
            return {"act": int(act), "act_p0": self.fp(r.uniform(0.0, 0.5)), "act_p1": 0}
        # NONE / RELU: the parameter slots are not read, point them anywhere valid.
        return {"act": int(act), "act_p0": self.fp(0.0), "act_p1": self.fp(1.0)}

    def preact(self) -> dict[str, int]:
        """A pre-activation stage (pre_max > 0) on half the conv descriptors: 16 bits, or
        narrow ones that often saturate."""
        r = self.rng
        if r.random() < 0.5:
            return {"pre_max": 0, "pre_r": self.fp(1.0)}
        bits = int(r.choice([4, 8, 16]))
        return {"pre_max": (1 << (bits - 1)) - 1, "pre_r": self.fp(2.0 ** -int(r.integers(0, 9)))}

    # --- instructions ------------------------------------------------------------------
    def unit(self, cls: Unit) -> int:
        us = self.units[cls]
        return us[int(self.rng.integers(0, len(us)))]

    def emit(self, op: Opcode, **kw: int) -> None:
        kw.setdefault("layer", int(self.rng.integers(0, self.n_layers)))
        self.ops.append({"op": op, **kw})

    def vector(self, op: Opcode, desc: int, total: int, per_item: int, b_in: int, b_out: int):
        """Instructions of a vector operation over `total` work items, in random chunks."""
        for a1, n in _chunks(self.rng, total):
            self.emit(
                op,
                unit=self.unit(Unit.VECTOR),
                desc=desc,
                a1=a1,
                a2=n,
                work=n * per_item,
                bytes_in=n * b_in,
                bytes_out=n * b_out,
            )

    def conv(self) -> None:
        r = self.rng
        shape = str(r.choice(["dense", "grouped", "depthwise", "gemm"]))
        kh, kw = _ilist(r, 2, 1, 3)
        sh, sw, dh, dw = _ilist(r, 4, 1, 2)
        pt, pl, pb, pr = _ilist(r, 4, 0, 2)
        h, w = _ilist(r, 2, 1, 6)
        deep = self.deep  # tens to hundreds of rows per tile: the kernels' long-dot paths
        if shape == "gemm":  # a fully-connected layer: h x 1 vectors, 1x1 "kernel"
            cin = int(r.integers(32, 301) if deep else r.integers(1, 17))
            groups, cout = 1, int(r.integers(1, 9))
            w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr = 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0
        elif shape == "dense":
            groups, cin = 1, int(r.integers(8, 41) if deep else r.integers(1, 5))
            cout = int(r.integers(1, 7))
        elif shape == "grouped":
            groups = int(r.integers(2, 4))
            cin = groups * int(r.integers(8, 17) if deep else r.integers(1, 4))
            cout = groups * int(r.integers(1, 4))
        else:
            groups = cin = int(r.integers(1, 7))
            cout = cin * int(r.integers(1, 3))
        oh, ow = _out_size(h, kh, sh, dh, pt, pb), _out_size(w, kw, sw, dw, pl, pr)
        cout_g, k_g, npix = cout // groups, cin // groups * kh * kw, oh * ow
        in_s, in_span = _layout(r, [cin, h, w])
        out_s, out_span = _layout(r, [cout, oh, ow])
        if self.float_mode:
            wv = [float(v) for v in r.normal(0.0, 1.0, cout * k_g).astype(np.float32)]
            bias = [float(v) for v in r.normal(0.0, 10.0, cout).astype(np.float32)]
        else:
            wb = 16 if self.wide else int(r.integers(2, 9))  # weight bits
            wv = _ilist(r, cout * k_g, -(2 ** (wb - 1)), 2 ** (wb - 1) - 1)
            bias = _ilist(r, cout, -2000, 2000)
        acc_min, acc_max = _ACC_RANGES[int(r.integers(0, len(_ACC_RANGES)))]
        acc_base, self.acc_size = self.acc_size, self.acc_size + cout * npix
        in_base = self.source(in_span)
        out_base = self.alloc(out_span)
        d = self.b.descriptor(
            "conv",
            in_base=in_base,
            in_sc=in_s[0],
            in_sy=in_s[1],
            in_sx=in_s[2],
            cin=cin,
            h=h,
            w=w,
            out_base=out_base,
            out_sc=out_s[0],
            out_sy=out_s[1],
            out_sx=out_s[2],
            cout=cout,
            oh=oh,
            ow=ow,
            kh=kh,
            kw=kw,
            stride_h=sh,
            stride_w=sw,
            dil_h=dh,
            dil_w=dw,
            pad_top=pt,
            pad_left=pl,
            groups=groups,
            w_base=self.wslots(wv),
            acc_base=acc_base,
            bias_base=self.wslots(bias) if r.random() < 0.7 else -1,
            scale_base=self._scales(cout),
            in_zp=self.zp(),
            out_zp=self.zp(),
            **self.quant(),
            **self.act(),
            acc_min=acc_min,
            acc_max=acc_max,
            **self.preact(),
        )
        # Tiles: groups per tile (block-diagonal when > 1), a k-fold and a cout-fold.
        gpt = int(r.integers(-(-groups // 2), groups + 1))
        rows = int(r.integers(-(-k_g // 3), k_g + 1))
        cols = int(r.integers(-(-cout_g // 2), cout_g + 1))
        tiles = []
        for g0 in range(0, groups, gpt):
            for k0 in range(0, k_g, rows):
                for c0 in range(0, cout_g, cols):
                    g1, k1, c1 = min(g0 + gpt, groups), min(k0 + rows, k_g), min(c0 + cols, cout_g)
                    tiles.append((self.b.tile(g0, g1, k0, k1, c0, c1), g1 - g0, k1 - k0, c1 - c0))
        w_bits, a_bits = _ilist(r, 2, 1, 8)
        for p0, n in _chunks(r, npix, 2):
            for t, ng, nk, nc in tiles:
                self.emit(
                    Opcode.MVM,
                    unit=self.unit(Unit.MACRO),
                    desc=d,
                    a0=t,
                    a1=p0,
                    a2=n,
                    rows=ng * nk,
                    cols=ng * nc,
                    w_bits=w_bits,
                    a_bits=a_bits,
                    work=n * ng * nk * nc,
                    bytes_in=n * ng * nk * a_bits // 8,
                )
            for c0, nc in _chunks(r, cout, 2):
                self.emit(
                    Opcode.REQUANT,
                    unit=self.unit(Unit.VECTOR),
                    desc=d,
                    a0=c0,
                    a1=p0,
                    a2=n,
                    rows=nc,
                    work=nc * n,
                    bytes_out=nc * n,
                )
        self.regions.append((out_base, out_span))

    def _scales(self, n: int) -> int:
        first = self.scale()
        for _ in range(n - 1):
            self.scale()
        return first

    def eltwise(self) -> None:
        r = self.rng
        dims = self._dims()
        a_s, a_span = _layout(r, dims, 0.3)
        b_s, b_span = _layout(r, dims, 0.3)
        y_s, y_span = _layout(r, dims)
        kinds = [k for k in EltwiseKind if not (self.float_mode and k == EltwiseKind.QADD)]
        kind = kinds[int(r.integers(0, len(kinds)))]  # QADD: integer only
        a_base, b_base = self.source(a_span), self.source(b_span)
        # Exactly in place (y over a) is well defined: each element is read, then written;
        # unless b lies in a's region too (then writes would reach b before it is read).
        apart = b_base >= a_base + a_span or a_base >= b_base + b_span
        in_place = a_s == y_s and r.random() < 0.3 and apart
        y_base = a_base if in_place else self.alloc(y_span)
        d = self.b.descriptor(
            "eltwise",
            kind=int(kind),
            a_base=a_base,
            b_base=b_base,
            y_base=y_base,
            **{f"d{k}": v for k, v in enumerate(dims)},
            **{f"a_s{k}": v for k, v in enumerate(a_s)},
            **{f"b_s{k}": v for k, v in enumerate(b_s)},
            **{f"y_s{k}": v for k, v in enumerate(y_s)},
            za=self.zp(),
            zb=self.zp(),
            zy=self.zp(),
            **self.quant(),
            ra=self.scale(),
            rb=self.scale(),
            rc=self.fp(float(r.normal(0, 20))),
            **self.act(),
        )
        self.vector(Opcode.ELTWISE, d, int(np.prod(dims)), 1, 2, 1)
        self.regions.append((y_base, y_span))

    def matmul(self) -> None:
        """A product of two activations: batched [d0, d1] (operand batch dims broadcast with
        stride 0), every operand in a random axis order, a fused activation."""
        r = self.rng
        d0, d1, m, k, n = _ilist(r, 5, 1, 2 + self.size)
        a_s, a_span = _layout(r, [d0, d1, m, k], 0.3)
        b_s, b_span = _layout(r, [d0, d1, k, n], 0.3)
        y_s, y_span = _layout(r, [d0, d1, m, n])
        y_base = self.alloc(y_span)
        fields = dict(zip(("a_s0", "a_s1", "a_sm", "a_sk"), a_s, strict=True))
        fields.update(zip(("b_s0", "b_s1", "b_sk", "b_sn"), b_s, strict=True))
        fields.update(zip(("y_s0", "y_s1", "y_sm", "y_sn"), y_s, strict=True))
        d = self.b.descriptor(
            "matmul", a_base=self.source(a_span), b_base=self.source(b_span), y_base=y_base,
            d0=d0, d1=d1, m=m, k=k, n=n, **fields, za=self.zp(), zb=self.zp(), zy=self.zp(),
            **self.quant(), r=self.fp(10.0 ** r.uniform(-4.0, -1.0)), **self.act(),
        )  # fmt: skip
        self.vector(Opcode.MATMUL, d, d0 * d1 * m, n * k, k, n)
        self.regions.append((y_base, y_span))

    def _dims(self) -> list[int]:
        dims = _ilist(self.rng, 4, 1, 3 + self.size)
        while int(np.prod(dims)) > 64:
            dims[int(np.argmax(dims))] -= 1
        return dims

    def pool(self) -> None:
        r = self.rng
        c, h, w = int(r.integers(1, 5)), *_ilist(r, 2, 1, 6)
        kh, kw = _ilist(r, 2, 1, 3)
        sh, sw, dh, dw = _ilist(r, 4, 1, 2)
        pt, pl, pb, pr = _ilist(r, 4, 0, 2)
        oh, ow = _out_size(h, kh, sh, dh, pt, pb), _out_size(w, kw, sw, dw, pl, pr)
        ort = (PoolKind.AVG_SCALED, PoolKind.AVG_DQ)  # integer datapath only
        kinds = [k for k in PoolKind if not (self.float_mode and k in ort)]
        kind = kinds[int(r.integers(0, len(kinds)))]
        cip = int(r.integers(0, 2))
        empty = _has_empty_window(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)
        if empty and not self.empty_pool_windows:  # without pads every window has an element
            pt = pl = pb = pr = 0
            oh, ow = _out_size(h, kh, sh, dh, 0, 0), _out_size(w, kw, sw, dw, 0, 0)
        elif empty and kind != PoolKind.MAX and not cip:
            cip = 1  # an empty window averaged over zero elements is undefined
        in_s, in_span = _layout(r, [c, h, w])
        out_s, out_span = _layout(r, [c, oh, ow])
        out_base = self.alloc(out_span)
        d = self.b.descriptor(
            "pool",
            kind=int(kind),
            in_base=self.source(in_span),
            in_sc=in_s[0],
            in_sy=in_s[1],
            in_sx=in_s[2],
            c=c,
            h=h,
            w=w,
            out_base=out_base,
            out_sc=out_s[0],
            out_sy=out_s[1],
            out_sx=out_s[2],
            oh=oh,
            ow=ow,
            kh=kh,
            kw=kw,
            stride_h=sh,
            stride_w=sw,
            dil_h=dh,
            dil_w=dw,
            pad_top=pt,
            pad_left=pl,
            count_include_pad=cip,
            zx=self.zp(),
            zy=self.zp(),
            **self.quant(),
            r=self.scale(),
            r2=self.scale(),
            **self.act(),
        )
        self.vector(Opcode.POOL, d, c * oh * ow, kh * kw, kh * kw, 1)
        self.regions.append((out_base, out_span))

    def softmax(self) -> None:
        r = self.rng
        outer, length, inner = int(r.integers(1, 4)), int(r.integers(1, 7)), int(r.integers(1, 4))
        n = outer * length * inner
        x_base = self.source(n)
        y_base = x_base if r.random() < 0.2 else self.alloc(n)
        d = self.b.descriptor(
            "softmax",
            x_base=x_base,
            y_base=y_base,
            outer=outer,
            length=length,
            inner=inner,
            zx=self.zp(),
            zy=self.zp(),
            **self.quant(),
            sx=self.scale(),
            sy=self.scale(),
            **self.softmax_lut(),
        )
        self.vector(Opcode.SOFTMAX, d, outer * inner, length, length, length)
        self.regions.append((y_base, n))

    def softmax_lut(self) -> dict[str, int]:
        """Integer mode: sometimes onnxruntime's exp-table softmax (uint8 or int8 flavour)."""
        if self.float_mode or self.rng.random() < 0.5:
            return {}
        lut = self.fp(float(self.rng.uniform(0.01, 100.0)))
        for _ in range(255):
            self.fp(float(self.rng.uniform(0.01, 100.0)))
        return {"mode": int(self.rng.integers(1, 3)), "lut": lut}

    def copy(self) -> None:
        r = self.rng
        dims = self._dims()
        x_s, x_span = _layout(r, dims, 0.25)
        y_s, y_span = _layout(r, dims)
        pad = int(r.integers(0, 4))  # the view sits inside a larger tensor (concat / pad)
        y_base = self.alloc(y_span + 2 * pad) + pad
        d = self.b.descriptor(
            "copy",
            x_base=self.source(x_span),
            y_base=y_base,
            **{f"d{k}": v for k, v in enumerate(dims)},
            **{f"x_s{k}": v for k, v in enumerate(x_s)},
            **{f"y_s{k}": v for k, v in enumerate(y_s)},
            zx=self.zp(),
            zy=self.zp(),
            **self.quant(),
            r=self.scale(),
            **self.act(),
            mode=int(not self.float_mode and r.random() < 0.3),
            r2=self.scale(),
        )
        self.vector(Opcode.COPY, d, int(np.prod(dims)), 1, 1, 1)
        self.regions.append((y_base - pad, y_span + 2 * pad))

    def func(self) -> None:
        """The function unit: a random table (random range and step: inputs fall before,
        inside and past it), or hard sigmoid / hard swish / sqrt."""
        r = self.rng
        n = int(r.integers(1, 40))
        kind = FuncKind(int(r.integers(0, len(FuncKind))))
        size = int(r.integers(2, 20))
        lut_base = self.fp(float(r.normal()))
        for v in r.normal(0.0, 1.0, size - 1):
            self.fp(float(v))
        x_base = self.source(n)
        y_base = x_base if r.random() < 0.2 else self.alloc(n)
        d = self.b.descriptor(
            "func",
            kind=int(kind),
            x_base=x_base,
            y_base=y_base,
            zx=self.zp(),
            zy=self.zp(),
            **self.quant(),
            sx=self.scale(),
            ry=self.fp(10.0 ** r.uniform(-1.0, 2.0)),
            p0=self.fp(r.uniform(-1.0, 1.0)),
            p1=self.fp(r.uniform(-1.0, 1.0)),
            p2=self.fp(r.choice([-0.75, 0.5, 2.0, 3.0, r.uniform(-2.0, 2.0)])),
            lut_base=lut_base,
            lut_size=size,
            lut_lo=self.fp(r.uniform(-2.0, 0.0)),
            lut_inv_step=self.fp(10.0 ** r.uniform(-0.5, 1.5)),
        )
        self.vector(Opcode.FUNC, d, n, int(r.integers(1, 4)), 1, 1)
        self.regions.append((y_base, n))

    def misc(self) -> dict:
        """A DMA / host transfer with random byte counts, or a NOP barrier on any unit."""
        r = self.rng
        layer = int(r.integers(0, self.n_layers))
        if r.random() < 0.25:
            return {
                "op": Opcode.NOP,
                "unit": int(r.integers(0, len(self.b.unit_class))),
                "layer": layer,
                "a0": int(r.integers(0, 2)),  # a0 = 1: a layer setup
                "a2": int(r.integers(0, 300)),  # a setup's output positions
            }
        op = _DMA_OPS[int(r.integers(0, len(_DMA_OPS)))]
        b_in, b_out = _ilist(r, 2, 0, 5000)
        return {
            "op": op,
            "unit": self.unit(Unit.DMA),
            "layer": layer,
            "bytes_in": b_in,
            "bytes_out": b_out,
        }

    # --- tokens and assembly -----------------------------------------------------------
    def program(self, seed: int, max_ops: int, kinds: tuple[str, ...]) -> RandomProgram:
        r = self.rng
        makers = [getattr(self, k) for k in kinds]
        for _ in range(int(r.integers(1, max_ops + 1))):
            mark = len(self.ops)
            makers[int(r.integers(0, len(makers)))]()
            if len(self.ops) > MAX_INSTRUCTIONS - 10 and mark > 0:
                del self.ops[mark:]  # over budget: drop this operation's instructions
                break
        for _ in range(int(r.integers(0, 6))):
            self.ops.insert(int(r.integers(0, len(self.ops) + 1)), self.misc())
        signaled: list[int] = []
        for kw in self.ops:
            waits = [
                int(r.choice(signaled)) if signaled and r.random() < 0.4 else -1 for _ in range(3)
            ]
            signal = -1
            if r.random() < 0.5:
                signal = (
                    self.b.token() if not signaled or r.random() < 0.7 else int(r.choice(signaled))
                )
                signaled.append(signal)
            self.b.emit(
                kw.pop("op"), **kw, wait0=waits[0], wait1=waits[1], wait2=waits[2], signal=signal
            )
        ftype = np.float32 if self.float_mode else np.int32
        return RandomProgram(
            seed=seed,
            instrs=self.b.instructions(),
            desc=self.b.desc_table(),
            tiles=self.b.tile_table(),
            fparams=np.array(self.fparams or [0.0], dtype=np.float32),
            weights=np.array(self.weights or [0], dtype=ftype),
            mem=np.array(self.mem or [0], dtype=ftype),
            acc=np.zeros(max(1, self.acc_size), dtype=np.float32 if self.float_mode else np.int64),
            timing=random_timing(r),
            n_units=len(self.b.unit_class),
            n_tokens=self.b.n_tokens + int(r.integers(0, 3)),
            n_layers=self.n_layers,
            float_mode=self.float_mode,
        )


def _has_empty_window(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl) -> bool:
    def empty(n_out, n_in, k, s, dil, pad):
        return any(
            all(not 0 <= o * s - pad + i * dil < n_in for i in range(k)) for o in range(n_out)
        )

    return empty(oh, h, kh, sh, dh, pt) or empty(ow, w, kw, sw, dw, pl)


KINDS = ("conv", "eltwise", "pool", "softmax", "copy", "func", "matmul")


def random_program(
    seed: int,
    float_mode: bool = False,
    size: int = 3,
    kinds: tuple[str, ...] = KINDS,
    empty_pool_windows: bool = True,
    wide: bool = False,
    deep: bool = False,
) -> RandomProgram:
    """A random valid program drawn from `seed`; `size` (1..4) scales tensor extents and the
    number of operations; `kinds` are the operations to draw from; `empty_pool_windows`
    allows pool windows that lie entirely in the padding; `wide` draws 16-bit integer values
    and weights, so MVM sums outgrow 32 bits; `deep` draws convs with tens to hundreds of
    input rows (the MVM kernels' long dot products)."""
    gen = _Gen(seed, float_mode, size, empty_pool_windows, wide, deep)
    return gen.program(seed, max_ops=1 + 2 * size, kinds=kinds)


def with_timing(p: RandomProgram, timing: Timing) -> RandomProgram:
    return replace(p, timing=timing)
