"""Static control flow: inputs fixed with input_values / --input-value, and If nodes whose
condition is known at import (constants, static shapes) replaced by the branch they take;
an If on run-time data is refused by name."""

from __future__ import annotations

import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

import ndpsim
from ndpsim.api import SimOptions
from ndpsim.errors import ModelError
from ndpsim.frontend import load_model
from ndpsim.lower.registry import SUPPORTED_OPS

pytest.importorskip("onnxruntime")
N = helper.make_node


def _branch(name: str, op: str) -> onnx.GraphProto:
    out = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 4])
    return helper.make_graph([N(op, ["x"], [f"{name}_y"])], name, [], [out])


def _model(nested: bool = False) -> onnx.ModelProto:
    """y = If(sr == 16000, Relu(x), Hardmax(x)); nested: the then branch is itself an If on
    Shape(x)[0] == 1 (static once x's shape is)."""
    then = _branch("t", "Relu")
    if nested:
        inner = [
            N("Shape", ["x"], ["s"]),
            N("Gather", ["s", "zero"], ["s0"], axis=0),
            N("Equal", ["s0", "one"], ["c1"]),
            N("If", ["c1"], ["t_y"], then_branch=_branch("tt", "Sigmoid"),
              else_branch=_branch("te", "Hardmax")),
        ]  # fmt: skip
        then = helper.make_graph(inner, "t", [], [helper.make_tensor_value_info(
            "t_y", TensorProto.FLOAT, [1, 4])])  # fmt: skip
    g = helper.make_graph(
        [N("Equal", ["sr", "k"], ["c"]),
         N("If", ["c"], ["y"], then_branch=then, else_branch=_branch("e", "Hardmax"))],
        "ctl",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("k", TensorProto.INT64, [], [16000]),
         helper.make_tensor("zero", TensorProto.INT64, [], [0]),
         helper.make_tensor("one", TensorProto.INT64, [], [1])],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_if_on_a_fixed_input_takes_its_branch(nested):
    model = _model(nested)
    g = load_model(model, input_shapes={"x": (1, 4)}, input_values={"sr": (16000,)})
    # the branch's op, wired to y by Identities (removed by the lowering's first pass)
    assert [n.op_type for n in g.nodes if n.op_type != "Identity"] == [
        "Sigmoid" if nested else "Relu"
    ]
    assert g.inputs == ("x",)
    opts = SimOptions(input_shapes={"x": (1, 4)}, input_values={"sr": (16000,)})
    report = ndpsim.simulate(model.SerializeToString(), "generic", opts)
    (row,) = report.agreement
    assert row.reference == "onnxruntime" and row.sqnr_db > 30  # onnxruntime fed sr too


def test_the_other_branch_is_refused_by_its_op():
    # sr = 8000 takes the else branch: Hardmax, which ndpsim does not lower
    with pytest.raises(ModelError, match="unsupported op 'Hardmax'"):
        load_model(_model(), input_shapes={"x": (1, 4)}, input_values={"sr": (8000,)},
                   supported=SUPPORTED_OPS)  # fmt: skip


def test_if_on_run_time_data_is_refused_by_name():
    with pytest.raises(ModelError, match=r"If .*condition 'c' depends on run-time data.*"
                                         r"--input-value"):  # fmt: skip
        load_model(_model(), input_shapes={"x": (1, 4)})


@pytest.mark.parametrize(("values", "needle"), [
    ({"rate": (1,)}, "not an input of the model"),
    ({"sr": (1, 2)}, "has 2 values"),
])  # fmt: skip
def test_bad_input_values(values, needle):
    with pytest.raises(ModelError, match=needle):
        load_model(_model(), input_shapes={"x": (1, 4)}, input_values=values)


def test_cli_input_value(tmp_path):
    path = tmp_path / "ctl.onnx"
    path.write_bytes(_model().SerializeToString())
    base = [sys.executable, "-m", "ndpsim", "simulate", str(path), "--input-shape", "x=1x4"]
    ok = subprocess.run([*base, "--input-value", "sr=16000"], capture_output=True, text=True,
                        timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*base, "--input-value", "sr"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--input-value expects" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
