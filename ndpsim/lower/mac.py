"""Emit a MAC layer (Conv / Gemm / MatMul with its fused activation): MVMs on the macros
holding its weight tiles, requantization on the vector unit, weight reloads on the DMA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ndpsim.isa import Opcode
from ndpsim.lower.activations import act_fields
from ndpsim.lower.bindings import ConvBinding
from ndpsim.lower.program import Builder, Layer, Placement
from ndpsim.lower.tiling import ConvGeom, Tile, input_bytes_for_block, pixel_block


@dataclass
class MacContext:
    """What the MAC emitter needs from the lowering driver."""

    b: Builder
    macros_per_core: int
    total_macros: int
    accumulator_entries: int
    accumulator_bits: int
    unit_vector: list[int]  # vector unit id per core
    unit_dma: int
    slot_tokens: dict[int, int]  # streaming weight slot -> token of its last user
    stream_slots: int
    stream_cursor: list[int]  # next streaming slot (boxed for mutation)


def emit_mac(
    ctx: MacContext,
    layer_idx: int,
    layer: Layer,
    node_name: str,
    geom: ConvGeom,
    col_tiles: list[list[Tile]],
    macros: list[int],
    resident: bool,
    x: Placement,
    y: Placement,
    act: tuple | None,
    w_bits: int,
    inputs: tuple[str, ...],
    output: str,
) -> ConvBinding:
    b = ctx.b
    flat = [t for ct in col_tiles for t in ct]
    tile_ids = [b.tile(t.g0, t.g1, t.k0, t.k1, t.c0, t.c1) for t in flat]
    w_base = b.wslots(geom.cout * geom.k_g)
    bias_base = b.wslots(geom.cout) if geom.bias else -1
    scale_base = b.fslots(geom.cout)
    acc_max = (1 << (ctx.accumulator_bits - 1)) - 1
    desc = b.descriptor(
        "conv",
        in_base=x.addr,
        in_sc=geom.in_strides[0],
        in_sy=geom.in_strides[1],
        in_sx=geom.in_strides[2],
        cin=geom.cin,
        h=geom.h,
        w=geom.w,
        out_base=y.addr,
        out_sc=geom.out_strides[0],
        out_sy=geom.out_strides[1],
        out_sx=geom.out_strides[2],
        cout=geom.cout,
        oh=geom.oh,
        ow=geom.ow,
        kh=geom.kh,
        kw=geom.kw,
        stride_h=geom.stride[0],
        stride_w=geom.stride[1],
        dil_h=geom.dilation[0],
        dil_w=geom.dilation[1],
        pad_top=geom.pad[0],
        pad_left=geom.pad[1],
        groups=geom.groups,
        w_base=w_base,
        acc_base=0,
        bias_base=bias_base,
        scale_base=scale_base,
        acc_min=-acc_max - 1,
        acc_max=acc_max,
        pre_r=b.fslots(1),  # bind sets pre_max when the machine has a pre-activation stage
        **act_fields(b, act),
    )
    cols_max = max(t.cols for t in flat)
    px = pixel_block(geom, cols_max, ctx.accumulator_entries)
    in_tok = x.token  # a spilled input was brought back by the driver's LOAD_A already
    w_bytes = [(t.rows * t.cols * w_bits + 7) // 8 for t in flat]
    load_tok: dict[int, int] = {}
    slot_of: dict[int, int] = {}
    per_block_reload = not resident and len(flat) > ctx.stream_slots

    def load(i: int) -> int:
        slot = ctx.stream_cursor[0] % max(1, ctx.stream_slots)
        ctx.stream_cursor[0] += 1
        tok = b.token()
        b.emit(
            Opcode.LOAD_W,
            ctx.unit_dma,
            layer_idx,
            bytes_in=w_bytes[i],
            wait0=ctx.slot_tokens.get(slot, -1),
            signal=tok,
        )
        slot_of[i] = slot
        return tok

    if not resident and not per_block_reload:
        for i in range(len(flat)):
            load_tok[i] = load(i)
    core_of = [m // ctx.macros_per_core for m in macros]
    vec_units: set[int] = set()
    rq_tok: dict[tuple[int, int], int] = {}
    npix = geom.pixels
    cout_g = geom.cout_g
    offsets = np.cumsum([0] + [len(ct) for ct in col_tiles])
    n_kf = max(len(ct) for ct in col_tiles)
    for blk, p0 in enumerate(range(0, npix, px)):
        n = min(px, npix - p0)
        grp = [b.token() for _ in col_tiles]
        # k-fold-major: one gathered input block feeds every column tile of that k-fold (the
        # input vector is broadcast to all macros holding that fold)
        for kf in range(n_kf):
            for ct_i, ktiles in enumerate(col_tiles):
                if kf >= len(ktiles):
                    continue
                t, i = ktiles[kf], int(offsets[ct_i]) + kf
                if per_block_reload:
                    load_tok[i] = load(i)
                b.emit(
                    Opcode.MVM,
                    macros[i],
                    layer_idx,
                    desc=desc,
                    a0=tile_ids[i],
                    a1=p0,
                    a2=n,
                    rows=t.rows,
                    cols=t.cols,
                    w_bits=w_bits,
                    a_bits=x.bits,  # fed bit-serially at the input value's precision
                    work=n * t.macs_per_vector,
                    bytes_in=input_bytes_for_block(geom, t, p0, n, x.bits),
                    wait0=in_tok,
                    wait1=load_tok.get(i, -1),
                    wait2=rq_tok.get((ct_i, blk - 2), -1),
                    signal=grp[ct_i],
                )
                if i in slot_of:
                    ctx.slot_tokens[slot_of[i]] = grp[ct_i]
        for ct_i, ktiles in enumerate(col_tiles):
            t = ktiles[0]
            ch0 = t.g0 * cout_g + t.c0
            nch = (t.g1 - 1) * cout_g + t.c1 - ch0
            vu = ctx.unit_vector[core_of[int(offsets[ct_i])]]
            vec_units.add(vu)
            rq = b.token()
            b.emit(
                Opcode.REQUANT,
                vu,
                layer_idx,
                desc=desc,
                a0=ch0,
                a1=p0,
                a2=n,
                rows=nch,
                a_bits=y.bits,
                work=nch * n,
                bytes_out=(nch * n * y.bits + 7) // 8,
                wait0=grp[ct_i],
                signal=rq,
            )
            rq_tok[(ct_i, blk)] = rq
    done = b.token()
    for vu in sorted(vec_units):  # the layer is done when every vector unit drained it
        b.emit(Opcode.NOP, vu, layer_idx, signal=done)
    y.token = done
    layer.tiles = len(flat)
    layer.folds_k = max(len(ct) for ct in col_tiles)
    layer.folds_cout = len(col_tiles)
    layer.weights_resident = resident
    layer.weight_bytes = int(np.ceil(geom.cout * geom.k_g * w_bits / 8))
    slots = {"w_base": w_base, "bias_base": bias_base, "scale_base": scale_base}
    return ConvBinding(desc, node_name, inputs, output, slots, geom=geom, act=act)
