"""Control flow at import: inputs the user fixes to a value become initializers, and every
`If` whose condition is known before the run (from constants and static shapes) is replaced
by the branch it takes.

An `If` on run-time data (an arbitrator picking a cheap or a full branch) is inlined with the
branch the caller names (`branches`: If name -> True for then): the condition becomes an
output the host reads, and the branch's nodes wait for it (`DataBranch`). Without a choice
for it the import raises `BranchNeeded`, which the Session answers (ndpsim/session.py).

PyTorch and spox exports wrap whole models in such branches (silero-vad branches on the
sample rate, and on tensor ranks inside its LSTM wrapper): with the sample rate fixed, every
condition is static and the model is the plain dataflow graph a chip runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ndpsim.errors import ModelError
from ndpsim.frontend.infer import value_types
from ndpsim.frontend.messages import first_line, quote
from ndpsim.frontend.tensors import array_to_tensor, numpy_dtype, tensor_to_array, value_dims
from ndpsim.frontend.validate import real_inputs

# Ops a condition may be computed with (small integer / boolean arithmetic on shapes).
_COND_OPS = frozenset({"Equal", "Not", "And", "Or", "Greater", "Less", "GreaterOrEqual",
                       "LessOrEqual", "Cast", "Gather", "Squeeze", "Unsqueeze", "Concat",
                       "Identity", "Add", "Sub", "Mul", "Slice", "Reshape"})  # fmt: skip
_MAX_ROUNDS = 64  # nested Ifs are inlined one level per round
_MAX_COND_ELEMENTS = 64


class BranchNeeded(ModelError):
    """An If whose condition depends on run-time data and no branch was chosen for it."""

    def __init__(self, name: str, cond: str):
        super().__init__(f"If {quote(name)}: its condition {quote(cond)} depends on run-time "
                         "data; choose a branch (--branch then|else|both) or fix the inputs "
                         "it reads with --input-value name=value")  # fmt: skip
        self.name, self.cond = name, cond


@dataclass(frozen=True)
class DataBranch:
    """A data-dependent If inlined with one of its branches."""

    name: str  # the If node
    cond: str  # its condition: a graph output the host reads to dispatch the branch
    taken: bool  # True: then_branch
    nodes: tuple[str, ...]  # the branch's nodes: they start after the condition is known
    declared: bool = False  # the model itself declares the condition as an output


def if_name(node: onnx.NodeProto) -> str:
    """An If's name (its first output when the node has none)."""
    return node.name or f"If:{node.output[0]}"


def bind_input_values(model: onnx.ModelProto, values: Mapping[str, Sequence] | None) -> None:
    """Turn the named graph inputs into initializers holding the given values."""
    if not values:
        return
    inputs = {v.name: v for v in real_inputs(model)}
    for name, value in values.items():
        if name not in inputs:
            valid = ", ".join(quote(n) for n in inputs) or "none"
            raise ModelError(f"input_values names {quote(name)}, not an input of the model "
                             f"(inputs: {valid})")  # fmt: skip
        vi = inputs[name]
        dtype = numpy_dtype(vi.type.tensor_type.elem_type, f"input {quote(name)}")
        dims = value_dims(vi)
        arr = np.asarray(value, dtype=dtype)
        if arr.size > _MAX_COND_ELEMENTS:
            raise ModelError(f"input_values[{quote(name)}]: at most {_MAX_COND_ELEMENTS} values")
        if dims is not None:
            if any(not isinstance(d, int) for d in dims) or arr.size != int(np.prod(dims)):
                raise ModelError(f"input_values[{quote(name)}] has {arr.size} values; the input "
                                 f"is declared with shape {dims}")  # fmt: skip
            arr = arr.reshape(dims)
        model.graph.initializer.append(numpy_helper.from_array(arr, name))
        keep = [v for v in model.graph.input if v.name != name]
        del model.graph.input[:]
        model.graph.input.extend(keep)


def _evaluate(name: str, producer: dict, consts: dict, shapes: dict, depth: int = 0):
    """The value of `name` if it follows from constants and static shapes, else None."""
    if name in consts:
        return consts[name]
    node = producer.get(name)
    if node is None or depth > 200:
        return None
    if node.op_type == "Constant":
        try:
            value = numpy_helper.to_array(node.attribute[0].t)
        except Exception:
            return None
    elif node.op_type in ("Shape", "Size"):
        shape = shapes.get(node.input[0])
        if shape is None:
            return None
        if node.op_type == "Size":
            value = np.array(int(np.prod(shape)), np.int64)
        else:
            attrs = {a.name: a.i for a in node.attribute}
            value = np.array(shape[attrs.get("start", 0) : attrs.get("end")], np.int64)
    elif node.op_type in _COND_OPS:
        args = [_evaluate(i, producer, consts, shapes, depth + 1) if i else None
                for i in node.input]  # fmt: skip
        if any(a is None for i, a in zip(node.input, args, strict=True) if i):
            return None
        if any(a.size > _MAX_COND_ELEMENTS for a in args if a is not None):
            return None
        value = _run_node(node, [a for a in args])
        if value is None:
            return None
    else:
        return None
    consts[name] = value
    return value


