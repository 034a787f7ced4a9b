"""What of a model the estimator needs, once per model and precision: its layers in program
order, the values they read and write, and the exact instructions of every vector layer.

It comes from the lowering itself, run once on a *skeleton* of the hardware: the same bits
and precision rules, but macros so large that every MAC layer is one tile and one pixel
block, and SRAM so large that nothing spills. Vector layers do not depend on the macro
structure (their chunking and bytes depend on shapes and bits only), so their instructions
on the skeleton are the ones they get on any hardware with those bits; MAC layers and the
spill transfers are what changes with the structure, and `plan.py` rebuilds them per
configuration from the lowering's tiling, placement and memory functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.ir import Graph
from ndpsim.isa import Opcode
from ndpsim.lower import Program, lower
from ndpsim.lower.lower import _gates
from ndpsim.lower.mac_layer import _weight_key
from ndpsim.lower.registry import ALIAS_OPS, entry
from ndpsim.lower.tiling import ConvGeom, geometry

# Skeleton macros and memories: the largest the configuration model accepts, so that a MAC
# layer lowers to a handful of instructions and no activation spills.
_SKELETON = {
    "cores": 1,
    "macros_per_core": 1,
    "macro_rows": 8192,
    "macro_cols": 8192,
    "macro_weight_sets": 65536,
    "accumulator_entries_per_macro": 1 << 40,
    "sram_bytes": 1 << 50,
}
# HardwareConfig fields the skeleton keeps (they decide every layer's bits).
BITS_FIELDS = (
    "weight_bits",
    "activation_bits",
    "accumulator_bits",
    "macro_column_bits",
    "precision",
    "supported_weight_bits",
    "supported_activation_bits",
    "supports_conv",
)


@dataclass
class MacLayer:
    """A MAC layer's geometry and bits (the tiling is per configuration)."""

    geom: ConvGeom
    weight_key: tuple
    w_bits: int
    in_bits: int  # bits of the input value (fed bit-serially)
    out_bits: int  # bits of the output value


@dataclass
class LayerInfo:
    """One row of Program.layers, as the estimator rebuilds it per configuration."""

    index: int
    kind: str  # "input" | "output" | "alias" | "mac" | "vector"
    name: str
    reads: list[str] = field(default_factory=list)  # activation values the layer reads
    writes: list[str] = field(default_factory=list)  # values it writes (aliases: its view)
    mac: MacLayer | None = None
    body: np.ndarray | None = None  # vector layers: their instructions (skeleton tokens)
    setup: np.ndarray | None = None  # the layer's setup NOP as the skeleton emitted it
    setup_token: int = -1  # the skeleton's setup token of the layer (vector layers)
    gate: str = ""  # a branch's layer also waits for the value that picked the branch


@dataclass
class Structure:
    """A model's hardware-independent structure at one precision (see the module doc)."""

    graph: Graph
    skeleton: Program
    layers: list[LayerInfo]
    root: dict[str, str]  # alias value -> the buffer it shares
    nbytes: dict[str, int]  # bytes of every value the program places
    order: list[tuple[str, list[str], list[str]]]  # plan_memory's node order
    pinned: list[str]
    final_token: dict[str, int]  # skeleton token each value carries at the end
    mac_layers: list[int] = field(default_factory=list)

    @property
    def kernels(self):
        return self.skeleton.kernels


def skeleton_hardware(hw: HardwareConfig) -> HardwareConfig:
    """`hw`'s bits on macros and memories large enough that nothing folds, blocks or spills."""
    return hw.with_(**_SKELETON)


def bits_key(hw: HardwareConfig) -> tuple:
    """What of `hw` the structure depends on."""
    return tuple(repr(getattr(hw, f)) for f in BITS_FIELDS)


def build_structure(graph: Graph, hw: HardwareConfig, program: Program | None = None) -> Structure:
    """The structure of a passed graph at `hw`'s bits (`program`: its skeleton lowering, if
    the caller has it cached)."""
    program = program or lower(graph, skeleton_hardware(hw), passed=True)
    g = program.graph
    root: dict[str, str] = {}
    for node in g.nodes:
        if node.op_type in ALIAS_OPS:
            root[node.outputs[0]] = root.get(node.inputs[0], node.inputs[0])
    order, const_acts = [], []
    reads = {}
    for node in g.nodes:
        ins = entry(node, g).reads(g, node)
        reads[node.name] = ins
        const_acts += [v for v in ins if v in g.constants and v not in const_acts]
        order.append((node.name, ins, [o for o in node.outputs if o]))
    pl = program.placements
    nbytes = {v: p.nbytes for v, p in pl.items()}
    gates = _gates(g) if g.branches else {}
    ins_by_layer = _instructions_by_layer(program)
    layers: list[LayerInfo] = []
    node_of = {n.name: n for n in g.nodes}
    for i, lay in enumerate(program.layers):
        if lay.kind == "io":
            value = lay.name.split(":", 1)[1]
            kind = "input" if lay.op_type == "Input" else "output"
            layers.append(LayerInfo(i, kind, lay.name, [value], [value]))
            continue
        node = node_of[lay.name]
        outs = [o for o in node.outputs if o]
        if lay.kind == "alias":
            layers.append(LayerInfo(i, "alias", lay.name, [node.inputs[0]], outs))
            continue
        info = LayerInfo(i, lay.kind, lay.name, list(reads[node.name]), outs,
                         gate=gates.get(node.name, ""))  # fmt: skip
        info.setup, info.body = _split(ins_by_layer.get(i), lay.name)
        info.setup_token = int(info.setup["signal"])
        if lay.kind == "mac":
            geom = geometry(g, node)
            info.mac = MacLayer(geom, _weight_key(node, geom), lay.w_bits, lay.in_bits,
                                pl[outs[0]].bits)  # fmt: skip
            info.body = None
        layers.append(info)
    final = {v: p.token for v, p in pl.items()}
    st = Structure(g, program, layers, root, nbytes, order, list(g.inputs) + const_acts, final)
    st.mac_layers = [x.index for x in layers if x.kind == "mac"]
    return st


def _instructions_by_layer(program: Program) -> dict[int, np.ndarray]:
    ins = program.instrs
    layer = ins["layer"].astype(np.int64)
    order = np.argsort(layer, kind="stable")
    bounds = np.searchsorted(layer[order], np.arange(len(program.layers) + 1))
    return {
        i: ins[order[bounds[i] : bounds[i + 1]]]
        for i in range(len(program.layers))
        if bounds[i + 1] > bounds[i]
    }


def _split(ins: np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A layer's setup NOP and the instructions after it. On the skeleton nothing spills, so
    a layer's instructions are (barrier NOPs,) the setup NOP and the emitter's body."""
    if ins is None:
        raise RuntimeError(f"layer {name!r} emitted no instructions")
    setup = np.flatnonzero((ins["op"] == int(Opcode.NOP)) & (ins["a0"] == 1))
    if len(setup) != 1:
        raise RuntimeError(f"layer {name!r}: expected one setup instruction, found {len(setup)}")
    k = int(setup[0])
    return ins[k].copy(), ins[k + 1 :].copy()
