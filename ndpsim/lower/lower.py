"""Graph -> Program: the lowering driver.

Stages, in order:
  1. graph passes (identities, BN folding, activation fusion)         lower/passes.py
  2. geometry and tiles of every MAC op                                lower/tiling.py
  3. weight placement on macros (resident or streamed)                 lower/memory.py
  4. activation buffers: liveness, SRAM first-fit, spills              lower/memory.py
  5. instructions per node, in graph order, with dependency tokens    lower/mac.py, vector.py
"""

from __future__ import annotations

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.isa import Opcode, Unit
from ndpsim.lower import vector as V
from ndpsim.lower.kernels import io_kernel, mac_kernel, vector_kernel
from ndpsim.lower.mac import MacContext, emit_mac
from ndpsim.lower.memory import ALIAS_OPS, place_weights, plan_memory
from ndpsim.lower.passes import activation_of, run_passes
from ndpsim.lower.program import Binding, Builder, Layer, Placement, Program
from ndpsim.lower.tiling import geometry, tiles_for
from ndpsim.ops import SUPPORTED_OPS

MAC_OPS = frozenset({"Conv", "Gemm", "MatMul"})
_ACT_OPS = frozenset({"Relu", "Clip", "LeakyRelu"})
_VECTOR_CHUNK = 4096  # elements per vector instruction: bounds one instruction's latency


def _value_inputs(g: Graph, node: Node) -> list[str]:
    """The inputs a node reads as activations (constant weights and attribute-like constant
    inputs, such as Reshape's shape or Clip's bounds, are not activation traffic)."""
    if node.op_type in MAC_OPS:
        return [node.inputs[0]]
    if node.op_type in ("Add", "Mul", "Sum", "Concat"):
        return [i for i in node.inputs if i]
    return [node.inputs[0]]


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
        if node.op_type not in SUPPORTED_OPS:
            raise UnsupportedOpError(f"unsupported op {node.op_type!r} (node {node.name!r})")
        if node.op_type == "Conv" and not hw.supports_conv:
            raise UnsupportedOpError(
                f"hardware {hw.name!r} runs fully-connected layers only; node {node.name!r} is a "
                "Conv (choose a preset with supports_conv, e.g. ndp120)"
            )