def _run_node(node: onnx.NodeProto, args: list) -> np.ndarray | None:
    from onnx.reference import ReferenceEvaluator

    ins = [f"i{k}" if a is not None else "" for k, a in enumerate(args)]
    n = helper.make_node(node.op_type, ins, ["o"])
    n.attribute.extend(node.attribute)
    vis = [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for i, a in zip(ins, args, strict=True) if i]  # fmt: skip
    g = helper.make_graph([n], "cond", vis, [helper.make_value_info("o", onnx.TypeProto())])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ReferenceEvaluator(helper.make_model(g))
            return np.asarray(ref.run(None, {i: a for i, a in zip(ins, args, strict=True) if i})[0])
    except Exception:
        return None


def _static_facts(model: onnx.ModelProto, opset: int, limit: int) -> tuple[dict, dict]:
    """(static shapes, small constants) of the model as the import will see them: shape
    inference, constant folding (which resolves computed pads and reshapes), inference again."""
    from ndpsim.frontend.fold import fold_constants

    inferred = _loose_infer(model)
    shapes = value_types(inferred, limit)
    constants = {t.name: tensor_to_array(t, limit, f"initializer {quote(t.name)}")
                 for t in model.graph.initializer}  # fmt: skip
    nodes = fold_constants(list(inferred.graph.node), constants, shapes, opset, limit)
    used = {n for node in nodes for n in node.input}
    folded = helper.make_model(
        helper.make_graph(nodes, "folded", real_inputs(model), list(model.graph.output),
                          [array_to_tensor(a, k) for k, a in constants.items() if k in used]),
        opset_imports=list(model.opset_import), ir_version=max(model.ir_version, 4),
    )  # fmt: skip
    shapes = value_types(_loose_infer(folded), limit)
    static = {name: shape for name, (shape, _) in shapes.items() if shape is not None}
    small = {k: v for k, v in constants.items() if v.size <= _MAX_COND_ELEMENTS}
    return static, small


def _drop_dead_nodes(model: onnx.ModelProto) -> None:
    """Remove nodes nothing reads (the condition chains of the inlined Ifs)."""
    nodes = list(model.graph.node)
    while True:
        read = {i for n in nodes for i in n.input} | {o.name for o in model.graph.output}
        live = [n for n in nodes if any(o in read for o in n.output if o)]
        if len(live) == len(nodes):
            break
        nodes = live
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _loose_infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shape inference that tolerates errors in branches never taken (checked strictly after
    inlining, by the import's own checker and inference)."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise ModelError(f"shape inference failed: {first_line(exc)}") from None


def _inline(model: onnx.ModelProto, nodes: list, i: int, then: bool) -> list[onnx.NodeProto]:
    """Replace nodes[i] (an If) by its branch (outputs as Identity nodes onto the If's);
    returns the branch's nodes, named if they were not."""
    node = nodes[i]
    branch = next(a.g for a in node.attribute
                  if a.name == ("then_branch" if then else "else_branch"))  # fmt: skip
    body = [onnx.NodeProto() for _ in branch.node]
    for k, (copy, src) in enumerate(zip(body, branch.node, strict=True)):
        copy.CopyFrom(src)
        copy.name = copy.name or f"{if_name(node)}/{copy.op_type}_{k}"
    for out, res in zip(node.output, branch.output, strict=True):
        if out:
            body.append(helper.make_node("Identity", [res.name], [out],
                                         name=f"{if_name(node)}/{out}"))  # fmt: skip
    model.graph.initializer.extend(branch.initializer)
    nodes[i : i + 1] = body
    return body


def inline_ifs(
    model: onnx.ModelProto, opset: int, limit: int, branches: Mapping[str, bool] | None = None
) -> tuple[DataBranch, ...]:
    """Replace every If whose condition is static by the branch it takes, and every If on
    run-time data by the branch `branches` names for it (module docstring); returns those."""
    taken: list[DataBranch] = []
    for round_ in range(_MAX_ROUNDS):
        ifs = [i for i, n in enumerate(model.graph.node) if n.op_type == "If"]
        if not ifs:
            if round_:
                _drop_dead_nodes(model)
            return tuple(taken)
        shapes, consts = _static_facts(model, opset, limit)
        producer = {o: n for n in model.graph.node for o in n.output}
        nodes = list(model.graph.node)
        changed = False
        for i in reversed(ifs):
            node = nodes[i]
            cond = _evaluate(node.input[0], producer, consts, shapes)
            if cond is not None and cond.size == 1:
                _inline(model, nodes, i, bool(cond.reshape(-1)[0]))
                changed = True
            elif branches is not None and if_name(node) in branches:
                then = bool(branches[if_name(node)])
                body = _inline(model, nodes, i, then)
                declared = node.input[0] in {o.name for o in model.graph.output}
                taken.append(DataBranch(if_name(node), node.input[0], then,
                                        tuple(n.name for n in body), declared))  # fmt: skip
                if not declared:
                    cond = helper.make_tensor_value_info(
                        node.input[0], onnx.TensorProto.BOOL, shapes.get(node.input[0])
                    )
                    model.graph.output.append(cond)
                changed = True
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        if not changed:
            n = model.graph.node[ifs[0]]
            raise BranchNeeded(if_name(n), n.input[0])
    raise ModelError(f"more than {_MAX_ROUNDS} levels of nested If")
