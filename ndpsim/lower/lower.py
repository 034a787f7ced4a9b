"""Graph -> Program: the lowering driver.

Stages, in order:
  1. graph passes (identities, BN folding, activation fusion)         lower/passes.py
  2. geometry and tiles of every MAC op                                lower/tiling.py
  3. weight placement on macros (resident or streamed)                 lower/memory.py
  4. activation buffers: liveness, SRAM first-fit, spills              lower/memory.py
  5. instructions per node, in graph order, with dependency tokens:
     each op's emitter from the op registry                           lower/registry.py
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.errors import ConfigError, UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.isa import Opcode, Unit
from ndpsim.lower.bindings import Binding, ConstBinding
from ndpsim.lower.context import NodeContext
from ndpsim.lower.kernels import io_kernel, vector_kernel
from ndpsim.lower.mac_layer import plan_macs
from ndpsim.lower.memory import plan_memory
from ndpsim.lower.passes import run_passes
from ndpsim.lower.program import Builder, Layer, Placement, Program
from ndpsim.lower.registry import ALIAS_OPS, SUPPORTED_OPS, entry
from ndpsim.lower.vector import VecContext
from ndpsim.precision_rules import Bits, LayerRef, parse_rules, resolve

VECTOR_CHUNK = 4096  # elements per vector instruction: bounds one instruction's latency


def _units(hw: HardwareConfig) -> tuple[list[Unit], list[str], list[int], int]:
    classes, names = [], []
    for c in range(hw.cores):
        for m in range(hw.macros_per_core):
            classes.append(Unit.MACRO)
            names.append(f"core{c}.macro{m}")
    vec = []
    for c in range(hw.cores):
        vec.append(len(classes))
        classes.append(Unit.VECTOR)
        names.append(f"core{c}.vector")
    classes.append(Unit.DMA)
    names.append("dma")
    return classes, names, vec, len(classes) - 1


def _check_supported(g: Graph, hw: HardwareConfig) -> None:
    for node in g.nodes:
        if entry(node, g).unit == "rewrite":  # its pass did not apply: a bug, not the user's
            raise RuntimeError(f"{node.op_type} {node.name!r} was not rewritten by its pass")
        if node.op_type == "Conv" and not hw.supports_conv:
            raise UnsupportedOpError(
                f"hardware {hw.name!r} runs fully-connected layers only; node {node.name!r} is a "
                "Conv (choose a preset with supports_conv, e.g. ndp120)"
            )


def layer_bits(g: Graph, hw: HardwareConfig, precision: list[str] | None) -> dict[str, Bits]:
    """Bits of every layer (graph inputs as `input:NAME`, op type `Input`): the hardware's
    `precision` section, then `precision` rules. An imported quantized model brings its own
    (8-bit) precision, which must still be one the hardware supports."""
    refs = [LayerRef(f"input:{v}", "Input", "io") for v in g.inputs]
    refs += [
        LayerRef(n.name, n.op_type, "mac" if entry(n, g).unit == "macro" else "vector")
        for n in g.nodes
    ]
    rules = parse_rules(hw.precision, "precision") + parse_rules(precision, "--precision")
    if g.quant is not None:
        if rules:
            raise ConfigError(
                f"{rules[0].source}: the model is already quantized (8-bit, its own scales); "
                "per-layer precision applies to float models"
            )
        hw8 = hw.with_(weight_bits=8, activation_bits=8) if _supports_8(hw) else None
        if hw8 is None:
            raise ConfigError(
                f"the model is quantized to 8 bits; hardware {hw.name!r} supports weight bits "
                f"{list(hw.supported_weight_bits)}, activation bits "
                f"{list(hw.supported_activation_bits)}"
            )
        return resolve(refs, [], hw8, SUPPORTED_OPS)
    return resolve(refs, rules, hw, SUPPORTED_OPS)


def _supports_8(hw: HardwareConfig) -> bool:
    return 8 in hw.supported_weight_bits and 8 in hw.supported_activation_bits


def value_bits(g: Graph, bits: dict[str, Bits]) -> dict[str, int]:
    """Bits of every stored value: a layer writes its outputs at its `a` bits, graph inputs
    at their `input:` row's, and a constant read as an activation at its first reader's.
    Aliases (Reshape, ...) share their source's buffer and bits."""
    out = {v: bits[f"input:{v}"].a for v in g.inputs}
    for node in g.nodes:
        for v in node.inputs:
            if v in g.constants and v not in out:
                out[v] = bits[node.name].a
        for v in node.outputs:
            if v:
                src = node.inputs[0] if node.op_type in ALIAS_OPS else None
                out[v] = out[src] if src is not None else bits[node.name].a
    for v in g.tensors:  # values nothing stores (unused constants): any width
        out.setdefault(v, 8)
    return out