def lower(graph: Graph, hw: HardwareConfig) -> Program:
    """Lower a graph onto `hw`. Structure only: quantization parameters are filled by `bind`."""
    g = run_passes(graph)
    _check_supported(g, hw)
    a_bits, w_bits = hw.activation_bits, hw.weight_bits
    # -- values: aliases share their source's buffer; constants read as activations get one
    root: dict[str, str] = {}
    for node in g.nodes:
        if node.op_type in ALIAS_OPS:
            src = node.inputs[0]
            root[node.outputs[0]] = root.get(src, src)
    order, const_acts = [], []
    for node in g.nodes:
        ins = _value_inputs(g, node)
        const_acts += [v for v in ins if v in g.constants and v not in const_acts]
        order.append((node.name, ins, [o for o in node.outputs if o]))
    nbytes = {v: (t.size * a_bits + 7) // 8 for v, t in g.tensors.items()}
    pinned = list(g.inputs) + const_acts
    mem = plan_memory(order, nbytes, root, pinned, list(g.outputs), hw.sram_bytes)
    # -- MAC geometry, tiles, weight placement
    mac_nodes = [n for n in g.nodes if n.op_type in MAC_OPS]
    geoms = {n.name: geometry(g, n) for n in mac_nodes}
    col_tiles = {n.name: tiles_for(geoms[n.name], hw.macro_rows, hw.macro_cols) for n in mac_nodes}
    wplan = place_weights(
        [sum(len(ct) for ct in col_tiles[n.name]) for n in mac_nodes],
        hw.total_macros,
        hw.macro_weight_sets,
    )
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
            placements[r] = Placement(addr, t.shape, a_bits, mem.on_chip.get(r, True))
            addr += max(1, t.size)
        if v != r and v not in placements:
            src = placements[r]
            placements[v] = Placement(src.addr, g.tensors[v].shape, a_bits, src.on_chip, src.token)
        return placements[v]

    layers: list[Layer] = []
    bindings: list[Binding] = []
    for v in const_acts:
        p = place(v)
        bindings.append(Binding("const", -1, v, (v,), v))
        p.token = -1
    for v in g.inputs:
        li = len(layers)
        shape = g.tensors[v].shape
        layers.append(Layer(f"input:{v}", "Input", "io", a_bits=a_bits, output_shape=shape))
        layers[-1].kernel = io_kernel("input", shape, li, a_bits)
        p = place(v)
        p.token = b.token()
        b.emit(Opcode.HOST_IN, dma, li, bytes_in=p.nbytes, signal=p.token)
    slot_tokens: dict[int, int] = {}
    stream_cursor = [0]
    mac_i = 0
    for i, node in enumerate(g.nodes):
        li = len(layers)
        act = node.attrs.get("fused_act")
        layer = Layer(
            node.name,
            node.op_type,
            "vector",
            fused=(act[0],) if act else (),
            w_bits=0,
            a_bits=a_bits,
            peak_activation_bytes=mem.live_bytes_at[i],
            output_shape=g.tensors[node.outputs[0]].shape,
        )
        layers.append(layer)
        if node.op_type in ALIAS_OPS:
            layer.kind = "alias"
            src = place(node.inputs[0])
            out = place(node.outputs[0])
            out.token = src.token
            continue
        ins = [place(v) for v in _value_inputs(g, node)]
        y = place(node.outputs[0])
        # spilled inputs come back through the DMA before the layer reads them
        for p in ins:
            if not p.on_chip:
                tok = b.token()
                b.emit(Opcode.LOAD_A, dma, li, bytes_in=p.nbytes, wait0=p.token, signal=tok)
                p.token = tok
        ctx = V.VecContext(b, vec_units[li % hw.cores], dma, li, _VECTOR_CHUNK, a_bits)
        op = node.op_type
        if op in MAC_OPS:
            geom = geoms[node.name]
            layer.kind, layer.w_bits, layer.macs = "mac", w_bits, geom.macs
            layer.params = geom.cout * geom.k_g + (geom.cout if geom.bias else 0)
            layer.kernel = mac_kernel(node, geom, act, li, w_bits, a_bits)
            mctx = MacContext(
                b,
                hw.macros_per_core,
                hw.total_macros,
                hw.accumulator_entries_per_macro,
                hw.accumulator_bits,
                vec_units,
                dma,
                slot_tokens,
                wplan.stream_slots,
                stream_cursor,
            )
            bindings.append(
                emit_mac(
                    mctx,
                    li,
                    layer,
                    node.name,
                    geom,
                    col_tiles[node.name],
                    wplan.macro_of_tile[mac_i],
                    wplan.resident[mac_i],
                    ins[0],
                    y,
                    act,
                    w_bits,
                    a_bits,
                    node.inputs,
                    node.outputs[0],
                )
            )
            mac_i += 1
        elif op in ("Add", "Mul", "Sum"):
            names_in = _value_inputs(g, node)
            if len(names_in) == 1:  # Sum of one input: a copy
                bindings.append(V.emit_unary(ctx, node, ins[0], y, names_in[0], act))
            else:
                acc_name, acc_p = names_in[0], ins[0]
                for j in range(1, len(ins)):  # Sum: a chain of Adds into the output buffer
                    bindings.append(
                        V.emit_eltwise(
                            ctx,
                            node,
                            acc_p,
                            ins[j],
                            y,
                            acc_name,
                            names_in[j],
                            act if j == len(ins) - 1 else None,
                        )
                    )
                    acc_name, acc_p = node.outputs[0], y
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
            bindings.append(V.emit_pool(ctx, g, node, ins[0], y, act))
        elif op == "Softmax":
            bindings.append(V.emit_softmax(ctx, g, node, ins[0], y))
        elif op == "Transpose":
            bindings += V.emit_transpose(ctx, node, ins[0], y, act)
        elif op == "Concat":
            bindings += V.emit_concat(
                ctx, node, list(zip(_value_inputs(g, node), ins, strict=True)), y
            )
        elif op == "Pad":
            fill_name = f"{node.name}.pad_value"
            fp = Placement(addr, (1,), a_bits)
            addr += 1
            placements[fill_name] = fp
            bindings.append(Binding("pad_value", -1, node.name, (fill_name,), node.outputs[0]))
            bindings += V.emit_pad(ctx, g, node, ins[0], y, (fill_name, fp))
        elif op in _ACT_OPS:
            act_here = activation_of(g, node)
            if act_here is None:
                raise UnsupportedOpError(f"{op} {node.name!r}: bounds must be constants")
            bindings.append(V.emit_unary(ctx, node, ins[0], y, node.inputs[0], act_here))
        else:
            raise UnsupportedOpError(f"no lowering rule for {op!r} (node {node.name!r})")
        if layer.kernel is None:
            layer.kernel = vector_kernel(g, node, _value_inputs(g, node), act, li, a_bits)
        if not y.on_chip:  # spilled output: written out to external memory
            tok = b.token()
            b.emit(Opcode.STORE_A, dma, li, bytes_out=y.nbytes, wait0=y.token, signal=tok)
            y.token = tok
    for v in g.outputs:
        li = len(layers)
        shape = g.tensors[v].shape
        layers.append(Layer(f"output:{v}", "Output", "io", a_bits=a_bits, output_shape=shape))
        layers[-1].kernel = io_kernel("output", shape, li, a_bits)
        p = place(v)
        b.emit(Opcode.HOST_OUT, dma, li, bytes_out=p.nbytes, wait0=p.token)
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
        weights_resident=all(wplan.resident),
        weight_bytes=weight_bytes,
        peak_activation_bytes=mem.peak_bytes,
        spilled=spilled,
        graph=g,
    )
