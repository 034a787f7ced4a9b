"""The function unit's ops (the TABLE kind's Erf and Gelu; Exp, Log, Reciprocal, Abs, Neg),
the element-wise Max / Min / Div of activations and ReduceSum / ReduceMax, each alone in a
small model against onnxruntime: the float datapath (tables to 1e-4 over inputs that reach
past their ranges; exact functions and element-wise ops to 1e-6 relative), the integer
datapath (int8 PTQ: dequantize, f, requantize) by SQNR, and the element operations counted.
tests/test_ops.py covers the other supported ops; together they cover exactly
SUPPORTED_OPS."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ndpsim.api import onnxruntime_outputs
from ndpsim.config import load_preset
from ndpsim.frontend import load_model
from ndpsim.isa import DESC_FIELDS, DESC_WIDTH, Counter, FuncKind, Opcode
from ndpsim.lower import lower
from ndpsim.lower.registry import OPS
from ndpsim.quant.bind import bind
from ndpsim.sim.calibrate import calibrate
from ndpsim.sim.kernels_vector import func
from ndpsim.sim.run import read_value, run

pytest.importorskip("onnxruntime")
N = helper.make_node


def _model(nodes, shapes, y_shape, opset=13, axes=None):
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)
    inits = [] if axes is None else [numpy_helper.from_array(np.array(axes, np.int64), "axes")]
    g = helper.make_graph(nodes, "op", ins, [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _unary(op: str, opset: int = 13, **attrs) -> onnx.ModelProto:
    return _model([N(op, ["x"], ["y"], **attrs)], {"x": [2, 3, 40]}, [2, 3, 40], opset)


CASES = {
    "Erf": _unary("Erf"),
    "Gelu": _unary("Gelu", opset=20),
    "Gelu-tanh": _unary("Gelu", opset=20, approximate="tanh"),
    "Exp": _unary("Exp"),
    "Log": _unary("Log"),
    "Reciprocal": _unary("Reciprocal"),
    "Abs": _unary("Abs"),
    "Neg": _unary("Neg"),
    # two activations, numpy broadcasting; three inputs chain
    "Max": _model([N("Max", ["x", "z"], ["y"])], {"x": [2, 3, 40], "z": [3, 1]}, [2, 3, 40]),
    "Max-3": _model([N("Max", ["x", "z", "w"], ["y"])],
                    {"x": [2, 3, 40], "z": [1, 40], "w": [2, 1, 1]}, [2, 3, 40]),  # fmt: skip
    "Min": _model([N("Min", ["x", "z"], ["y"])], {"x": [2, 3, 40], "z": [2, 3, 40]}, [2, 3, 40]),
    "Div-activations": _model([N("Div", ["x", "z"], ["y"])], {"x": [2, 3, 40], "z": [40]},
                              [2, 3, 40]),  # fmt: skip
    # axes as an input (ReduceSum from opset 13, ReduceMax from 18) or an attribute
    "ReduceSum": _model([N("ReduceSum", ["x", "axes"], ["y"], keepdims=1)], {"x": [2, 3, 40]},
                        [2, 1, 40], axes=[1]),  # fmt: skip
    "ReduceSum-all": _model([N("ReduceSum", ["x"], ["y"], keepdims=0)], {"x": [2, 3, 40]}, []),
    "ReduceSum-noop": _model([N("ReduceSum", ["x"], ["y"], noop_with_empty_axes=1)],
                             {"x": [2, 3, 40]}, [2, 3, 40]),  # fmt: skip
    "ReduceMax": _model([N("ReduceMax", ["x"], ["y"], axes=[0, 2], keepdims=0)],
                        {"x": [2, 3, 40]}, [3]),  # fmt: skip
    "ReduceMax-18": _model([N("ReduceMax", ["x", "axes"], ["y"], keepdims=1)],
                           {"x": [2, 3, 40]}, [2, 3, 1], opset=18, axes=[-1]),  # fmt: skip
}
HW = load_preset("generic")


def _normal(spread: float):
    return lambda rng, shape: rng.standard_normal(shape) * spread


def _shifted(mean: float, spread: float):
    return lambda rng, shape: mean + rng.standard_normal(shape) * spread


def _magnitude(lo: float, hi: float, signed: bool):
    """Log-uniform magnitudes in [lo, hi], random signs when `signed`."""

    def draw(rng, shape):
        m = np.exp(rng.uniform(np.log(lo), np.log(hi), shape))
        return m * rng.choice([-1.0, 1.0], shape) if signed else m

    return draw


# (float inputs, integer inputs): the float datapath over wide inputs (past the tables'
# ranges and onto their slopes; Exp and Log over many decades), the integer datapath over
# what an 8-bit input resolves
INPUTS = {
    "Erf": (_normal(3.0), _normal(1.0)),
    "Gelu": (_normal(4.0), _normal(2.0)),
    "Gelu-tanh": (_normal(4.0), _normal(2.0)),
    "Exp": (_normal(20.0), _normal(1.0)),
    "Log": (_magnitude(1e-30, 1e30, False), _magnitude(0.5, 8.0, False)),
    "Reciprocal": (_magnitude(1e-30, 1e30, True), _magnitude(0.5, 4.0, True)),
    "Abs": (_normal(10.0), _normal(1.0)),
    "Neg": (_normal(10.0), _normal(1.0)),
    "Max": (_normal(10.0), _normal(1.0)),
    "Max-3": (_normal(10.0), _normal(1.0)),
    "Min": (_normal(10.0), _normal(1.0)),
    "Div-activations": (_magnitude(1e-20, 1e20, True), _magnitude(0.5, 4.0, True)),
    "ReduceSum": (_normal(10.0), _normal(1.0)),
    # one scalar: the sum of 240 zero-mean values is near 0, where 240 inputs' rounding errors
    # (int8: sqrt(240) * step / sqrt(12)) swamp it; a mean keeps a signal to measure
    "ReduceSum-all": (_normal(10.0), _shifted(1.0, 1.0)),
    "ReduceSum-noop": (_normal(10.0), _normal(1.0)),
    "ReduceMax": (_normal(10.0), _normal(1.0)),
    "ReduceMax-18": (_normal(10.0), _normal(1.0)),
}
# float tolerance (rtol, atol): tables interpolate (docs/machine_model.md, 3a); sums add in
# another order than onnxruntime; the rest is correctly rounded
TOLERANCE = {"table": (1e-5, 1e-4), "sum": (1e-5, 1e-5), "exact": (1e-6, 0.0)}


def _tolerance(op: str) -> tuple[float, float]:
    func = OPS[op].func
    if func is not None and func.tables:
        return TOLERANCE["table"]
    return TOLERANCE["sum" if op == "ReduceSum" else "exact"]


def _inputs(case: str, graph, integer: bool = False, seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    draw = INPUTS[case][int(integer)]
    return {n: draw(rng, graph.tensors[n].shape).astype(np.float32) for n in graph.inputs}


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_datapath_matches_onnxruntime(case):
    model = CASES[case]
    graph = load_model(model)
    program = lower(graph, HW)
    x = _inputs(case, graph)
    ref = onnxruntime_outputs(model, x)["y"]
    got = read_value(program, run(program, HW, bind(program, None), x), "y", None)
    rtol, atol = _tolerance(graph.nodes[0].op_type)
    np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_integer_datapath_is_close_to_onnxruntime(case):
    model = CASES[case]
    graph = load_model(model)
    program = lower(graph, HW)
    # calibrated on other draws than the one measured (a held-out input)
    plan = calibrate(program, HW, [_inputs(case, graph, True, seed) for seed in (1, 2, 3)])
    x = _inputs(case, graph, integer=True)
    ref = onnxruntime_outputs(model, x)["y"]
    got = read_value(program, run(program, HW, bind(program, plan), x, plan), "y", plan)
    err = np.sum((got.reshape(ref.shape) - ref) ** 2)
    sqnr = 10 * np.log10(np.sum(ref**2) / max(err, 1e-30))
    assert sqnr > 25, f"{case}: SQNR {sqnr:.1f} dB"


def _expected_element_ops(case: str, graph) -> int:
    """Vector element operations of the case's one node: a function's work per element, one
    per element and operand pair, one per element reduced (a copy: one per element)."""
    node = graph.nodes[0]
    n_out = int(np.prod(graph.tensors["y"].shape))
    func = OPS[node.op_type].func
    if func is not None:
        return n_out * (func.table(node).work if func.tables else func.work)
    if node.op_type.startswith("Reduce"):
        return int(np.prod(graph.tensors["x"].shape))
    return n_out * (len(node.inputs) - 1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_element_ops_are_counted(case):
    model = CASES[case]
    graph = load_model(model)
    program = lower(graph, HW)
    result = run(program, HW, bind(program, None), _inputs(case, graph))
    ops = int(result.counters[:, Counter.VECTOR_ELEMENT_OPS].sum())
    assert ops == _expected_element_ops(case, graph)
    funcs = program.instrs[program.instrs["op"] == Opcode.FUNC]
    lut = int(result.counters[:, Counter.VECTOR_LUT_OPS].sum())
    if OPS[graph.nodes[0].op_type].func is not None:  # one function-unit evaluation each
        assert lut == int(funcs["a2"].sum()) == graph.tensors["y"].size
    else:
        assert lut == 0 and funcs.size == 0


def _kernel(table, x: np.ndarray) -> np.ndarray:
    """The FUNC kernel's outputs for float32 inputs x through `table` (unit scales)."""
    values, n = table.values(), x.size
    size = values.size
    tail = [table.lo, (size - 1) / (table.hi - table.lo), 1.0, 1.0, *table.slopes, table.hi]
    fparams = np.concatenate([values, tail]).astype(np.float32)
    slots = ["lut_lo", "lut_inv_step", "sx", "ry", "p0", "p1", "p2"]
    fields = {"kind": int(FuncKind.TABLE), "x_base": 0, "y_base": n, "lut_base": 0,
              "lut_size": size, **{k: size + i for i, k in enumerate(slots)}}  # fmt: skip
    d = np.zeros(DESC_WIDTH, np.int64)
    for k, v in fields.items():
        d[DESC_FIELDS["func"][k]] = v
    mem = np.concatenate([x, np.zeros(n, np.float32)])
    func(d, 0, n, mem, fparams, True)
    return mem[n:].astype(np.float64)


TABLES = [(f"{op}{'-' + v if v else ''}", t) for op, e in sorted(OPS.items())
          if e.func is not None for v, t in e.func.tables]  # fmt: skip


@pytest.mark.parametrize("name,table", TABLES, ids=[n for n, _ in TABLES])
def test_every_table_meets_its_interpolation_bound(name, table):
    """Max error over [-20, 20] (inside, and beyond on the table's slopes) against the table's
    own float64 function: within h^2/8 * max|f''| plus float32 rounding, and below the 1e-4
    the float datapath promises (benchmarks/func_tables.py prints these figures)."""
    x = np.linspace(-20.0, 20.0, 400_001).astype(np.float32)
    err = np.abs(_kernel(table, x) - table.f(x.astype(np.float64)))
    grid = np.linspace(table.lo, table.hi, 100_001)
    d2 = np.abs(np.diff(table.f(grid), 2)).max() / (grid[1] - grid[0]) ** 2
    h = (table.hi - table.lo) / (table.entries - 1)
    f_max = np.abs(table.f(np.array([table.lo, table.hi]))).max()
    assert err.max() <= h * h / 8 * d2 + 4 * np.spacing(np.float32(max(f_max, 1.0))), name
    assert err.max() < 1e-4, name
