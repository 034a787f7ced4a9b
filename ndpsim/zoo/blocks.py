"""Building blocks shared by the network families (`ndpsim.zoo.families`).

Each block appends the layers of one published block to a `GraphBuilder` the way the
reference implementation (torchvision, Keras, TF-slim) composes it, with BatchNorm folded
into the conv bias. Padding is either ``"torch"`` (symmetric ``(k - 1) // 2`` as PyTorch's
``padding=k // 2``) or ``"same"`` (TensorFlow SAME: the odd pixel at the end), so the
families can come out as either framework would export them.

`Family` is the record every family module registers: its spec model, a builder function
and a sampler.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ndpsim.zoo.builder import GraphBuilder, Pads, Tensor

Padding = Literal["torch", "same"]
Activation = Literal["relu", "relu6", "hswish", "none"]
# Resolutions the vision samplers favour (what papers and model zoos train at); a fifth of
# draws take any integer in VISION_RES_RANGE instead.
VISION_RESOLUTIONS = (32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224)
VISION_RES_RANGE = (32, 224)
CLASS_COUNTS = (2, 10, 12, 100, 1000)


class Spec(BaseModel):
    """Base of every family's spec: frozen, no unknown keys, JSON round-trips."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class VisionSpec(Spec):
    """Fields every image classifier has: a square RGB input and a classifier head."""

    resolution: int = Field(224, ge=16, le=320)
    num_classes: int = Field(1000, ge=1, le=1000)
    softmax: bool = False
    padding: Padding = "torch"

    def input_shape(self) -> tuple[int, ...]:
        return (1, 3, self.resolution, self.resolution)


@dataclass(frozen=True)
class Family:
    """One network family: its spec model, how to build it and how to sample a spec."""

    spec: type[Spec]
    build: Callable[[Spec, GraphBuilder], Tensor]
    sample: Callable[[np.random.Generator], Spec]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to the nearest multiple of ``divisor`` but never more than 10% below
    ``value`` (torchvision's ``_make_divisible``, Keras' rule); divisor 1 rounds to an int."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def pads(kernel: int | Sequence[int], padding: Padding) -> Pads | str:
    """The builder's padding argument for a ``kernel`` under a padding convention."""
    if padding == "same":
        return "same"
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return ((kh - 1) // 2, (kw - 1) // 2, (kh - 1) // 2, (kw - 1) // 2)


def activation(b: GraphBuilder, x: Tensor, act: Activation) -> Tensor:
    """Apply a named activation (``none`` is the identity: a linear bottleneck)."""
    if act == "relu":
        return b.relu(x)
    if act == "relu6":
        return b.relu6(x)
    if act == "hswish":
        return b.hardswish(x)
    return x


def conv_bn(
    b: GraphBuilder,
    x: Tensor,
    out_channels: int,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    groups: int = 1,
    act: Activation = "relu",
    padding: Padding = "torch",
    weight_scale: float = 1.0,
) -> Tensor:
    """Conv + (folded) BatchNorm + activation."""
    y = b.conv(x, out_channels, kernel, stride, groups, pads(kernel, padding),
               weight_scale=weight_scale)  # fmt: skip
    return activation(b, y, act)


def squeeze_excite(
    b: GraphBuilder, x: Tensor, squeeze_channels: int, gate: Literal["hsigmoid", "sigmoid"]
) -> Tensor:
    """Squeeze-and-excitation (Hu et al. 2018): global pool, 1x1 conv to
    ``squeeze_channels`` + ReLU, 1x1 conv back + gate, then x * gate broadcast over H, W.
    Both 1x1 convs have their own bias and no BatchNorm (torchvision, Keras)."""
    s = b.global_avgpool(x)
    s = b.conv(s, squeeze_channels, 1, padding="valid", relu=True, bn=False)
    s = b.conv(s, x.shape[1], 1, padding="valid", bn=False)
    s = b.hardsigmoid(s) if gate == "hsigmoid" else b.sigmoid(s)
    return b.mul(x, s)


def inverted_residual(
    b: GraphBuilder,
    x: Tensor,
    expanded: int,
    out_channels: int,
    kernel: int,
    stride: int,
    act: Activation,
    padding: Padding,
    se_channels: int = 0,
    se_gate: Literal["hsigmoid", "sigmoid"] = "hsigmoid",
) -> Tensor:
    """MBConv (MobileNetV2/V3, MnasNet, EfficientNet): 1x1 expansion (skipped when
    ``expanded`` equals the input channels), k x k depthwise, optional squeeze-excite,
    linear 1x1 projection, identity shortcut when the stride is 1 and channels agree."""
    in_channels = x.shape[1]
    y = x
    if expanded != in_channels:
        y = conv_bn(b, y, expanded, 1, act=act, padding=padding)
    y = conv_bn(b, y, expanded, kernel, stride, groups=expanded, act=act, padding=padding)
    if se_channels:
        y = squeeze_excite(b, y, se_channels, se_gate)
    residual = stride == 1 and in_channels == out_channels
    # damp the last conv of a residual branch so deep stacks keep finite activations
    y = conv_bn(b, y, out_channels, 1, act="none", padding=padding,
                weight_scale=0.5 if residual else 1.0)  # fmt: skip
    return b.add(x, y) if residual else y


def classifier(
    b: GraphBuilder, x: Tensor, num_classes: int, softmax: bool, mean: bool = False
) -> Tensor:
    """Global average pool (or PyTorch's ``x.mean([2, 3])`` when ``mean``), flatten,
    fully connected, optional softmax."""
    x = b.spatial_mean(x) if mean else b.flatten(b.global_avgpool(x))
    y = b.gemm(x, num_classes)
    return b.softmax(y) if softmax else y


def pick(rng: np.random.Generator, options: Sequence):
    """One element of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


def sample_width(rng: np.random.Generator, low: float, high: float) -> float:
    """A width multiplier on a 0.05 grid in [low, high]."""
    return round(float(pick(rng, np.arange(low, high + 1e-9, 0.05))), 2)


def sample_resolution(rng: np.random.Generator, low: int = 32, high: int = 224) -> int:
    """An input size: mostly a common one, a fifth of the time any integer in range."""
    common = [r for r in VISION_RESOLUTIONS if low <= r <= high]
    if rng.random() < 0.2 or not common:
        return int(rng.integers(low, high + 1))
    return int(pick(rng, common))


def sample_vision(rng: np.random.Generator, low: int = 32, high: int = 224) -> dict:
    """The VisionSpec fields: resolution, classes, softmax head, padding convention."""
    return {
        "resolution": sample_resolution(rng, low, high),
        "num_classes": int(pick(rng, CLASS_COUNTS)),
        "softmax": bool(rng.random() < 0.5),
        "padding": pick(rng, ("torch", "same")),
    }


def scale_repeats(repeats: int, multiplier: float) -> int:
    """EfficientNet's depth scaling: ceil(multiplier * repeats)."""
    return int(math.ceil(multiplier * repeats))
