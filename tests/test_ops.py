"""Every supported op, alone in a small model, simulated against onnxruntime: the float
datapath checks the lowering itself (to 1e-4), the integer datapath checks quantization
(SQNR). The op set covered must be exactly SUPPORTED_OPS."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_ops_funcs import CASES as FUNC_CASES

from ndpsim.api import onnxruntime_outputs
from ndpsim.config import load_preset
from ndpsim.frontend import load_model
from ndpsim.lower import lower
from ndpsim.lower.registry import SUPPORTED_OPS
from ndpsim.quant.bind import bind
from ndpsim.sim.calibrate import calibrate
from ndpsim.sim.run import read_value, run

pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(7)


def _const(name, shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, x_shape, y_shape, inits=(), opset=13, extra_inputs=()):
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    ins += [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in extra_inputs]
    g = helper.make_graph(
        nodes,
        "op",
        ins,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        list(inits),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


N = helper.make_node
CASES = {
    "Conv": _model(
        [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 2, 1, 2], strides=[2, 1], dilations=[1, 2])],
        [1, 6, 9, 11],
        [1, 8, 5, 11],
        [_const("w", (8, 6, 3, 3)), _const("b", (8,))],
    ),
    "Conv-grouped": _model(
        [N("Conv", ["x", "w"], ["y"], group=3, auto_pad="SAME_UPPER")],
        [1, 6, 7, 7],
        [1, 9, 7, 7],
        [_const("w", (9, 2, 2, 3))],
    ),
    "Conv-depthwise-1d": _model(
        [N("Conv", ["x", "w"], ["y"], group=5, pads=[2, 2])],
        [1, 5, 20],
        [1, 5, 20],
        [_const("w", (5, 1, 5))],
    ),
    "Gemm": _model(
        [N("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)],
        [1, 40],
        [1, 12],
        [_const("w", (12, 40)), _const("b", (12,))],
    ),
    "MatMul": _model([N("MatMul", ["x", "w"], ["y"])], [3, 20], [3, 7], [_const("w", (20, 7))]),
    "MatMul-activations": _model(  # Q·Kᵀ-like: both operands run-time values, batch broadcast
        [N("MatMul", ["x", "z"], ["y"])], [1, 2, 5, 8], [1, 2, 5, 6],
        extra_inputs=[("z", [2, 8, 6])],
    ),
    "BatchNormalization": _model(
        [N("BatchNormalization", ["x", "s", "bb", "m", "v"], ["y"])],
        [1, 4, 5, 5],
        [1, 4, 5, 5],
        [
            _const("s", (4,)),
            _const("bb", (4,)),
            _const("m", (4,)),
            numpy_helper.from_array(np.abs(RNG.standard_normal(4)).astype(np.float32) + 0.5, "v"),
        ],
    ),
    "Relu": _model([N("Relu", ["x"], ["y"])], [1, 3, 4, 4], [1, 3, 4, 4]),
    "Clip": _model(
        [N("Clip", ["x", "lo", "hi"], ["y"])],
        [1, 3, 4, 4],
        [1, 3, 4, 4],
        [
            numpy_helper.from_array(np.float32(-0.5), "lo"),
            numpy_helper.from_array(np.float32(0.7), "hi"),
        ],
    ),
    "LeakyRelu": _model([N("LeakyRelu", ["x"], ["y"], alpha=0.2)], [1, 3, 4, 4], [1, 3, 4, 4]),
    "Add": _model(
        [N("Add", ["x", "c"], ["y"])], [1, 3, 4, 4], [1, 3, 4, 4], [_const("c", (3, 1, 1))]
    ),
    "Mul": _model(
        [N("Mul", ["x", "z"], ["y"])],
        [1, 3, 4, 4],
        [1, 3, 4, 4],
        extra_inputs=[("z", [1, 1, 4, 4])],
    ),
    "Sum": _model(
        [N("Sum", ["x", "z", "c"], ["y"])],
        [1, 3, 4, 4],
        [1, 3, 4, 4],
        [_const("c", (3, 1, 1))],
        extra_inputs=[("z", [1, 1, 4, 4])],
    ),
    "MaxPool": _model(
        [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        [1, 3, 9, 9],
        [1, 3, 5, 5],
    ),
    "AveragePool": _model(
        [
            N(
                "AveragePool",
                ["x"],
                ["y"],
                kernel_shape=[2, 3],
                strides=[2, 2],
                pads=[0, 1, 0, 1],
                count_include_pad=0,
            )
        ],
        [1, 3, 8, 9],
        [1, 3, 4, 5],
    ),
    "GlobalAveragePool": _model([N("GlobalAveragePool", ["x"], ["y"])], [1, 5, 6, 7], [1, 5, 1, 1]),
    "Reshape": _model(
        [N("Conv", ["x", "w"], ["t"]), N("Reshape", ["t", "s"], ["y"])],
        [1, 2, 3, 3],
        [1, 36],
        [_const("w", (4, 2, 1, 1)), numpy_helper.from_array(np.array([1, -1]), "s")],
    ),
    "Flatten": _model(
        [N("Flatten", ["x"], ["t"]), N("Gemm", ["t", "w"], ["y"])],
        [1, 2, 3, 3],
        [1, 5],
        [_const("w", (18, 5))],
    ),
    "Transpose": _model(
        [N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [1, 3, 4, 5], [1, 4, 5, 3]
    ),
    "Squeeze": _model(
        [N("Squeeze", ["x", "ax"], ["t"]), N("Relu", ["t"], ["y"])],
        [1, 3, 1, 5],
        [1, 3, 5],
        [numpy_helper.from_array(np.array([2]), "ax")],
    ),
    "Unsqueeze": _model(
        [N("Unsqueeze", ["x", "ax"], ["t"]), N("Relu", ["t"], ["y"])],
        [1, 3, 5],
        [1, 3, 1, 5],
        [numpy_helper.from_array(np.array([2]), "ax")],
    ),
    "Softmax": _model([N("Softmax", ["x"], ["y"], axis=1)], [1, 10], [1, 10]),
    "Concat": _model(
        [N("Relu", ["x"], ["a"]), N("Concat", ["a", "x"], ["y"], axis=1)],
        [1, 3, 4, 4],
        [1, 6, 4, 4],
    ),
    "Pad": _model(
        [N("Pad", ["x", "p", "v"], ["y"])],
        [1, 2, 4, 4],
        [1, 2, 6, 7],
        [
            numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 2]), "p"),
            numpy_helper.from_array(np.float32(0.25), "v"),
        ],
    ),
    "Identity": _model([N("Identity", ["x"], ["t"]), N("Relu", ["t"], ["y"])], [1, 4], [1, 4]),
    "Dropout": _model([N("Dropout", ["x"], ["t"]), N("Relu", ["t"], ["y"])], [1, 4], [1, 4]),
    "Sub": _model([N("Sub", ["x", "z"], ["y"])], [1, 3, 4], [1, 3, 4], extra_inputs=[("z", [4])]),
    "Sigmoid": _model([N("Sigmoid", ["x"], ["y"])], [1, 3, 7], [1, 3, 7]),
    "Tanh": _model([N("Tanh", ["x"], ["y"])], [2, 5, 3], [2, 5, 3]),
    "HardSigmoid": _model([N("HardSigmoid", ["x"], ["y"], alpha=0.3, beta=0.4)], [1, 20], [1, 20]),
    "HardSwish": _model([N("HardSwish", ["x"], ["y"])], [1, 4, 5], [1, 4, 5], opset=14),
    "Sqrt": _model([N("Mul", ["x", "x"], ["t"]), N("Sqrt", ["t"], ["y"])], [1, 6], [1, 6]),
    "Slice": _model(
        [N("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
        [1, 4, 6, 8],
        [1, 2, 3, 3],
        [numpy_helper.from_array(np.array(v), n) for n, v in
         (("st", [1, -1, 1]), ("en", [3, -100, 8]), ("ax", [1, 2, 3]), ("sp", [1, -2, 3]))],
    ),
    "Split": _model(
        [N("Split", ["x", "sp"], ["a", "b"], axis=2), N("Concat", ["b", "a"], ["y"], axis=2)],
        [1, 3, 7],
        [1, 3, 7],
        [numpy_helper.from_array(np.array([3, 4]), "sp")],
    ),
    "Gather": _model(
        [N("Gather", ["x", "i"], ["y"], axis=1)],
        [2, 6, 3],
        [2, 2, 2, 3],
        [numpy_helper.from_array(np.array([[5, 0], [2, -1]]), "i")],
    ),
    "ReduceMean": _model(
        [N("ReduceMean", ["x"], ["y"], axes=[1, 3], keepdims=0)], [2, 3, 4, 5], [2, 4]
    ),
    "Resize": _model(
        [N("Resize", ["x", "", "sc"], ["y"], mode="nearest")],
        [1, 2, 3, 4],
        [1, 2, 6, 8],
        [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")],
    ),
    "Pow": _model(
        [N("Mul", ["x", "x"], ["t"]), N("Pow", ["t", "e"], ["y"])],
        [1, 8],
        [1, 8],
        [numpy_helper.from_array(np.float32(0.75), "e")],
    ),
    "Pow-square": _model(
        [N("Pow", ["x", "e"], ["y"])], [1, 8], [1, 8],
        [numpy_helper.from_array(np.float32(2.0), "e")],
    ),
    "LRN": _model(
        [N("LRN", ["x"], ["y"], size=3, alpha=0.5, beta=0.75, bias=2.0)], [2, 6, 4, 3],
        [2, 6, 4, 3],
    ),
    "Cast": _model([N("Cast", ["x"], ["t"], to=1), N("Relu", ["t"], ["y"])], [1, 5], [1, 5]),
    "Pad-reflect": _model(
        [N("Pad", ["x", "p"], ["y"], mode="reflect")],
        [1, 2, 4, 5],
        [1, 2, 7, 6],
        [numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 2, 1]), "p")],
    ),
    "Pad-edge": _model(
        [N("Pad", ["x", "p"], ["y"], mode="edge")],
        [1, 3, 5],
        [1, 3, 9],
        [numpy_helper.from_array(np.array([0, 0, 3, 0, 0, 1]), "p")],
    ),
    "MatMul-batched": _model(
        [N("MatMul", ["x", "w"], ["y"])], [2, 3, 5], [2, 3, 4], [_const("w", (2, 5, 4))]
    ),
    "LSTM": _model(
        [N("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y"], hidden_size=6,
           direction="bidirectional")],
        [5, 1, 4],
        [5, 2, 1, 6],
        [_const("W", (2, 24, 4)), _const("R", (2, 24, 6)), _const("B", (2, 48)),
         _const("h0", (2, 1, 6)), _const("c0", (2, 1, 6))],
    ),
    "GRU": _model(
        [N("GRU", ["x", "W", "R", "B"], ["y"], hidden_size=6, linear_before_reset=1)],
        [5, 1, 4],
        [5, 1, 1, 6],
        [_const("W", (1, 18, 4)), _const("R", (1, 18, 6)), _const("B", (1, 36))],
    ),
    "LayerNormalization": _model(
        [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)],
        [1, 6, 16], [1, 6, 16], [_const("s", (16,)), _const("b", (16,))], opset=17,
    ),
    "Div": _model(
        [N("Div", ["x", "d"], ["y"])], [1, 3, 5], [1, 3, 5],
        [numpy_helper.from_array(np.array([0.5, -2.0, 4.0, 1.5, 3.0], np.float32), "d")],
    ),
}
# Comparisons and logic, each feeding a Where whose output is continuous across the decision
# (max(x, t) and the like), so a decision int8 flips near a threshold costs one rounding step.
_T = np.array([0.3, -0.2, 0.5, 0.0, 0.1], np.float32)
_LOGIC = [numpy_helper.from_array(_T, "t"), numpy_helper.from_array(_T - 0.5, "t2"),
          numpy_helper.from_array(np.float32(0.0), "zero")]  # fmt: skip


def _select(cond_nodes, then="x", other="t"):
    return _model([*cond_nodes, N("Where", ["c", then, other], ["y"])], [1, 4, 5], [1, 4, 5],
                  _LOGIC)  # fmt: skip


for _op in ("Greater", "GreaterOrEqual", "Less", "LessOrEqual"):
    CASES[_op] = _select([N(_op, ["x", "t"], ["c"])])  # max(x, t) / min(x, t)
CASES["Equal"] = _select([N("Relu", ["x"], ["r"]), N("Equal", ["r", "zero"], ["c"])], "t", "x")
CASES["Not"] = _select([N("LessOrEqual", ["x", "t"], ["le"]), N("Not", ["le"], ["c"])])
CASES["And"] = _select([N("Greater", ["x", "t"], ["a"]), N("Greater", ["x", "t2"], ["b"]),
                        N("And", ["a", "b"], ["c"])])  # fmt: skip
CASES["Or"] = _select([N("Greater", ["x", "t"], ["a"]), N("Greater", ["x", "t2"], ["b"]),
                       N("Or", ["a", "b"], ["c"])], "x", "t2")  # fmt: skip
CASES["Where-scalar"] = _select([N("Greater", ["x", "zero"], ["c"])], "x", "zero")


def test_cases_cover_exactly_the_supported_ops():
    # the function-unit ops added with the table kind have their cases in test_ops_funcs.py
    names = [*CASES, *FUNC_CASES]
    assert {name.split("-")[0] for name in names} == set(SUPPORTED_OPS)


def _inputs(graph):
    rng = np.random.default_rng(3)
    return {n: rng.standard_normal(graph.tensors[n].shape).astype(np.float32) for n in graph.inputs}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_float_datapath_matches_onnxruntime(case):
    model = CASES[case]
    hw = load_preset("generic").with_(macro_rows=16, macro_cols=8)  # force folding
    graph = load_model(model)
    program = lower(graph, hw)
    x = _inputs(graph)
    ref = onnxruntime_outputs(model, x)["y"]
    got = read_value(program, run(program, hw, bind(program, None), x), "y", None)
    np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_integer_datapath_is_close_to_onnxruntime(case):
    model = CASES[case]
    hw = load_preset("generic").with_(macro_rows=16, macro_cols=8)
    graph = load_model(model)
    program = lower(graph, hw)
    x = _inputs(graph)
    plan = calibrate(program, hw, [x])
    ref = onnxruntime_outputs(model, x)["y"]
    got = read_value(program, run(program, hw, bind(program, plan), x, plan), "y", plan)
    err = np.sum((got.reshape(ref.shape) - ref) ** 2)
    sqnr = 10 * np.log10(np.sum(ref**2) / max(err, 1e-30))
    assert sqnr > 25, f"{case}: SQNR {sqnr:.1f} dB"
