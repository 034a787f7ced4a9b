"""Graph passes that rewrite ops into ones the machine runs directly.

- LSTM / GRU (ONNX semantics, as PyTorch exports them: both directions, initial states,
  layout 0 or 1, GRU's linear_before_reset) become the recurrence unrolled over the sequence:
  one input projection (a Gemm over all time steps), then per step a recurrent MatMul whose
  weight constant is shared by every step (the lowering places it once on the macros),
  Add / Sub / Mul on the vector unit and Sigmoid / Tanh on its function unit. Each step
  depends on the previous one, so latency grows with the sequence length.
- MatMul with a batched constant right-hand side becomes one MatMul per batch.
"""

from __future__ import annotations

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.lower.rewrite import NodeEmitter


def _input(node: Node, i: int) -> str:
    return node.inputs[i] if len(node.inputs) > i else ""


def _const(g: Graph, node: Node, i: int, what: str) -> np.ndarray | None:
    name = _input(node, i)
    if not name:
        return None
    if name not in g.constants:
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: {what} must be a constant")
    return np.asarray(g.constants[name], np.float32)


def _check(g: Graph, node: Node, gates: int, defaults: tuple[str, ...]) -> None:
    a = node.attrs
    acts = a.get("activations")
    if acts and tuple(acts) != defaults * (len(acts) // len(defaults)):
        raise UnsupportedOpError(
            f"{node.op_type} {node.name!r}: activations {list(acts)} (only the defaults "
            f"{list(defaults)} are lowered)"
        )
    if a.get("clip") is not None:
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: the clip attribute")
    if int(a.get("input_forget", 0) or 0):
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: input_forget=1")
    lens = _input(node, 4)
    if lens:
        x = g.tensors[node.inputs[0]].shape
        seq, batch = (x[1], x[0]) if int(a.get("layout", 0) or 0) else (x[0], x[1])
        v = g.constants.get(lens)
        if v is None or not np.all(np.asarray(v) == seq) or np.asarray(v).size != batch:
            raise UnsupportedOpError(
                f"{node.op_type} {node.name!r}: sequence_lens {lens!r} must be a constant equal "
                "to the sequence length (variable-length batches are not lowered)"
            )


def _recurrent(g: Graph, node: Node) -> tuple[list[Node], dict, dict]:
    """The unrolled recurrence of one LSTM or GRU node."""
    lstm = node.op_type == "LSTM"
    ng = 4 if lstm else 3
    _check(g, node, ng, ("Sigmoid", "Tanh", "Tanh") if lstm else ("Sigmoid", "Tanh"))
    a = node.attrs
    layout = int(a.get("layout", 0) or 0)
    xs = g.tensors[node.inputs[0]].shape
    seq, batch, n_in = (xs[1], xs[0], xs[2]) if layout else xs
    w = _const(g, node, 1, "W")
    r = _const(g, node, 2, "R")
    dirs, hid = w.shape[0], w.shape[1] // ng
    bias = _const(g, node, 3, "B")
    bias = np.zeros((dirs, 2 * ng * hid), np.float32) if bias is None else bias
    peep = _const(g, node, 7, "P") if lstm else None
    lbr = int(a.get("linear_before_reset", 0) or 0) if not lstm else 0
    e = NodeEmitter(g, node.name)
    x2 = e.op("Reshape", [node.inputs[0], e.const("xshape", np.array([seq * batch, n_in]))],
              (seq * batch, n_in))  # fmt: skip
    init = [_input(node, 5), _input(node, 6) if lstm else ""]
    outs = list(node.outputs) + ["", "", ""]
    hs: list[list[str]] = [[""] * seq for _ in range(dirs)]
    last_h, last_c = [""] * dirs, [""] * dirs
    state: list[dict] = []
    for d in range(dirs):
        wb, rb = bias[d, : ng * hid], bias[d, ng * hid :]
        # input projection of every step at once; R's bias joins it except GRU's hidden gate
        # with linear_before_reset (it sits inside r * (...))
        pb = wb + rb
        if not lstm:
            pb = wb + np.concatenate([rb[: 2 * hid], rb[2 * hid :] * (1 - lbr)])
        xw = e.op("Gemm", [x2, e.const(f"W{d}", w[d]), e.const(f"Wb{d}", pb)],
                  (seq * batch, ng * hid), transB=1)  # fmt: skip
        xw3 = e.op("Reshape", [xw, e.const(f"xw{d}", np.array(
            [batch, seq, ng * hid] if layout else [seq, batch, ng * hid]))],
            (batch, seq, ng * hid) if layout else (seq, batch, ng * hid))  # fmt: skip
        h0 = c0 = ""
        for k, name in enumerate(init):
            if name:
                v = e.take(name, d, 1 if layout else 0, (batch, hid))
                h0, c0 = (v, c0) if k == 0 else (h0, v)
        zeros = np.zeros((batch, hid), np.float32)
        h0 = h0 or e.const(f"h0_{d}", zeros)
        c0 = c0 or (e.const(f"c0_{d}", zeros) if lstm else "")
        rt = e.const(f"RT{d}", np.ascontiguousarray(r[d].T))  # [hid, ng*hid], shared by steps
        extra = {}
        if not lstm and lbr:
            extra["rbh"] = e.const(f"Rbh{d}", rb[2 * hid :].reshape(1, hid))
        if not lstm and not lbr:
            extra["rt_zr"] = e.const(f"RTzr{d}", np.ascontiguousarray(r[d, : 2 * hid].T))
            extra["rt_h"] = e.const(f"RTh{d}", np.ascontiguousarray(r[d, 2 * hid :].T))
        if peep is not None:
            for j, gname in enumerate("iof"):
                extra[f"p{gname}"] = e.const(f"P{gname}{d}", peep[d, j * hid : (j + 1) * hid])
        state.append({"h": h0, "c": c0, "xw3": xw3, "rt": rt, **extra})
    bh = (batch, hid)
    # interleave the directions step by step so the scheduler can overlap them
    for step in range(seq):
        for d in range(dirs):
            st = state[d]
            t = step if (d == 0 and a.get("direction", "forward") != "reverse") else seq - 1 - step
            xw_t = e.take(st["xw3"], t, 1 if layout else 0, (batch, ng * hid))
            if lstm:
                gates = e.op("Add", [xw_t, e.op("MatMul", [st["h"], st["rt"]], (batch, 4 * hid))],
                             (batch, 4 * hid))  # fmt: skip
                gi, go, gf, gc = (e.cols(gates, j * hid, (j + 1) * hid, batch) for j in range(4))
                if peep is not None:
                    gi = e.op("Add", [gi, e.op("Mul", [st["c"], st["pi"]], bh)], bh)
                    gf = e.op("Add", [gf, e.op("Mul", [st["c"], st["pf"]], bh)], bh)
                i_, f_ = e.op("Sigmoid", [gi], bh), e.op("Sigmoid", [gf], bh)
                c = e.op("Add", [e.op("Mul", [f_, st["c"]], bh),
                                 e.op("Mul", [i_, e.op("Tanh", [gc], bh)], bh)], bh)  # fmt: skip
                if peep is not None:
                    go = e.op("Add", [go, e.op("Mul", [c, st["po"]], bh)], bh)
                h = e.op("Mul", [e.op("Sigmoid", [go], bh), e.op("Tanh", [c], bh)], bh)
                st["c"] = c
            else:
                xz = e.cols(xw_t, 0, 2 * hid, batch)
                xh = e.cols(xw_t, 2 * hid, 3 * hid, batch)
                if lbr:
                    hr = e.op("MatMul", [st["h"], st["rt"]], (batch, 3 * hid))
                    zr = e.op("Sigmoid", [e.op("Add", [xz, e.cols(hr, 0, 2 * hid, batch)],
                                               (batch, 2 * hid))], (batch, 2 * hid))  # fmt: skip
                    z, r_ = e.cols(zr, 0, hid, batch), e.cols(zr, hid, 2 * hid, batch)
                    hh_in = e.op("Add", [e.cols(hr, 2 * hid, 3 * hid, batch), st["rbh"]], bh)
                    hh = e.op("Tanh", [e.op("Add", [xh, e.op("Mul", [r_, hh_in], bh)], bh)], bh)
                else:
                    hr = e.op("MatMul", [st["h"], st["rt_zr"]], (batch, 2 * hid))
                    zr = e.op("Sigmoid", [e.op("Add", [xz, hr], (batch, 2 * hid))],
                              (batch, 2 * hid))  # fmt: skip
                    z, r_ = e.cols(zr, 0, hid, batch), e.cols(zr, hid, 2 * hid, batch)
                    rh = e.op("MatMul", [e.op("Mul", [r_, st["h"]], bh), st["rt_h"]], bh)
                    hh = e.op("Tanh", [e.op("Add", [xh, rh], bh)], bh)
                # h = (1 - z) * hh + z * h_prev = hh + z * (h_prev - hh)
                h = e.op("Add", [hh, e.op("Mul", [z, e.op("Sub", [st["h"], hh], bh)], bh)], bh)
            st["h"] = h
            hs[d][t] = h
    for d in range(dirs):
        last_h[d], last_c[d] = state[d]["h"], state[d]["c"]
    # outputs: Y [seq, dirs, batch, hid] (layout 1: [batch, seq, dirs, hid]); Y_h, Y_c
    if outs[0]:
        per_dir = []
        for d in range(dirs):
            shape1 = (batch, 1, 1, hid) if layout else (1, 1, batch, hid)
            steps = [e.op("Reshape", [h, e.const(f"u{d}_{t}", np.array(shape1))], shape1)
                     for t, h in enumerate(hs[d])]  # fmt: skip
            cat_shape = (batch, seq, 1, hid) if layout else (seq, 1, batch, hid)
            per_dir.append(e.op("Concat", steps, cat_shape, axis=1 if layout else 0))
        y_shape = g.tensors[outs[0]].shape
        e.op("Concat", per_dir, y_shape, out=outs[0], axis=2 if layout else 1)
    for k, lasts in ((1, last_h), (2, last_c)):
        if outs[k] and lasts[0]:
            shape1 = (batch, 1, hid) if layout else (1, batch, hid)
            parts = [e.op("Reshape", [v, e.const(f"l{k}_{d}", np.array(shape1))], shape1)
                     for d, v in enumerate(lasts)]  # fmt: skip
            e.op("Concat", parts, g.tensors[outs[k]].shape, out=outs[k], axis=1 if layout else 0)
    return e.nodes, e.tensors, e.consts


def decompose_recurrent(g: Graph) -> Graph:
    """LSTM and GRU nodes -> their unrolled recurrence (see the module docstring)."""
    if not any(n.op_type in ("LSTM", "GRU") for n in g.nodes):
        return g
    nodes: list[Node] = []
    tensors, consts = dict(g.tensors), dict(g.constants)
    for node in g.nodes:
        if node.op_type not in ("LSTM", "GRU"):
            nodes.append(node)
            continue
        new, t, c = _recurrent(g.with_(tensors=tensors, constants=consts), node)
        nodes += new
        tensors.update(t)
        consts.update(c)
    return g.with_(nodes=tuple(nodes), tensors=tensors, constants=consts)


def split_batched_matmul(g: Graph) -> Graph:
    """MatMul(A, B) with a constant B of batch dims > 1: one MatMul per batch on
    A[b] (a Gather), then a Concat. A 2-D B needs nothing: A's batch rows are more pixels."""
    todo = [
        n
        for n in g.nodes
        if n.op_type == "MatMul"
        and n.inputs[1] in g.constants
        and g.constants[n.inputs[1]].ndim > 2
        and int(np.prod(g.constants[n.inputs[1]].shape[:-2])) > 1
    ]
    if not todo:
        return g
    nodes: list[Node] = []
    tensors, consts = dict(g.tensors), dict(g.constants)
    for node in g.nodes:
        if node not in todo:
            nodes.append(node)
            continue
        b = np.asarray(consts[node.inputs[1]])
        ashape = tensors[node.inputs[0]].shape
        yshape = tensors[node.outputs[0]].shape
        if len(ashape) < 2:
            raise UnsupportedOpError(f"MatMul {node.name!r}: 1-D left operand with batched B")
        batch = yshape[:-2]
        m, k, n_ = ashape[-2], ashape[-1], b.shape[-1]
        nb = int(np.prod(batch))
        e = NodeEmitter(g.with_(tensors=tensors, constants=consts), node.name)
        a_b = np.broadcast_to(np.arange(int(np.prod(ashape[:-2]))).reshape(ashape[:-2]), batch)
        b_all = np.broadcast_to(b, (*batch, k, n_)).reshape(nb, k, n_)
        a3 = ""
        if len(ashape) > 2:
            a3 = e.op("Reshape", [node.inputs[0], e.const("a3", np.array([-1, m, k]))],
                      (int(np.prod(ashape[:-2])), m, k))  # fmt: skip
        parts = []
        for i, ai in enumerate(a_b.reshape(-1)):
            a_i = e.take(a3, int(ai), 0, (m, k)) if a3 else node.inputs[0]
            y_i = e.op("MatMul", [a_i, e.const(f"B{i}", b_all[i])], (m, n_))
            parts.append(e.op("Reshape", [y_i, e.const(f"r{i}", np.array([1, m, n_]))],
                              (1, m, n_)))  # fmt: skip
        cat = e.op("Concat", parts, (nb, m, n_), axis=0)
        e.op("Reshape", [cat, e.const("y", np.array(yshape))], yshape, out=node.outputs[0])
        nodes += e.nodes
        tensors.update(e.tensors)
        consts.update(e.consts)
    return g.with_(nodes=tuple(nodes), tensors=tensors, constants=consts)


def decompose_normalization(g: Graph) -> Graph:
    """LRN -> x * (bias + alpha * mean of x^2 over `size` channels)^-beta: a Mul, an
    AveragePool across channels (count_include_pad: the mean is sum/size as the spec's
    alpha/size * sum), the power on the function unit and a Mul. Pow with exponent 2 -> Mul,
    0.5 -> Sqrt (exact for negative bases too, where the function unit's power gives 0)."""
    if not any(n.op_type in ("LRN", "Pow") for n in g.nodes):
        return g
    nodes: list[Node] = []
    tensors, consts = dict(g.tensors), dict(g.constants)
    for node in g.nodes:
        if node.op_type == "Pow" and node.inputs[1] in consts and consts[node.inputs[1]].size == 1:
            e = float(np.asarray(consts[node.inputs[1]]).reshape(-1)[0])
            if e in (2.0, 0.5):
                x = node.inputs[0]
                new = (x, x) if e == 2.0 else (x,)
                nodes.append(
                    node.with_(op_type="Mul" if e == 2.0 else "Sqrt", inputs=new, attrs={})
                )
                continue
        if node.op_type != "LRN":
            nodes.append(node)
            continue
        x = node.inputs[0]
        shape = tensors[x].shape
        if len(shape) < 3:
            raise UnsupportedOpError(f"LRN {node.name!r}: input of rank < 3 ({shape})")
        nb, c, hw = shape[0], shape[1], int(np.prod(shape[2:]))
        size = int(node.attrs["size"])
        e = NodeEmitter(g.with_(tensors=tensors, constants=consts), node.name)
        sq = e.op("Mul", [x, x], shape)
        # batches as pooling "channels", channels as rows: the window never crosses a batch
        sq4 = e.op("Reshape", [sq, e.const("v", np.array([1, nb, c, hw]))], (1, nb, c, hw))
        lo = (size - 1) // 2
        avg = e.op("AveragePool", [sq4], (1, nb, c, hw), kernel_shape=(size, 1),
                   pads=(lo, 0, size - 1 - lo, 0), strides=(1, 1), count_include_pad=1,
                   auto_pad="NOTSET", ceil_mode=0, dilations=None)  # fmt: skip
        avg4 = e.op("Reshape", [avg, e.const("s", np.array(shape))], shape)
        beta = e.const("beta", np.array(-float(node.attrs.get("beta", 0.75)), np.float32))
        norm = e.op("Pow", [avg4, beta], shape, pow_scale=float(node.attrs.get("alpha", 1e-4)),
                    pow_offset=float(node.attrs.get("bias", 1.0)))  # fmt: skip
        e.op("Mul", [x, norm], shape, out=node.outputs[0])
        nodes += e.nodes
        tensors.update(e.tensors)
        consts.update(e.consts)
    return g.with_(nodes=tuple(nodes), tensors=tensors, constants=consts)


def casts_to_identity(g: Graph) -> Graph:
    """A Cast of an activation between float types is a wire on the machine (its datapath
    has one activation format), and so is bool -> float (a bool is stored as 0 / 1 at scale
    1, which is its float value); any other Cast of an activation is refused."""
    if not any(n.op_type == "Cast" for n in g.nodes):
        return g
    nodes = []
    for node in g.nodes:
        if node.op_type == "Cast":
            src, dst = g.tensors[node.inputs[0]].dtype, g.tensors[node.outputs[0]].dtype
            if np.dtype(src).kind not in "fb" or np.dtype(dst).kind != "f":
                raise UnsupportedOpError(f"Cast {node.name!r}: {src} -> {dst} of an activation "
                                         "(only float or bool -> float)")  # fmt: skip
            node = node.with_(op_type="Identity", attrs={})
        nodes.append(node)
    return g.with_(nodes=tuple(nodes))