def _setup(b: Builder, unit: int, li: int, ins: list[Placement], positions: int) -> list[Placement]:
    """The layer's setup NOP (a0 = 1: it lasts layer_setup_cycles + a2 x position_cycles, a2 =
    the layer's output positions) after all its inputs are ready; the layer's instructions then
    wait on the setup (copies: other readers do not)."""
    toks = list(dict.fromkeys(p.token for p in ins if p.token >= 0))
    while len(toks) > 3:  # more inputs than wait slots (Concat): join them with barriers
        tok = b.token()
        b.emit(Opcode.NOP, unit, li, wait0=toks[0], wait1=toks[1], wait2=toks[2], signal=tok)
        toks = [tok, *toks[3:]]
    waits = dict(zip(("wait0", "wait1", "wait2"), toks, strict=False))
    tok = b.token()
    b.emit(Opcode.NOP, unit, li, a0=1, a2=positions, signal=tok, **waits)
    return [dataclasses.replace(p, token=tok) for p in ins]


def _positions(g: Graph, node: Node, geoms: dict) -> int:
    """Output positions a layer's sequencer steps through: a MAC layer's output pixels (Gemm /
    MatMul: its rows; so too a MatMul of two activations), any other layer's spatial positions
    (dims after N, C; 1 for a vector)."""
    if node.name in geoms:
        return geoms[node.name].pixels
    shape = g.tensors[node.outputs[0]].shape
    if node.op_type == "MatMul":
        return int(np.prod(shape[:-1], dtype=np.int64))
    return int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1


def _gates(g: Graph) -> dict[str, str]:
    """Node -> the condition it waits for: the nodes of a data-dependent branch, and the nodes
    rewrites derived from them (named `<node>/...`)."""
    exact = {name: b.cond for b in g.branches for name in b.nodes}
    out = {}
    for node in g.nodes:
        parts = node.name.split("/")
        for k in range(len(parts), 0, -1):
            cond = exact.get("/".join(parts[:k]))
            if cond is not None:
                out[node.name] = cond
                break
    return out


def gated_nodes(g: Graph, if_name: str) -> set[str]:
    """The nodes of `g` that If `if_name`'s inlined branch runs (rewrites' nodes included)."""
    conds = {b.cond for b in g.branches if b.name == if_name}
    return {name for name, cond in _gates(g).items() if cond in conds}


