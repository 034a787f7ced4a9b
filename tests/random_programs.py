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
from random_vector_draws import VectorDraws, chunk_ranges, int_list, out_size, strided_layout

from ndpsim.isa import Act, Opcode, Unit
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


class _Gen(VectorDraws):
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
        return int_list(r, n, lo, hi)

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
        for a1, n in chunk_ranges(self.rng, total):
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
        kh, kw = int_list(r, 2, 1, 3)
        sh, sw, dh, dw = int_list(r, 4, 1, 2)
        pt, pl, pb, pr = int_list(r, 4, 0, 2)
        h, w = int_list(r, 2, 1, 6)
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
        oh, ow = out_size(h, kh, sh, dh, pt, pb), out_size(w, kw, sw, dw, pl, pr)
        cout_g, k_g, npix = cout // groups, cin // groups * kh * kw, oh * ow
        in_s, in_span = strided_layout(r, [cin, h, w])
        out_s, out_span = strided_layout(r, [cout, oh, ow])
        if self.float_mode:
            wv = [float(v) for v in r.normal(0.0, 1.0, cout * k_g).astype(np.float32)]
            bias = [float(v) for v in r.normal(0.0, 10.0, cout).astype(np.float32)]
        else:
            wb = 16 if self.wide else int(r.integers(2, 9))  # weight bits
            wv = int_list(r, cout * k_g, -(2 ** (wb - 1)), 2 ** (wb - 1) - 1)
            bias = int_list(r, cout, -2000, 2000)
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
        w_bits, a_bits = int_list(r, 2, 1, 8)
        for p0, n in chunk_ranges(r, npix, 2):
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
            for c0, nc in chunk_ranges(r, cout, 2):
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
        b_in, b_out = int_list(r, 2, 0, 5000)
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
