"""The vector unit's draws of tests/random_programs.py (a mixin of its generator): element-wise
ops with broadcasting, products of two activations, pooling, softmax, strided copies and the
function unit. They use the generator's arena, parameter and emission helpers (`self.alloc`,
`self.quant`, `self.vector`, ...)."""

from __future__ import annotations

import numpy as np

from ndpsim.isa import EltwiseKind, FuncKind, Opcode, PoolKind


def int_list(rng, n: int, lo: int, hi: int) -> list[int]:
    return [int(v) for v in rng.integers(lo, hi + 1, n)]


def strided_layout(rng, dims: list[int], broadcast_p: float = 0.0) -> tuple[list[int], int]:
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


def chunk_ranges(rng, total: int, max_chunks: int = 3) -> list[tuple[int, int]]:
    """Split range(total) into 1..max_chunks consecutive (first, count) pieces."""
    k = int(rng.integers(1, min(max_chunks, total) + 1))
    cuts = (
        sorted(int(c) for c in rng.choice(np.arange(1, total), k - 1, replace=False))
        if k > 1
        else []
    )
    edges = [0, *cuts, total]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def out_size(n: int, k: int, stride: int, dil: int, pad0: int, pad1: int) -> int:
    return max(1, (n + pad0 + pad1 - dil * (k - 1) - 1) // stride + 1)


class VectorDraws:
    """Methods of `random_programs._Gen` that draw one vector-unit operation each."""

    def eltwise(self) -> None:
        r = self.rng
        dims = self._dims()
        a_s, a_span = strided_layout(r, dims, 0.3)
        b_s, b_span = strided_layout(r, dims, 0.3)
        y_s, y_span = strided_layout(r, dims)
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
        d0, d1, m, k, n = int_list(r, 5, 1, 2 + self.size)
        a_s, a_span = strided_layout(r, [d0, d1, m, k], 0.3)
        b_s, b_span = strided_layout(r, [d0, d1, k, n], 0.3)
        y_s, y_span = strided_layout(r, [d0, d1, m, n])
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
        dims = int_list(self.rng, 4, 1, 3 + self.size)
        while int(np.prod(dims)) > 64:
            dims[int(np.argmax(dims))] -= 1
        return dims

    def pool(self) -> None:
        r = self.rng
        c, h, w = int(r.integers(1, 5)), *int_list(r, 2, 1, 6)
        kh, kw = int_list(r, 2, 1, 3)
        sh, sw, dh, dw = int_list(r, 4, 1, 2)
        pt, pl, pb, pr = int_list(r, 4, 0, 2)
        oh, ow = out_size(h, kh, sh, dh, pt, pb), out_size(w, kw, sw, dw, pl, pr)
        ort = (PoolKind.AVG_SCALED, PoolKind.AVG_DQ)  # integer datapath only
        kinds = [k for k in PoolKind if not (self.float_mode and k in ort)]
        kind = kinds[int(r.integers(0, len(kinds)))]
        cip = int(r.integers(0, 2))
        empty = _has_empty_window(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)
        if empty and not self.empty_pool_windows:  # without pads every window has an element
            pt = pl = pb = pr = 0
            oh, ow = out_size(h, kh, sh, dh, 0, 0), out_size(w, kw, sw, dw, 0, 0)
        elif empty and kind != PoolKind.MAX and not cip:
            cip = 1  # an empty window averaged over zero elements is undefined
        in_s, in_span = strided_layout(r, [c, h, w])
        out_s, out_span = strided_layout(r, [c, oh, ow])
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
        x_s, x_span = strided_layout(r, dims, 0.25)
        y_s, y_span = strided_layout(r, dims)
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


def _has_empty_window(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl) -> bool:
    def empty(n_out, n_in, k, s, dil, pad):
        return any(
            all(not 0 <= o * s - pad + i * dil < n_in for i in range(k)) for o in range(n_out)
        )

    return empty(oh, h, kh, sh, dh, pt) or empty(ow, w, kw, sw, dw, pl)
