"""An AmNet-style keyword encoder: an arbitrator picks, hop by hop, a full or a low-rank branch.

Branching encoders (Amazon's amortized networks for on-device speech: "Learning to Dynamically
Select Between Branches", Xie et al., and the seed article) save compute on easy frames: a small
arbitrator scores the frame and an `If` runs the full encoder only when the score says so.

    input [1, 40, 8]  (40 log-mel features x the hop's 8 frames) -> flatten [1, 320]
    shared      h = Relu(Gemm 320 -> 128)
    arbitrator  s = Sigmoid(Gemm 16 -> 1 (Relu(Gemm 128 -> 16 (h))));  c = s > 0.5
    If c        full:      Relu(Gemm 256 -> 128 (Relu(Gemm 128 -> 256 (h))))
                low-rank:  Relu(Gemm 16 -> 128 (Gemm 128 -> 16 (h)))
    head        Softmax(Gemm 128 -> 12)

The full branch has 65,536 MACs, the low-rank one 4,096. Weights are He-normal, biases
uniform in ±0.05, seeded; with seed 0 random inputs take either branch (the full one on 73
of 200 seeded standard-normal inputs in onnxruntime; models/amnet_kws.onnx, tests/test_amnet.py).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FEATURES, FRAMES, CLASSES, HIDDEN = 40, 8, 12, 128
OPSET = 13


class _Net:
    """Collects initializers; each `gemm` draws its weights in call order."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.inits: list[onnx.TensorProto] = []

    def gemm(self, nodes: list, x: str, k: int, n: int, name: str, relu: bool,
             out: str = "") -> str:  # fmt: skip
        """x [1, k] -> [1, n] (Gemm, then Relu if asked); returns the output's name."""
        w = self.rng.normal(0, math.sqrt(2.0 / k), (n, k)).astype(np.float32)
        b = self.rng.uniform(-0.05, 0.05, n).astype(np.float32)
        self.inits += [numpy_helper.from_array(w, f"{name}.weight"),
                       numpy_helper.from_array(b, f"{name}.bias")]  # fmt: skip
        y = out or f"{name}_out"
        lin = f"{name}_lin" if relu else y
        nodes.append(helper.make_node("Gemm", [x, f"{name}.weight", f"{name}.bias"], [lin],
                                      name=name, transB=1))  # fmt: skip
        if relu:
            nodes.append(helper.make_node("Relu", [lin], [y], name=f"{name}_relu"))
        return y


def _branch(net: _Net, name: str, width: int, first_relu: bool) -> onnx.GraphProto:
    """h [1, 128] -> width -> [1, 128] (Relu at the end), output `enc`."""
    nodes: list = []
    z = net.gemm(nodes, "h", HIDDEN, width, f"{name}1", first_relu)
    net.gemm(nodes, z, width, HIDDEN, f"{name}2", True, out="enc")
    return helper.make_graph(nodes, name, [],
                             [helper.make_tensor_value_info("enc", TensorProto.FLOAT,
                                                            [1, HIDDEN])])  # fmt: skip


def amnet_kws(seed: int = 0) -> onnx.ModelProto:
    """The model (module docstring), seeded weights."""
    net = _Net(seed)
    nodes = [helper.make_node("Flatten", ["input"], ["x"], name="flatten")]
    net.gemm(nodes, "x", FEATURES * FRAMES, HIDDEN, "shared", True, out="h")
    a = net.gemm(nodes, "h", HIDDEN, 16, "arb1", True)
    s = net.gemm(nodes, a, 16, 1, "arb2", False)
    nodes.append(helper.make_node("Sigmoid", [s], ["score"], name="score"))
    threshold = numpy_helper.from_array(np.array(0.5, np.float32), "threshold")
    nodes.append(helper.make_node("Greater", ["score", "threshold"], ["full"], name="arbitrate"))
    nodes.append(helper.make_node("If", ["full"], ["encoded"], name="encoder",
                                  then_branch=_branch(net, "full", 256, True),
                                  else_branch=_branch(net, "lowrank", 16, False)))  # fmt: skip
    logits = net.gemm(nodes, "encoded", HIDDEN, CLASSES, "head", False)
    nodes.append(helper.make_node("Softmax", [logits], ["output"], name="softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "amnet_kws",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, FEATURES, FRAMES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, CLASSES])],
        [*net.inits, threshold],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
