"""A tiny layer-by-layer builder of NCHW float32 ONNX graphs with seeded random weights.

The builder tracks every tensor's shape itself (it needs them to compute SAME padding and
global pooling windows), emits plain ONNX ops only (no auto_pad; shape operands of Reshape,
Squeeze and Gather are Constant nodes, as PyTorch exports them, so the initializers are the
learned parameters and the two ReLU6 bounds) and finishes with the checker and shape
inference, so the files it makes load in any onnxruntime that understands opset 13 (14 once
a HardSwish is used) / IR version 8.

It also counts as it goes: learned parameters, multiply-accumulates of Conv / Gemm / LSTM /
GRU (the convention of `ndpsim.zoo.stats`) and the channels of folded BatchNorms. With
``materialize=False`` it draws no weights and only counts, which is how
`ndpsim.zoo.families.network_stats` sizes a network without building it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET_VERSION = 13
# HardSwish entered the standard opset in version 14.
HARDSWISH_OPSET = 14
# IR 8 is what onnx 1.10-1.12 write; older onnxruntime builds refuse newer IR versions.
IR_VERSION = 8
# Biases are drawn uniformly in +-BIAS_RANGE: small enough not to swamp the He-scaled
# weighted sums, non-zero so a bias path is exercised by every consumer.
BIAS_RANGE = 0.05

Pads = tuple[int, int, int, int]  # ONNX order: (top, left, bottom, right)


@dataclass(frozen=True)
class Tensor:
    """A named value of the graph under construction and its (static) shape."""

    name: str
    shape: tuple[int, ...]


def same_pads(in_hw: Sequence[int], kernel_hw: Sequence[int], stride_hw: Sequence[int]) -> Pads:
    """TensorFlow SAME padding as explicit ONNX pads: the odd extra pixel goes at the end."""
    begin, end = [], []
    for size, k, s in zip(in_hw, kernel_hw, stride_hw, strict=True):
        out = math.ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return (begin[0], begin[1], end[0], end[1])


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


def _resolve_pads(
    padding: str | Pads, in_hw: Sequence[int], kernel_hw: Sequence[int], stride_hw: Sequence[int]
) -> Pads:
    if padding == "same":
        return same_pads(in_hw, kernel_hw, stride_hw)
    if padding == "valid":
        return (0, 0, 0, 0)
    if isinstance(padding, str) or len(padding) != 4:
        raise ValueError(f"padding must be 'same', 'valid' or 4 ONNX pads, got {padding!r}")
    top, left, bottom, right = padding
    return (top, left, bottom, right)


def _window_out(size: int, k: int, s: int, pad_total: int) -> int:
    return (size + pad_total - k) // s + 1


class GraphBuilder:
    """Builds a single-input single-output NCHW float32 model one layer at a time.

    Every method takes input tensors, appends nodes (and initializers) and returns the
    output tensor. Weights are He-normal (std = sqrt(2 / fan_in)) drawn from
    ``numpy.random.default_rng(seed)`` in call order, so a model is a pure function of its
    layer sequence and seed. ``materialize=False`` draws nothing and only counts (`stats`).
    """

    def __init__(
        self, name: str, input_shape: Sequence[int], seed: int = 0, materialize: bool = True
    ) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.materialize = materialize
        self.input = Tensor("input", tuple(int(d) for d in input_shape))
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}
        self._relu6_bounds: tuple[str, str] | None = None
        self.opset = OPSET_VERSION
        self.params = 0  # learned parameters (weights and biases, BatchNorm folded)
        self.macs = 0
        self.bn_channels = 0  # channels of the BatchNorms folded into conv biases
        self.recurrent_steps = 0  # sequential LSTM / GRU steps (per layer and direction)

    # -- plumbing ---------------------------------------------------------------------
    def _fresh(self, op: str) -> str:
        index = self._counts.get(op, 0)
        self._counts[op] = index + 1
        return f"{op.lower()}_{index}"

    def _node(
        self, op: str, inputs: Sequence[str], shape: Sequence[int], **attrs: object
    ) -> Tensor:
        name = self._fresh(op)
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return Tensor(name, tuple(int(d) for d in shape))

    def _init(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def _weights(
        self, name: str, shape: tuple[int, ...], fan_in: int, scale: float = 1.0
    ) -> tuple[str, str]:
        self.params += math.prod(shape) + shape[0]
        w_name, b_name = f"{name}.weight", f"{name}.bias"
        if self.materialize:
            weight = self.rng.normal(0.0, scale * math.sqrt(2.0 / fan_in), size=shape)
            bias = self.rng.uniform(-BIAS_RANGE, BIAS_RANGE, size=(shape[0],))
            self._init(w_name, weight)
            self._init(b_name, bias)
        return w_name, b_name

    def constant(self, value: Sequence[int] | int) -> str:
        """An int64 Constant node (a shape, axes or an index), as PyTorch exports them."""
        name = self._fresh("Constant")
        tensor = numpy_helper.from_array(np.array(value, np.int64), f"{name}.value")
        self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=tensor))
        return name

    # -- layers with weights ----------------------------------------------------------
    def conv(
        self,
        x: Tensor,
        out_channels: int,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        group: int = 1,
        padding: str | Pads = "same",
        relu: bool = False,
        weight_scale: float = 1.0,
        bn: bool = True,
    ) -> Tensor:
        """Conv with bias (BatchNorm already folded in); ``relu`` appends a Relu node.

        ``padding`` is "same" (TensorFlow convention), "valid", or explicit ONNX pads.
        ``weight_scale`` multiplies the He std (used to damp deep residual branches).
        ``bn`` says whether the source network has a BatchNorm here (counted in `stats`);
        False for convs with their own bias (SqueezeNet, squeeze-excite).
        """
        n, c_in, h, w = x.shape
        if c_in % group or out_channels % group:
            raise ValueError(
                f"conv: channels {c_in}->{out_channels} not divisible by group {group}"
            )
        k_hw, s_hw = _pair(kernel), _pair(stride)
        pads = _resolve_pads(padding, (h, w), k_hw, s_hw)
        out_h = _window_out(h, k_hw[0], s_hw[0], pads[0] + pads[2])
        out_w = _window_out(w, k_hw[1], s_hw[1], pads[1] + pads[3])
        name = self._fresh("Conv")
        c_per_group = c_in // group
        w_name, b_name = self._weights(
            name,
            (out_channels, c_per_group, *k_hw),
            fan_in=c_per_group * k_hw[0] * k_hw[1],
            scale=weight_scale,
        )
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x.name, w_name, b_name],
                [name],
                name=name,
                kernel_shape=list(k_hw),
                strides=list(s_hw),
                pads=list(pads),
                group=group,
            )
        )
        y = Tensor(name, (n, out_channels, out_h, out_w))
        self.macs += math.prod(y.shape) * c_per_group * k_hw[0] * k_hw[1]
        self.bn_channels += out_channels if bn else 0
        return self.relu(y) if relu else y

    def depthwise(
        self,
        x: Tensor,
        kernel: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: str | Pads = "same",
        relu: bool = False,
    ) -> Tensor:
        """Depthwise conv: a Conv with group = channels and one filter per channel."""
        channels = x.shape[1]
        return self.conv(x, channels, kernel, stride, group=channels, padding=padding, relu=relu)

    def gemm(self, x: Tensor, out_features: int, relu: bool = False) -> Tensor:
        """Fully connected layer: Gemm with weight stored (out, in) and transB=1, as TF exports."""
        n, in_features = x.shape
        name = self._fresh("Gemm")
        w_name, b_name = self._weights(name, (out_features, in_features), fan_in=in_features)
        self.nodes.append(
            helper.make_node("Gemm", [x.name, w_name, b_name], [name], name=name, transB=1)
        )
        y = Tensor(name, (n, out_features))
        self.macs += n * out_features * in_features
        return self.relu(y) if relu else y

    # -- element-wise and activations -------------------------------------------------
    def relu(self, x: Tensor) -> Tensor:
        """Rectified linear unit."""
        return self._node("Relu", [x.name], x.shape)

    def relu6(self, x: Tensor) -> Tensor:
        """ReLU6 as Clip(0, 6); the two bounds are one shared pair of scalar initializers."""
        if self._relu6_bounds is None:
            self._relu6_bounds = (
                self._init("relu6.min", np.array(0.0)),
                self._init("relu6.max", np.array(6.0)),
            )
        return self._node("Clip", [x.name, *self._relu6_bounds], x.shape)

    def sigmoid(self, x: Tensor) -> Tensor:
        """Logistic sigmoid."""
        return self._node("Sigmoid", [x.name], x.shape)

    def hardsigmoid(self, x: Tensor) -> Tensor:
        """PyTorch's hardsigmoid relu6(x + 3) / 6, exported as HardSigmoid(alpha=1/6)."""
        return self._node("HardSigmoid", [x.name], x.shape, alpha=1.0 / 6.0, beta=0.5)

    def hardswish(self, x: Tensor) -> Tensor:
        """x * relu6(x + 3) / 6: one HardSwish node (raises the model's opset to 14)."""
        self.opset = max(self.opset, HARDSWISH_OPSET)
        return self._node("HardSwish", [x.name], x.shape)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        """Element-wise product with numpy broadcasting (squeeze-excite: N,C,H,W * N,C,1,1)."""
        shape = np.broadcast_shapes(a.shape, b.shape)
        return self._node("Mul", [a.name, b.name], shape)

    def add(self, a: Tensor, b: Tensor, relu: bool = False) -> Tensor:
        """Element-wise sum of two same-shape tensors (residual join)."""
        if a.shape != b.shape:
            raise ValueError(f"add: shapes differ {a.shape} vs {b.shape}")
        y = self._node("Add", [a.name, b.name], a.shape)
        return self.relu(y) if relu else y

    def concat(self, tensors: Sequence[Tensor], axis: int = 1) -> Tensor:
        """Concatenate along ``axis`` (channels by default)."""
        shape = list(tensors[0].shape)
        shape[axis] = sum(t.shape[axis] for t in tensors)
        return self._node("Concat", [t.name for t in tensors], shape, axis=axis)

    def softmax(self, x: Tensor) -> Tensor:
        """Softmax over the last axis."""
        return self._node("Softmax", [x.name], x.shape, axis=-1)

    def split(self, x: Tensor, parts: int, axis: int = 1) -> list[Tensor]:
        """Split into ``parts`` equal pieces along ``axis`` (torch.chunk)."""
        if x.shape[axis] % parts:
            raise ValueError(f"split: {x.shape[axis]} not divisible into {parts} parts")
        name = self._fresh("Split")
        outs = [f"{name}_{i}" for i in range(parts)]
        self.nodes.append(helper.make_node("Split", [x.name], outs, name=name, axis=axis))
        shape = list(x.shape)
        shape[axis] //= parts
        return [Tensor(o, tuple(shape)) for o in outs]

    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        """Reshape to a static ``shape`` (no 0 or -1 entries; its product must match)."""
        if math.prod(shape) != math.prod(x.shape) or min(shape) < 1:
            raise ValueError(f"reshape: {x.shape} cannot become {tuple(shape)}")
        return self._node("Reshape", [x.name, self.constant(list(shape))], shape)

    def transpose(self, x: Tensor, perm: Sequence[int]) -> Tensor:
        """Permute the axes."""
        shape = tuple(x.shape[p] for p in perm)
        return self._node("Transpose", [x.name], shape, perm=list(perm))

    def squeeze(self, x: Tensor, axis: int) -> Tensor:
        """Drop one axis of size 1 (opset 13: the axes are an input)."""
        if x.shape[axis] != 1:
            raise ValueError(f"squeeze: axis {axis} of {x.shape} is not 1")
        shape = x.shape[:axis] + x.shape[axis + 1 :]
        return self._node("Squeeze", [x.name, self.constant([axis])], shape)

    def gather(self, x: Tensor, index: int, axis: int) -> Tensor:
        """x[..., index, ...] along ``axis`` with a scalar index (the axis disappears)."""
        shape = x.shape[:axis] + x.shape[axis + 1 :]
        return self._node("Gather", [x.name, self.constant(index)], shape, axis=axis)

    # -- pooling and reshaping --------------------------------------------------------
    def _pool(
        self,
        op: str,
        x: Tensor,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] | None,
        padding: str | Pads,
        ceil_mode: bool = False,
    ) -> Tensor:
        n, c, h, w = x.shape
        k_hw = _pair(kernel)
        s_hw = k_hw if stride is None else _pair(stride)
        pads = _resolve_pads(padding, (h, w), k_hw, s_hw)
        out_hw = []
        for size, k, s, begin, end in zip((h, w), k_hw, s_hw, pads[:2], pads[2:], strict=True):
            out = _window_out(size, k, s, begin + end)
            # ceil_mode (torch, ONNX): one more window if it would start inside the input
            if ceil_mode and (size + begin + end - k) % s and out * s < size + begin:
                out += 1
            out_hw.append(out)
        attrs = {"ceil_mode": 1} if ceil_mode else {}
        return self._node(
            op,
            [x.name],
            (n, c, *out_hw),
            kernel_shape=list(k_hw),
            strides=list(s_hw),
            pads=list(pads),
            **attrs,
        )

    def avgpool(
        self,
        x: Tensor,
        kernel: int | Sequence[int] | None = None,
        stride: int | Sequence[int] | None = None,
        padding: str | Pads = "valid",
    ) -> Tensor:
        """AveragePool; kernel defaults to the whole feature map, stride to the kernel."""
        return self._pool("AveragePool", x, kernel or x.shape[2:], stride, padding)

    def maxpool(
        self,
        x: Tensor,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: str | Pads = "valid",
        ceil_mode: bool = False,
    ) -> Tensor:
        """MaxPool; stride defaults to the kernel; ``ceil_mode`` as torch's MaxPool2d."""
        return self._pool("MaxPool", x, kernel, stride, padding, ceil_mode)

    def global_avgpool(self, x: Tensor) -> Tensor:
        """GlobalAveragePool to N x C x 1 x 1."""
        return self._node("GlobalAveragePool", [x.name], (*x.shape[:2], 1, 1))

    def flatten(self, x: Tensor) -> Tensor:
        """Flatten to N x rest (no shape operand, unlike Reshape)."""
        return self._node("Flatten", [x.name], (x.shape[0], math.prod(x.shape[1:])), axis=1)

    def spatial_mean(self, x: Tensor) -> Tensor:
        """x.mean([2, 3]) as PyTorch exports it: ReduceMean over H, W to N x C."""
        return self._node("ReduceMean", [x.name], x.shape[:2], axes=[2, 3], keepdims=0)

    # -- recurrent layers -------------------------------------------------------------
    def recurrent(self, x: Tensor, op: str, hidden: int, bidirectional: bool = False) -> Tensor:
        """One LSTM or GRU layer over a [seq, 1, features] input, as torch.onnx exports
        nn.LSTM / nn.GRU: W, R and both biases B as initializers (PyTorch's default
        uniform(+-1/sqrt(hidden)) init), GRU with linear_before_reset=1, no initial state
        (zeros). Returns Y, shaped [seq, directions, 1, hidden]."""
        gates = {"LSTM": 4, "GRU": 3}.get(op)
        if gates is None:
            raise ValueError(f"recurrent: op must be LSTM or GRU, got {op!r}")
        seq, batch, features = x.shape
        dirs = 2 if bidirectional else 1
        shapes = {
            "W": (dirs, gates * hidden, features),
            "R": (dirs, gates * hidden, hidden),
            "B": (dirs, 2 * gates * hidden),
        }
        name = self._fresh(op)
        inputs = [x.name]
        for key, shape in shapes.items():
            self.params += math.prod(shape)
            inputs.append(f"{name}.{key}")
            if self.materialize:
                bound = 1.0 / math.sqrt(hidden)
                self._init(inputs[-1], self.rng.uniform(-bound, bound, size=shape))
        # per step and direction: every gate's dot products over input and hidden state
        self.macs += seq * batch * dirs * gates * hidden * (features + hidden)
        self.recurrent_steps += seq * dirs
        attrs: dict[str, object] = {"hidden_size": hidden}
        if bidirectional:
            attrs["direction"] = "bidirectional"
        if op == "GRU":
            attrs["linear_before_reset"] = 1
        y, y_h = f"{name}_y", f"{name}_h"
        self.nodes.append(helper.make_node(op, inputs, [y, y_h], name=name, **attrs))
        return Tensor(y, (seq, dirs, batch, hidden))

    # -- counting ---------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """What was counted so far: learned params (BatchNorm folded), params as the
        unfolded training-time network reports them (+gamma, beta, -bias per BatchNorm
        channel: PyTorch's and Keras' trainable count), multiply-accumulates and the
        recurrent steps (sequence length x directions, summed over LSTM / GRU layers)."""
        return {
            "params": self.params,
            "params_with_bn": self.params + self.bn_channels,
            "macs": self.macs,
            "recurrent_steps": self.recurrent_steps,
        }

    # -- finishing --------------------------------------------------------------------
    def build(self, output: Tensor) -> onnx.ModelProto:
        """Name ``output`` "output", check the model and return it with shapes inferred."""
        if not self.materialize:
            raise ValueError("build: this builder only counts (materialize=False)")
        for node in self.nodes:
            node.input[:] = ["output" if i == output.name else i for i in node.input]
            node.output[:] = ["output" if o == output.name else o for o in node.output]
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input.shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, output.shape)],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            producer_name="ndpsim.zoo",
            ir_version=IR_VERSION,
            opset_imports=[helper.make_opsetid("", self.opset)],
        )
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
        return model
