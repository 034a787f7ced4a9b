"""Comparisons, logic and Where on the vector unit (ndpsim/lower/vector_logic.py) against
onnxruntime, in a model with broadcasting, on the float datapath (exact) and int8 PTQ (the
comparisons compare real values: a decision differs only within a quantization step)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ndpsim.config import load_preset
from ndpsim.options import SimOptions
from ndpsim.session import Session

ort = pytest.importorskip("onnxruntime")
CMP = ("Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual")


def _model() -> onnx.ModelProto:
    """x [1, 4, 6], y [1, 1, 6] (broadcast), a constant threshold; every comparison of x and
    y, Not / And / Or of them, and Where selecting x or 2 y (broadcast) by x > 0.25."""
    f = TensorProto.FLOAT
    nodes = [helper.make_node(op, ["x", "y"], [op.lower()], name=op) for op in CMP]
    nodes += [
        helper.make_node("Mul", ["y", "two"], ["y2"], name="double"),
        helper.make_node("Not", ["greater"], ["not"], name="Not"),
        helper.make_node("And", ["greater", "lessorequal"], ["and"], name="And"),
        helper.make_node("Or", ["less", "equal"], ["or"], name="Or"),
        helper.make_node("Greater", ["x", "threshold"], ["hot"], name="hot"),
        helper.make_node("Where", ["hot", "x", "y2"], ["where"], name="Where"),
    ]
    outs = [o.lower() for o in CMP] + ["not", "and", "or", "hot"]
    graph = helper.make_graph(
        nodes, "logic",
        [helper.make_tensor_value_info("x", f, [1, 4, 6]),
         helper.make_tensor_value_info("y", f, [1, 1, 6])],
        [helper.make_tensor_value_info(o, TensorProto.BOOL, [1, 4, 6]) for o in outs]
        + [helper.make_tensor_value_info("where", f, [1, 4, 6])],
        [numpy_helper.from_array(np.array(0.25, np.float32), "threshold"),
         numpy_helper.from_array(np.array(2.0, np.float32), "two")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 4, 6)).astype(np.float32)
    y = (rng.standard_normal((1, 1, 6)) * 0.5).astype(np.float32)
    x[0, 1] = y[0, 0]  # a row equal to y: Equal, GreaterOrEqual and LessOrEqual hold there
    return {"x": x, "y": y}


@pytest.fixture(scope="module")
def runs():
    model = _model()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    session = Session(model.SerializeToString())
    hw = load_preset("generic")
    out = []
    for seed in range(4):
        x = _inputs(seed)
        want = dict(zip(names, sess.run(names, x), strict=True))
        flt = session.simulate(hw, SimOptions(inputs=x, float_datapath=True)).outputs
        q8 = session.simulate(hw, SimOptions(inputs=x, calibration_samples=8)).outputs
        out.append((x, want, flt, q8))
    return out


def test_float_datapath_equals_onnxruntime(runs):
    for _, want, got, _ in runs:
        for name, w in want.items():
            np.testing.assert_array_equal(got[name].reshape(w.shape), w.astype(np.float64),
                                          err_msg=name)  # fmt: skip
        assert want["equal"].any() and not want["equal"].all()


def test_int8_compares_real_values(runs):
    """x and y sit at different int8 scales: a comparison may differ from the float one only
    where the operands are within a quantization step of each other."""
    for x, want, _, got in runs:
        step = np.abs(x["x"]).max() / 127 + np.abs(x["y"]).max() / 127
        close = np.abs(x["x"] - x["y"]) <= step  # the row equal to y, and chance neighbours
        assert close.mean() < 0.5
        for name in ("greater", "less", "not", "and", "or"):
            bad = got[name].reshape(want[name].shape) != want[name]
            assert not (bad & ~close).any(), name
        assert set(np.unique(got["greater"])) <= {0.0, 1.0}  # bools as 0 / 1
        where = got["where"].reshape(want["where"].shape)
        hot = got["hot"].reshape(want["hot"].shape).astype(bool)
        assert np.abs(where - want["where"])[hot == want["hot"]].max() < 0.05


def _run_small(nodes: list, inits: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(onnxruntime, float datapath, int8) outputs of x [1, 8, 5] -> out [1, 8, 5]."""
    f = TensorProto.FLOAT
    io = [helper.make_tensor_value_info(n, f, [1, 8, 5]) for n in ("x", "out")]
    graph = helper.make_graph(nodes, "small", io[:1], io[1:], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    x = np.random.default_rng(0).standard_normal((1, 8, 5)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    session, hw = Session(model.SerializeToString()), load_preset("generic")
    flt = session.simulate(hw, SimOptions(inputs={"x": x}, float_datapath=True))
    q8 = session.simulate(hw, SimOptions(inputs={"x": x}))
    return want, flt.outputs["out"].reshape(want.shape), q8.outputs["out"].reshape(want.shape)


@pytest.mark.parametrize("form", ["where", "mask"])
def test_masks_from_comparisons(form):
    """A leaky ReLU as Where(x > 0, x, 0.1 x) with scalar constants, and a mask x * Cast(x > 0)
    (bool -> float: a wire, 0 / 1 at scale 1)."""
    consts = [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(0.1, np.float32), "a")]  # fmt: skip
    nodes = [helper.make_node("Greater", ["x", "zero"], ["c"], name="cmp")]
    if form == "where":
        nodes += [helper.make_node("Mul", ["x", "a"], ["xa"], name="leak"),
                  helper.make_node("Where", ["c", "x", "xa"], ["out"], name="where")]  # fmt: skip
    else:
        nodes += [helper.make_node("Cast", ["c"], ["cf"], name="cast", to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["x", "cf"], ["out"], name="mask")]  # fmt: skip
    want, flt, q8 = _run_small(nodes, consts)
    np.testing.assert_array_equal(flt, want)
    assert np.abs(q8 - want).max() < 0.02  # int8 rounding of x and of the output
