"""Mobile image classifiers: MobileNetV1/V2/V3, MnasNet and EfficientNet-lite.

- ``mobilenetv1`` (Howard et al. 2017; Keras / TF-slim): 3x3/s2 stem, 13 depthwise-separable
  blocks (dw k x k + pw 1x1), channels ``int(c * width)`` as Keras (or rounded to
  ``divisor``), ReLU6 or ReLU. ``depth`` sets how many of the five 512-channel stride-1
  blocks are kept. Width 0.25 at 96 px with 2 classes and ReLU is the MLPerf Tiny VWW model.
- ``mobilenetv2`` (Sandler et al. 2018; torchvision): inverted residuals, expansion 6
  (tunable), ReLU6, linear bottlenecks, per-stage kernels and depths, last conv 1280 x
  max(1, width).
- ``mobilenetv3`` (Howard et al. 2019; torchvision): the large and small tables, hard-swish,
  squeeze-excite with a HardSigmoid gate and a broadcast Mul, squeeze channels
  ``make_divisible(expanded * se_ratio)``, classifier Linear + hard-swish + Linear.
- ``mnasnet`` (Tan et al. 2019, the B1 variant as torchvision builds it): MBConv stacks,
  per-stack kernels, expansions and repeats, ``x.mean([2, 3])`` pooling. ``se_ratio`` > 0
  adds squeeze-excite where MnasNet-A1 has it (the 40-, 96- and 192-channel stacks;
  squeeze ``int(input channels * se_ratio)``, ReLU, sigmoid gate, as TF's mnasnet_model).
- ``efficientnet_lite`` (Tan & Le 2019, the lite variant): EfficientNet-B0's MBConv table
  without SE, ReLU6, stem 32 and head 1280 fixed while scaling, width and depth
  coefficients (the first and last stage's repeats are not scaled).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from ndpsim.zoo.blocks import (
    Family,
    VisionSpec,
    classifier,
    conv_bn,
    inverted_residual,
    make_divisible,
    pick,
    sample_vision,
    sample_width,
    scale_repeats,
)
from ndpsim.zoo.builder import GraphBuilder, Tensor

Kernel = Literal[3, 5, 7]
Repeats = Annotated[int, Field(ge=1, le=6)]
Expansion = Annotated[int, Field(ge=1, le=8)]

# MobileNetV1 depthwise-separable blocks: (pointwise channels, stride); the five (512, 1)
# blocks are the ones `depth` trims.
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2))
V1_TAIL = ((1024, 2), (1024, 1))
V1_MIDDLE = 5


class MobileNetV1Spec(VisionSpec):
    family: Literal["mobilenetv1"] = "mobilenetv1"
    width: float = Field(1.0, gt=0, le=2.0)
    depth: int = Field(V1_MIDDLE, ge=0, le=V1_MIDDLE)
    kernel: Kernel = 3
    divisor: int = Field(1, ge=1, le=64)  # 1: Keras' int(c * width)
    act: Literal["relu", "relu6"] = "relu6"
    padding: Literal["torch", "same"] = "same"


def _v1_channels(c: int, spec: MobileNetV1Spec) -> int:
    if spec.divisor == 1:
        return max(1, int(c * spec.width))
    return make_divisible(c * spec.width, spec.divisor)


def build_mobilenetv1(spec: MobileNetV1Spec, b: GraphBuilder) -> Tensor:
    """MobileNetV1: stem, 13 (or fewer) depthwise-separable blocks, classifier."""
    x = conv_bn(b, b.input, _v1_channels(32, spec), 3, 2, act=spec.act, padding=spec.padding)
    blocks = V1_BLOCKS + ((512, 1),) * spec.depth + V1_TAIL
    for channels, stride in blocks:
        x = conv_bn(b, x, x.shape[1], spec.kernel, stride, groups=x.shape[1], act=spec.act,
                    padding=spec.padding)  # fmt: skip
        x = conv_bn(b, x, _v1_channels(channels, spec), 1, act=spec.act, padding=spec.padding)
    return classifier(b, x, spec.num_classes, spec.softmax)


def sample_mobilenetv1(rng: np.random.Generator) -> MobileNetV1Spec:
    """Width 0.1-1.5, 1-5 middle blocks, kernel 3/5/7, Keras or rounded channels, ReLU or ReLU6."""
    return MobileNetV1Spec(
        **sample_vision(rng),
        width=sample_width(rng, 0.1, 1.5),
        depth=int(pick(rng, (1, 2, 3, 4, 5, 5, 5))),
        kernel=pick(rng, (3, 3, 3, 5, 7)),
        divisor=pick(rng, (1, 1, 4, 8, 16)),
        act=pick(rng, ("relu", "relu6")),
    )


# MobileNetV2 stages: (expansion, channels, repeats, stride), Sandler et al. Table 2.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
V2_LAST = 1280


class MobileNetV2Spec(VisionSpec):
    family: Literal["mobilenetv2"] = "mobilenetv2"
    width: float = Field(1.0, gt=0, le=2.0)
    expansion: int = Field(6, ge=1, le=8)
    kernels: tuple[Kernel, ...] = Field((3,) * 7, min_length=7, max_length=7)
    depths: tuple[Repeats, ...] = Field(tuple(s[2] for s in V2_STAGES), min_length=7,
                                        max_length=7)  # fmt: skip
    divisor: int = Field(8, ge=1, le=64)


def build_mobilenetv2(spec: MobileNetV2Spec, b: GraphBuilder) -> Tensor:
    """MobileNetV2: stem, seven stages of inverted residuals, 1x1 head conv, classifier."""
    div = spec.divisor
    x = conv_bn(b, b.input, make_divisible(32 * spec.width, div), 3, 2, act="relu6",
                padding=spec.padding)  # fmt: skip
    for i, (t, c, _, s) in enumerate(V2_STAGES):
        out = make_divisible(c * spec.width, div)
        t = t if i == 0 else spec.expansion
        for j in range(spec.depths[i]):
            x = inverted_residual(b, x, x.shape[1] * t, out, spec.kernels[i], s if j == 0 else 1,
                                  "relu6", spec.padding)  # fmt: skip
    x = conv_bn(b, x, make_divisible(V2_LAST * max(1.0, spec.width), div), 1, act="relu6")
    return classifier(b, x, spec.num_classes, spec.softmax)


def sample_mobilenetv2(rng: np.random.Generator) -> MobileNetV2Spec:
    """Width 0.25-1.4, expansion 2-6, per-stage kernels 3/5/7 and depths +-1, divisor 1-16."""
    return MobileNetV2Spec(
        **sample_vision(rng),
        width=sample_width(rng, 0.25, 1.4),
        expansion=pick(rng, (2, 3, 4, 6, 6, 6)),
        kernels=tuple(pick(rng, (3, 3, 5, 7)) for _ in V2_STAGES),
        depths=tuple(max(1, s[2] + int(rng.integers(-1, 2))) for s in V2_STAGES),
        divisor=pick(rng, (1, 4, 8, 8, 8, 16)),
    )


# MobileNetV3 bneck tables (torchvision): (in, kernel, expanded, out, SE, activation, stride).
V3_LARGE = (
    (16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2),
    (24, 3, 72, 24, False, "relu", 1), (24, 5, 72, 40, True, "relu", 2),
    (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
    (40, 3, 240, 80, False, "hswish", 2), (80, 3, 200, 80, False, "hswish", 1),
    (80, 3, 184, 80, False, "hswish", 1), (80, 3, 184, 80, False, "hswish", 1),
    (80, 3, 480, 112, True, "hswish", 1), (112, 3, 672, 112, True, "hswish", 1),
    (112, 5, 672, 160, True, "hswish", 2), (160, 5, 960, 160, True, "hswish", 1),
    (160, 5, 960, 160, True, "hswish", 1),
)  # fmt: skip
V3_SMALL = (
    (16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2),
    (24, 3, 88, 24, False, "relu", 1), (24, 5, 96, 40, True, "hswish", 2),
    (40, 5, 240, 40, True, "hswish", 1), (40, 5, 240, 40, True, "hswish", 1),
    (40, 5, 120, 48, True, "hswish", 1), (48, 5, 144, 48, True, "hswish", 1),
    (48, 5, 288, 96, True, "hswish", 2), (96, 5, 576, 96, True, "hswish", 1),
    (96, 5, 576, 96, True, "hswish", 1),
)  # fmt: skip
V3_LAST = {"large": 1280, "small": 1024}


class MobileNetV3Spec(VisionSpec):
    family: Literal["mobilenetv3"] = "mobilenetv3"
    variant: Literal["large", "small"] = "large"
    width: float = Field(1.0, gt=0, le=2.0)
    se_ratio: float = Field(0.25, gt=0, le=1.0)
    divisor: int = Field(8, ge=1, le=64)


def build_mobilenetv3(spec: MobileNetV3Spec, b: GraphBuilder) -> Tensor:
    """MobileNetV3 large or small: hard-swish stem, the bneck table, 1x1 conv, two-layer head."""
    table = V3_LARGE if spec.variant == "large" else V3_SMALL
    ch = lambda c: make_divisible(c * spec.width, spec.divisor)  # noqa: E731
    x = conv_bn(b, b.input, ch(table[0][0]), 3, 2, act="hswish", padding=spec.padding)
    for _, k, expanded, out, se, act, stride in table:
        e = ch(expanded)
        # torchvision: _make_divisible(expanded // 4, 8), i.e. se_ratio 0.25
        se_ch = make_divisible(int(e * spec.se_ratio), 8) if se else 0
        x = inverted_residual(b, x, e, ch(out), k, stride, act, spec.padding, se_ch)
    x = conv_bn(b, x, 6 * x.shape[1], 1, act="hswish")
    x = b.flatten(b.global_avgpool(x))
    x = b.hardswish(b.gemm(x, ch(V3_LAST[spec.variant])))
    y = b.gemm(x, spec.num_classes)
    return b.softmax(y) if spec.softmax else y


def sample_mobilenetv3(rng: np.random.Generator) -> MobileNetV3Spec:
    """Variant, width 0.25-1.5, SE ratio 1/8-1/2, divisor 1-16."""
    return MobileNetV3Spec(
        **sample_vision(rng),
        variant=pick(rng, ("large", "small")),
        width=sample_width(rng, 0.25, 1.5),
        se_ratio=pick(rng, (0.125, 0.25, 0.25, 0.5)),
        divisor=pick(rng, (1, 4, 8, 8, 8, 16)),
    )


# MnasNet-B1 (torchvision): stem widths 32, 16; stacks (channels, kernel, stride,
# expansion, repeats); the depths scale with alpha, rounding up unless within 10%.
MNAS_STEM = (32, 16)
MNAS_STACKS = ((24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2),
               (192, 5, 2, 6, 4), (320, 3, 1, 6, 1))  # fmt: skip
MNAS_LAST = 1280
MNAS_SE_STACKS = (1, 3, 4)


class MnasNetSpec(VisionSpec):
    family: Literal["mnasnet"] = "mnasnet"
    width: float = Field(1.0, gt=0, le=2.0)
    kernels: tuple[Kernel, ...] = Field(tuple(s[1] for s in MNAS_STACKS), min_length=6,
                                        max_length=6)  # fmt: skip
    expansions: tuple[Expansion, ...] = Field(tuple(s[3] for s in MNAS_STACKS), min_length=6,
                                        max_length=6)  # fmt: skip
    repeats: tuple[Repeats, ...] = Field(tuple(s[4] for s in MNAS_STACKS), min_length=6,
                                         max_length=6)  # fmt: skip
    divisor: int = Field(8, ge=1, le=64)
    se_ratio: float = Field(0.0, ge=0.0, le=1.0)  # 0: no squeeze-excite (B1)


def build_mnasnet(spec: MnasNetSpec, b: GraphBuilder) -> Tensor:
    """MnasNet-B1: stem, a depthwise-separable block, six MBConv stacks, 1x1 conv, classifier."""
    ch = lambda c: make_divisible(c * spec.width, spec.divisor)  # noqa: E731
    x = conv_bn(b, b.input, ch(MNAS_STEM[0]), 3, 2, padding=spec.padding)
    x = conv_bn(b, x, x.shape[1], 3, groups=x.shape[1], padding=spec.padding)
    x = conv_bn(b, x, ch(MNAS_STEM[1]), 1, act="none")
    for i, (c, _, stride, _, _) in enumerate(MNAS_STACKS):
        for j in range(spec.repeats[i]):
            se = max(1, int(x.shape[1] * spec.se_ratio)) if i in MNAS_SE_STACKS else 0
            x = inverted_residual(b, x, x.shape[1] * spec.expansions[i], ch(c), spec.kernels[i],
                                  stride if j == 0 else 1, "relu", spec.padding,
                                  se if spec.se_ratio else 0, "sigmoid")  # fmt: skip
    x = conv_bn(b, x, MNAS_LAST, 1)
    return classifier(b, x, spec.num_classes, spec.softmax, mean=True)


def sample_mnasnet(rng: np.random.Generator) -> MnasNetSpec:
    """Width 0.25-1.4, per-stack kernels 3/5/7, expansions 3/4/6, repeats +-1, SE in half."""
    return MnasNetSpec(
        **sample_vision(rng),
        width=sample_width(rng, 0.25, 1.4),
        kernels=tuple(pick(rng, (3, 5, 7)) for _ in MNAS_STACKS),
        expansions=tuple(pick(rng, (3, 3, 6, 6, 4)) for _ in MNAS_STACKS),
        repeats=tuple(max(1, s[4] + int(rng.integers(-1, 2))) for s in MNAS_STACKS),
        divisor=pick(rng, (1, 4, 8, 8, 8, 16)),
        se_ratio=pick(rng, (0.0, 0.0, 0.25, 0.5)),
    )


# EfficientNet-B0 stages: (expansion, kernel, stride, channels, repeats).
EFF_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))  # fmt: skip
EFF_STEM, EFF_HEAD = 32, 1280


class EfficientNetLiteSpec(VisionSpec):
    family: Literal["efficientnet_lite"] = "efficientnet_lite"
    width: float = Field(1.0, gt=0, le=2.0)  # width_coefficient
    depth: float = Field(1.0, gt=0, le=2.0)  # depth_coefficient
    kernels: tuple[Kernel, ...] = Field(tuple(s[1] for s in EFF_STAGES), min_length=7,
                                        max_length=7)  # fmt: skip
    divisor: int = Field(8, ge=1, le=64)


def build_efficientnet_lite(spec: EfficientNetLiteSpec, b: GraphBuilder) -> Tensor:
    """EfficientNet-lite: fixed stem, B0's MBConv stages scaled in width and depth, head."""
    x = conv_bn(b, b.input, EFF_STEM, 3, 2, act="relu6", padding=spec.padding)
    last = len(EFF_STAGES) - 1
    for i, (t, _, stride, c, repeats) in enumerate(EFF_STAGES):
        out = make_divisible(c * spec.width, spec.divisor)
        n = repeats if i in (0, last) else scale_repeats(repeats, spec.depth)
        for j in range(n):
            x = inverted_residual(b, x, x.shape[1] * t, out, spec.kernels[i],
                                  stride if j == 0 else 1, "relu6", spec.padding)  # fmt: skip
    x = conv_bn(b, x, EFF_HEAD, 1, act="relu6")
    return classifier(b, x, spec.num_classes, spec.softmax)


def sample_efficientnet_lite(rng: np.random.Generator) -> EfficientNetLiteSpec:
    """Width 0.5-1.4, depth 0.5-1.8, per-stage kernels 3/5/7, divisor 1-16."""
    return EfficientNetLiteSpec(
        **sample_vision(rng),
        width=sample_width(rng, 0.5, 1.4),
        depth=pick(rng, (0.5, 0.8, 1.0, 1.1, 1.2, 1.4, 1.8)),
        kernels=tuple(pick(rng, (3, 5, 5, 7)) for _ in EFF_STAGES),
        divisor=pick(rng, (1, 4, 8, 8, 8, 16)),
    )


FAMILIES = {
    "mobilenetv1": Family(MobileNetV1Spec, build_mobilenetv1, sample_mobilenetv1),
    "mobilenetv2": Family(MobileNetV2Spec, build_mobilenetv2, sample_mobilenetv2),
    "mobilenetv3": Family(MobileNetV3Spec, build_mobilenetv3, sample_mobilenetv3),
    "mnasnet": Family(MnasNetSpec, build_mnasnet, sample_mnasnet),
    "efficientnet_lite": Family(
        EfficientNetLiteSpec, build_efficientnet_lite, sample_efficientnet_lite
    ),
}
