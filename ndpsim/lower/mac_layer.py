"""MAC layers of a whole graph: geometry and tiles of every Conv / Gemm / MatMul, weight
placement on the macros (resident or streamed), and the emission of one MAC node with the
state that carries across layers (the placement cursor, the streaming slots)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ndpsim.config import HardwareConfig
from ndpsim.ir import Graph, Node
from ndpsim.lower.bindings import Binding
from ndpsim.lower.kernels import mac_kernel
from ndpsim.lower.mac import MacContext, emit_mac
from ndpsim.lower.memory import WeightPlan, place_weights
from ndpsim.lower.tiling import ConvGeom, Tile, geometry, tiles_for


def _weight_key(node: Node, geom: ConvGeom) -> tuple:
    """What identifies a MAC node's weight matrix: the constant, its layout and Gemm's alpha."""
    alpha = float(node.attrs.get("alpha", 1.0)) if node.op_type == "Gemm" else 1.0
    return (geom.weight, geom.layout, geom.k_g, geom.cout, geom.groups, alpha)


@dataclass
class MacState:
    """Tiling and weight placement of every MAC node, and the streaming state the emission of
    one layer hands to the next."""

    geoms: dict[str, ConvGeom]
    col_tiles: dict[str, list[list[Tile]]]
    weight_key: dict[str, tuple]
    first_use: list[tuple]  # distinct weight matrices in graph order
    wplan: WeightPlan
    seen_weights: set[tuple] = field(default_factory=set)
    slot_tokens: dict[int, int] = field(default_factory=dict)
    stream_cursor: list[int] = field(default_factory=lambda: [0])


def plan_macs(g: Graph, hw: HardwareConfig, mac_nodes: list[Node], w_bits: dict[str, int]):
    """Geometry, tiles and weight placement of `mac_nodes` (graph order) at their weight bits.
    MAC nodes applying the same weight matrix (a recurrent layer's steps) share its tiles: the
    weights are placed once and every use runs on the macros that hold them."""
    geoms = {n.name: geometry(g, n) for n in mac_nodes}
    col_tiles = {  # a pass yields fewer outputs the more bits a weight takes (bit-sliced cells)
        n.name: tiles_for(geoms[n.name], hw.macro_rows, hw.outputs_per_pass(w_bits[n.name]))
        for n in mac_nodes
    }
    weight_key = {n.name: _weight_key(n, geoms[n.name]) for n in mac_nodes}
    first_use = list(dict.fromkeys(weight_key.values()))
    owner = {}
    for n in mac_nodes:
        owner.setdefault(weight_key[n.name], n.name)
    wplan = place_weights(
        [sum(len(ct) for ct in col_tiles[owner[k]]) for k in first_use],
        hw.total_macros,
        hw.macro_weight_sets,
    )
    return MacState(geoms, col_tiles, weight_key, first_use, wplan)


def emit_mac_node(ctx) -> list[Binding]:
    """One MAC node (a NodeContext): MVMs on the macros that hold its tiles, requantization on
    the vector units, weight reloads if it streams; counts its params and weights once per
    weight matrix."""
    node, layer, st, hw = ctx.node, ctx.layer, ctx.mac, ctx.hw
    geom = st.geoms[node.name]
    w_bits, a_bits = layer.w_bits, ctx.x.bits
    layer.kind, layer.macs = "mac", geom.macs
    layer.params = geom.cout * geom.k_g + (geom.cout if geom.bias else 0)
    layer.kernel = mac_kernel(node, geom, ctx.act, ctx.vec.layer, w_bits, a_bits)
    mctx = MacContext(
        ctx.vec.b,
        hw.macros_per_core,
        hw.total_macros,
        hw.accumulator_entries_per_macro,
        ctx.bits.acc,
        ctx.vec_units,
        ctx.vec.dma_unit,
        st.slot_tokens,
        st.wplan.stream_slots,
        st.stream_cursor,
    )
    w = st.first_use.index(st.weight_key[node.name])
    binding = emit_mac(
        mctx,
        ctx.vec.layer,
        layer,
        node.name,
        geom,
        st.col_tiles[node.name],
        st.wplan.macros(w),
        st.wplan.resident[w],
        ctx.x,
        ctx.y,
        ctx.act,
        w_bits,
        node.inputs,
        node.outputs[0],
    )
    if st.weight_key[node.name] in st.seen_weights:  # counted at its first use
        layer.weight_bytes = layer.params = 0
    st.seen_weights.add(st.weight_key[node.name])
    return [binding]