def lower(
    graph: Graph, hw: HardwareConfig, precision: list[str] | None = None, *, passed: bool = False
) -> Program:
    """Lower a graph onto `hw`. Structure only: quantization parameters are filled by `bind`.
    `precision`: `PATTERN=BITS` rules applied over the hardware's own `precision` section.
    `passed`: the graph already went through `run_passes` (a Session runs them once)."""
    g = graph if passed else run_passes(graph)
    _check_supported(g, hw)
    bits = layer_bits(g, hw, precision)
    vbits = value_bits(g, bits)
    reads = {node.name: entry(node, g).reads(g, node) for node in g.nodes}
    gates = _gates(g) if g.branches else {}
    # -- values: aliases share their source's buffer; constants read as activations get one
    root: dict[str, str] = {}
    for node in g.nodes:
        if node.op_type in ALIAS_OPS:
            src = node.inputs[0]
            root[node.outputs[0]] = root.get(src, src)
    order, const_acts = [], []
    for node in g.nodes:
        ins = reads[node.name]
        const_acts += [v for v in ins if v in g.constants and v not in const_acts]
        order.append((node.name, ins, [o for o in node.outputs if o]))
    nbytes = {v: (t.size * vbits[root.get(v, v)] + 7) // 8 for v, t in g.tensors.items()}
    pinned = list(g.inputs) + const_acts
    mem = plan_memory(order, nbytes, root, pinned, list(g.outputs), hw.sram_bytes)
    # -- MAC geometry, tiles, weight placement
    mac_nodes = [n for n in g.nodes if entry(n, g).unit == "macro"]
    macs = plan_macs(g, hw, mac_nodes, {n.name: bits[n.name].w for n in mac_nodes})
    # -- arena: one region per root buffer (functional memory; SRAM placement is mem plan)
    classes, names, vec_units, dma = _units(hw)
    b = Builder(classes, names)
    placements: dict[str, Placement] = {}
    addr = 0

    def place(v: str) -> Placement:
        nonlocal addr
        r = root.get(v, v)
        if r not in placements:
            t = g.tensors[r]
            placements[r] = Placement(addr, t.shape, vbits[r], mem.on_chip.get(r, True))
            addr += max(1, t.size)
        if v != r and v not in placements:
            src = placements[r]
            placements[v] = Placement(
                src.addr, g.tensors[v].shape, src.bits, src.on_chip, src.token
            )
        return placements[v]

    def scratch(name: str, shape: tuple[int, ...], value_bits: int) -> Placement:
        """A region of the arena for a value the graph does not have (Pad's fill value)."""
        nonlocal addr
        placements[name] = Placement(addr, shape, value_bits)
        addr += max(1, int(np.prod(shape)))
        return placements[name]

    layers: list[Layer] = []
    bindings: list[Binding] = []
    for v in const_acts:
        p = place(v)
        bindings.append(ConstBinding(-1, v, (v,), v))
        p.token = -1
    for v in g.inputs:
        li = len(layers)
        shape = g.tensors[v].shape
        layers.append(Layer(f"input:{v}", "Input", "io", a_bits=vbits[v], output_shape=shape))
        layers[-1].kernel = io_kernel("input", shape, li, vbits[v])
        p = place(v)
        p.token = b.token()
        b.emit(Opcode.HOST_IN, dma, li, bytes_in=p.nbytes, signal=p.token)
    for i, node in enumerate(g.nodes):
        li = len(layers)
        op = entry(node, g)
        act = node.attrs.get("fused_act")
        layer = Layer(
            node.name,
            node.op_type,
            "vector",
            fused=(act[0],) if act else (),
            w_bits=bits[node.name].w if op.unit == "macro" else 0,
            a_bits=vbits[root.get(node.outputs[0], node.outputs[0])],
            peak_activation_bytes=mem.live_bytes_at[i],
            output_shape=g.tensors[node.outputs[0]].shape,
        )
        layers.append(layer)
        if op.unit == "alias":
            layer.kind = "alias"
            src = place(node.inputs[0])
            out = place(node.outputs[0])
            out.token = src.token
            continue
        in_names = reads[node.name]
        ins = [place(v) for v in in_names]
        y = place(node.outputs[0])
        layer.in_bits = ins[0].bits
        # spilled inputs come back through the DMA before the layer reads them
        for p in ins:
            if not p.on_chip:
                tok = b.token()
                b.emit(Opcode.LOAD_A, dma, li, bytes_in=p.nbytes, wait0=p.token, signal=tok)
                p.token = tok
        vu = vec_units[li % hw.cores]
        # a branch's layer starts once the host has read the condition that picked it
        gate = [place(gates[node.name])] if node.name in gates else []
        ins = _setup(b, vu, li, ins + gate, _positions(g, node, macs.geoms))[: len(ins)]
        ctx = NodeContext(g, node, hw, VecContext(b, vu, dma, li, VECTOR_CHUNK, y.bits),
                          vec_units, layer, bits[node.name], in_names, ins, y, act, place,
                          scratch, macs)  # fmt: skip
        bindings += op.emit(ctx)
        if layer.kernel is None:
            layer.kernel = vector_kernel(g, node, in_names, act, li, layer.a_bits, op.kernel_type)
        for yo in [place(o) for o in node.outputs if o]:
            if not yo.on_chip:  # spilled output: written out to external memory
                tok = b.token()
                b.emit(Opcode.STORE_A, dma, li, bytes_out=yo.nbytes, wait0=yo.token, signal=tok)
                yo.token = tok
    for v in g.outputs:
        li = len(layers)
        p = place(v)
        shape = g.tensors[v].shape
        layers.append(Layer(f"output:{v}", "Output", "io", a_bits=p.bits, output_shape=shape))
        layers[-1].kernel = io_kernel("output", shape, li, p.bits)
        b.emit(Opcode.HOST_OUT, dma, li, bytes_out=p.nbytes, wait0=p.token)
    geoms = macs.geoms
    acc_size = max([geoms[n].cout * geoms[n].pixels for n in geoms] or [1])
    weight_bytes = sum(layer.weight_bytes for layer in layers)
    spilled = [v for v, ok in mem.on_chip.items() if not ok]
    return Program(
        instrs=b.instructions(),
        desc=b.desc_table(),
        tiles=b.tile_table(),
        unit_class=np.array([int(c) for c in classes], dtype=np.int64),
        unit_names=names,
        n_tokens=b.n_tokens,
        layers=layers,
        placements=placements,
        bindings=bindings,
        inputs=list(g.inputs),
        outputs=list(g.outputs),
        mem_size=max(addr, 1),
        acc_size=acc_size,
        weight_size=max(b.weight_size, 1),
        fparam_size=max(b.fparam_size, 1),
        weights_resident=all(macs.wplan.resident),
        weight_bytes=weight_bytes,
        peak_activation_bytes=mem.peak_bytes,
        spilled=spilled,
        graph=g,
    )
