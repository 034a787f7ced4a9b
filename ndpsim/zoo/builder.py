"""A tiny layer-by-layer builder of NCHW float32 ONNX graphs with seeded random weights.

The builder tracks every tensor's shape itself (it needs them to compute SAME padding and
global pooling windows), emits plain ONNX ops only (no auto_pad, no Reshape shape
initializers) and finishes with the checker and shape inference, so the files it makes
load in any onnxruntime that understands opset 13 / IR version 8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET_VERSION = 13
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
    layer sequence and seed.
    """

    def __init__(self, name: str, input_shape: Sequence[int], seed: int = 0) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.input = Tensor("input", tuple(int(d) for d in input_shape))
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}
        self._relu6_bounds: tuple[str, str] | None = None

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
        weight = self.rng.normal(0.0, scale * math.sqrt(2.0 / fan_in), size=shape)
        bias = self.rng.uniform(-BIAS_RANGE, BIAS_RANGE, size=(shape[0],))
        return self._init(f"{name}.weight", weight), self._init(f"{name}.bias", bias)

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
    ) -> Tensor:
        """Conv with bias (BatchNorm already folded in); ``relu`` appends a Relu node.

        ``padding`` is "same" (TensorFlow convention), "valid", or explicit ONNX pads.
        ``weight_scale`` multiplies the He std (used to damp deep residual branches).
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

    # -- pooling and reshaping --------------------------------------------------------
    def _pool(
        self,
        op: str,
        x: Tensor,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] | None,
        padding: str | Pads,
    ) -> Tensor:
        n, c, h, w = x.shape
        k_hw = _pair(kernel)
        s_hw = k_hw if stride is None else _pair(stride)
        pads = _resolve_pads(padding, (h, w), k_hw, s_hw)
        out_h = _window_out(h, k_hw[0], s_hw[0], pads[0] + pads[2])
        out_w = _window_out(w, k_hw[1], s_hw[1], pads[1] + pads[3])
        return self._node(
            op,
            [x.name],
            (n, c, out_h, out_w),
            kernel_shape=list(k_hw),
            strides=list(s_hw),
            pads=list(pads),
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
    ) -> Tensor:
        """MaxPool; stride defaults to the kernel."""
        return self._pool("MaxPool", x, kernel, stride, padding)

    def global_avgpool(self, x: Tensor) -> Tensor:
        """GlobalAveragePool to N x C x 1 x 1."""
        return self._node("GlobalAveragePool", [x.name], (*x.shape[:2], 1, 1))

    def flatten(self, x: Tensor) -> Tensor:
        """Flatten to N x rest (no shape initializer, unlike Reshape)."""
        return self._node("Flatten", [x.name], (x.shape[0], math.prod(x.shape[1:])), axis=1)

    # -- finishing --------------------------------------------------------------------
    def build(self, output: Tensor) -> onnx.ModelProto:
        """Name ``output`` "output", check the model and return it with shapes inferred."""
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
            opset_imports=[helper.make_opsetid("", OPSET_VERSION)],
        )
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
        return model
