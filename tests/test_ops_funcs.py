"""The function unit's table ops (Erf, Gelu) and the ops added with them, each alone in a
small model against onnxruntime: the float datapath to 1e-4 (over inputs that reach past the
tables' ranges), the integer datapath (int8 PTQ: dequantize, f, requantize) by SQNR, and the
element operations counted. tests/test_ops.py covers the other supported ops; together they
cover exactly SUPPORTED_OPS."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

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


def _model(nodes, shapes, y_shape, opset=13):
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)
    g = helper.make_graph(nodes, "op", ins, [y])
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
}
HW = load_preset("generic")


def _normal(spread: float):
    return lambda rng, shape: rng.standard_normal(shape) * spread


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
}


def _inputs(case: str, graph, integer: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
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
    if OPS[graph.nodes[0].op_type].func.tables:  # a table: interpolation error (bench below)
        np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-5, atol=1e-4)
    else:  # correctly rounded: onnxruntime's float32 Exp / Log within an ulp or so
        np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_integer_datapath_is_close_to_onnxruntime(case):
    model = CASES[case]
    graph = load_model(model)
    program = lower(graph, HW)
    x = _inputs(case, graph, integer=True)
    plan = calibrate(program, HW, [x])
    ref = onnxruntime_outputs(model, x)["y"]
    got = read_value(program, run(program, HW, bind(program, plan), x, plan), "y", plan)
    err = np.sum((got.reshape(ref.shape) - ref) ** 2)
    sqnr = 10 * np.log10(np.sum(ref**2) / max(err, 1e-30))
    assert sqnr > 25, f"{case}: SQNR {sqnr:.1f} dB"


@pytest.mark.parametrize("case", sorted(CASES))
def test_function_unit_work_is_counted(case):
    """Every output element is one function-unit evaluation of the entry's work."""
    model = CASES[case]
    graph = load_model(model)
    program = lower(graph, HW)
    x = _inputs(case, graph)
    result = run(program, HW, bind(program, None), x)
    func = OPS[case.split("-")[0]].func
    work = func.table(graph.nodes[0]).work if func.tables else func.work
    funcs = program.instrs[program.instrs["op"] == Opcode.FUNC]
    n = 2 * 3 * 40
    assert int(funcs["a2"].sum()) == n
    assert int(funcs["work"].sum()) == n * work
    assert int(result.counters[:, Counter.VECTOR_LUT_OPS].sum()) == n


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
