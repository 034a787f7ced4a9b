"""Kernel tables of many search-space genomes at once, in numpy.

The same kernels as `ndpsim.zoo.search_space.genome_kernels` (a test checks they agree),
built as (genomes x slots) arrays: every stage block has four slots (expansion or fused
conv, depthwise, projection, residual Add) and a mask says which exist. This is the
estimator's path for scoring a whole population of candidates in one call.
"""

from __future__ import annotations

import numpy as np

from ndpsim.estimator.model import kernel_table
from ndpsim.lower.kernels import ACTIVATIONS, KERNEL_TYPES

T = {name: i for i, name in enumerate(KERNEL_TYPES)}  # type codes
A = {name: i for i, name in enumerate(ACTIVATIONS)}  # activation codes


def _encode(genomes) -> tuple[np.ndarray, np.ndarray]:
    """Per genome (resolution, stem, head, classes, relu6) and per stage (fused, expansion,
    kernel, channels, depth, stride), stages padded with depth 0."""
    n_st = max(len(g.stages) for g in genomes)
    top = np.array(
        [
            (g.resolution, g.stem_channels, g.head_channels, g.num_classes, g.activation == "relu6")
            for g in genomes
        ],
        np.int64,
    )
    st = np.zeros((len(genomes), n_st, 6), np.int64)
    st[:, :, 2] = 1
    st[:, :, 5] = 1
    for i, g in enumerate(genomes):
        for j, s in enumerate(g.stages):
            st[i, j] = (s.block == "fused", s.expansion, s.kernel, s.channels, s.depth, s.stride)
    return top, st


def genome_table(genomes, a_bits: int = 8, w_bits: int = 8) -> dict[str, np.ndarray]:
    """The kernel table (model.kernel_table columns; group = genome index) of `genomes`."""
    top, st = _encode(genomes)
    top, st = top.astype(np.int32), st.astype(np.int32)
    n = len(genomes)
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "type",
            "act",
            "c_in",
            "h_in",
            "c_out",
            "h_out",
            "k",
            "s",
            "groups",
            "n_in",
            "valid",
            "w",
        )
    }
    one, zero = np.ones(n, np.int32), np.zeros(n, np.int32)
    act = np.where(top[:, 4] == 1, A["Clip"], A["Relu"])

    def slot(kind, a, c_in, h_in, c_out, h_out, k, s, groups, n_in, valid, w):
        for key, v in zip(
            cols, (kind, a, c_in, h_in, c_out, h_out, k, s, groups, n_in, valid, w), strict=True
        ):
            cols[key].append(np.broadcast_to(v, (n,)))

    r = top[:, 0]
    slot(T["input"], A["none"], 3 * one, r, 3 * one, r, one, one, one, one, one > 0, zero)
    h = -(-r // 2)
    slot(
        T["conv"], act, 3 * one, r, top[:, 1], h, 3 * one, 2 * one, one, one, one > 0, w_bits * one
    )
    c = top[:, 1]
    for si in range(st.shape[1]):
        fused, e, k, ch, depth, stride = (st[:, si, x] for x in range(6))
        for j in range(int(depth.max())):
            valid = j < depth
            s = np.where(j == 0, stride, 1)
            mid = c * e
            ho = -(-h // s)
            ibn_expand = (fused == 0) & (e != 1)
            # slot A: the fused kxk conv, or the IBN's 1x1 expansion
            slot(
                np.where(fused == 1, T["conv"], T["conv1x1"]),
                act,
                c,
                h,
                mid,
                np.where(fused == 1, ho, h),
                np.where(fused == 1, k, 1),
                np.where(fused == 1, s, 1),
                one,
                one,
                valid & ((fused == 1) | ibn_expand),
                w_bits * one,
            )
            # slot B: the IBN's depthwise conv
            slot(
                T["dwconv"],
                act,
                mid,
                h,
                mid,
                ho,
                k,
                s,
                mid,
                one,
                valid & (fused == 0),
                w_bits * one,
            )
            # slot C: the linear projection
            slot(T["conv1x1"], A["none"], mid, ho, ch, ho, one, one, one, one, valid, w_bits * one)
            # slot D: the residual Add
            slot(
                T["add"],
                A["none"],
                ch,
                ho,
                ch,
                ho,
                one,
                one,
                one,
                2 * one,
                valid & (s == 1) & (c == ch),
                zero,
            )
            c = np.where(valid, ch, c)
            h = np.where(valid, ho, h)
    slot(T["conv1x1"], act, c, h, top[:, 2], h, one, one, one, one, one > 0, w_bits * one)
    slot(T["gap"], A["none"], top[:, 2], h, top[:, 2], one, h, one, one, one, one > 0, zero)
    slot(
        T["fc"],
        A["none"],
        top[:, 2],
        one,
        top[:, 3],
        one,
        one,
        one,
        one,
        one,
        one > 0,
        w_bits * one,
    )
    slot(T["output"], A["none"], top[:, 3], one, top[:, 3], one, one, one, one, one, one > 0, zero)
    m = {k: np.stack(v, axis=1).astype(np.int32, copy=False) for k, v in cols.items()}
    valid = m["valid"]
    li = np.cumsum(valid, axis=1) - 1
    li[:, -2:] += 1  # the Flatten before the Gemm is a layer (an alias) without a kernel
    sel = valid.ravel().astype(bool)
    flat = lambda a: a.ravel()[sel]  # noqa: E731
    hw_in, hw_out = flat(m["h_in"]), flat(m["h_out"])
    kk = flat(m["k"])
    out = {
        "type_code": flat(m["type"]),
        "act_code": flat(m["act"]).astype(np.float64),
        "layer_index": flat(li),
        "c_in": flat(m["c_in"]),
        "h_in": hw_in,
        "w_in": hw_in,
        "c_out": flat(m["c_out"]),
        "h_out": hw_out,
        "w_out": hw_out,
        "kh": kk,
        "kw": kk,
        "stride_h": flat(m["s"]),
        "stride_w": flat(m["s"]),
        "dil_h": np.ones(len(kk), np.int64),
        "dil_w": np.ones(len(kk), np.int64),
        "groups": flat(m["groups"]),
        "n_inputs": flat(m["n_in"]),
        "a_bits": np.full(len(kk), a_bits, np.int64),
        "w_bits": flat(m["w"]),
    }
    group = np.broadcast_to(np.arange(n)[:, None], valid.shape).ravel()[sel]
    return kernel_table(out, group)
