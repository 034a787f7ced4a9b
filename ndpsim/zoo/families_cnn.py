"""Residual, shuffle and fire-module image classifiers: ResNet, ShuffleNetV2, SqueezeNet.

- ``resnet`` (He et al. 2016; torchvision): basic (two 3x3) or bottleneck (1x1, 3x3 with the
  stride, 1x1 to 4x) blocks, a 1x1 strided projection shortcut whenever the shape changes,
  3 or 4 stages doubling the width. The ``imagenet`` stem is 7x7/s2 + 3x3/s2 max pool; the
  ``cifar`` stem a 3x3/s1 conv (ResNet-20/56 style, MLPerf Tiny's ResNet-8). Bottlenecks
  take torchvision's ``groups`` and ``width_per_group``: the 3x3 is a grouped conv of
  ``int(planes * width_per_group / 64) * groups`` channels (ResNeXt: 32 x 4; Wide ResNet:
  1 x 128).
- ``shufflenetv2`` (Ma et al. 2018; torchvision): 3x3/s2 stem + max pool, three stages of
  shuffle units (stride 2: two branches; stride 1: channel split with a Split node, one
  branch), joined by Concat and a channel shuffle exported as Reshape -> Transpose ->
  Reshape, conv5 1x1, ``x.mean([2, 3])`` pooling.
- ``squeezenet`` (Iandola et al. 2016; torchvision 1_0 / 1_1): fire modules (squeeze 1x1,
  expand 1x1 and 3x3, Concat), ceil-mode max pools, a 1x1 conv classifier + ReLU + global
  pool; every conv has its own bias and no BatchNorm.
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
    make_divisible,
    pads,
    pick,
    sample_vision,
    sample_width,
)
from ndpsim.zoo.builder import GraphBuilder, Tensor

Depth = Annotated[int, Field(ge=1, le=8)]
ResNetDepth = Annotated[int, Field(ge=1, le=36)]  # ResNet-152: 3, 8, 36, 3
Channels = Annotated[int, Field(ge=2, le=4096)]
# Scale of the last conv of each residual branch: without BatchNorm the variance of a deep
# residual stack doubles at every add and the output saturates; damping the branch (the idea
# behind zero-init residuals, Goyal et al. 2017) keeps activations finite.
RESIDUAL_BRANCH_SCALE = 0.3
BOTTLENECK_EXPANSION = 4


class ResNetSpec(VisionSpec):
    family: Literal["resnet"] = "resnet"
    block: Literal["basic", "bottleneck"] = "basic"
    depths: tuple[ResNetDepth, ...] = Field((2, 2, 2, 2), min_length=3, max_length=4)
    width: int = Field(64, ge=4, le=256)  # channels of the first stage
    stem: Literal["imagenet", "cifar"] = "imagenet"
    kernel: Literal[3, 5] = 3
    groups: int = Field(1, ge=1, le=64)  # bottleneck only
    width_per_group: int = Field(64, ge=1, le=256)  # bottleneck only


def _resnet_block(b: GraphBuilder, x: Tensor, spec: ResNetSpec, width: int, stride: int) -> Tensor:
    k, p = spec.kernel, spec.padding
    if spec.block == "basic":
        out = width
        y = conv_bn(b, x, width, k, stride, padding=p)
        y = conv_bn(b, y, width, k, act="none", padding=p, weight_scale=RESIDUAL_BRANCH_SCALE)
    else:
        out = width * BOTTLENECK_EXPANSION
        inner = int(width * spec.width_per_group / 64) * spec.groups
        if not inner:
            raise ValueError(f"width_per_group {spec.width_per_group} leaves no channel per "
                             f"group at {width} planes")  # fmt: skip
        y = conv_bn(b, x, inner, 1, padding=p)
        y = conv_bn(b, y, inner, k, stride, groups=spec.groups, padding=p)
        y = conv_bn(b, y, out, 1, act="none", padding=p, weight_scale=RESIDUAL_BRANCH_SCALE)
    if stride != 1 or x.shape[1] != out:
        x = conv_bn(b, x, out, 1, stride, act="none", padding=p)
    return b.add(y, x, relu=True)


def build_resnet(spec: ResNetSpec, b: GraphBuilder) -> Tensor:
    """ResNet: stem, 3-4 stages of residual blocks (the first strided from stage 2), classifier."""
    if spec.block == "basic" and (spec.groups, spec.width_per_group) != (1, 64):
        raise ValueError("groups and width_per_group need block='bottleneck'")
    if spec.stem == "imagenet":
        x = conv_bn(b, b.input, spec.width, 7, 2, padding=spec.padding)
        x = b.maxpool(x, 3, 2, padding=pads(3, spec.padding))
    else:
        x = conv_bn(b, b.input, spec.width, 3, padding=spec.padding)
    for i, depth in enumerate(spec.depths):
        for j in range(depth):
            x = _resnet_block(b, x, spec, spec.width * 2**i, 2 if i and not j else 1)
    return classifier(b, x, spec.num_classes, spec.softmax)


def sample_resnet(rng: np.random.Generator) -> ResNetSpec:
    """3-4 stages of 1-4 blocks, basic or (grouped, wide) bottleneck, width 6-96, kernel 3/5."""
    vision = sample_vision(rng)
    stages = pick(rng, (3, 4, 4))
    block = pick(rng, ("basic", "basic", "bottleneck"))
    widths = (8, 12, 16, 24, 32, 48, 64) if stages == 4 else (8, 16, 24, 32, 48, 64, 96)
    width = pick(rng, widths) if rng.random() < 0.7 else int(rng.integers(6, 81))
    # bottlenecks: plain, ResNeXt-like (cardinality x width per group) or wide
    groups, per_group = (1, 64)
    if block == "bottleneck":
        options = ((1, 64), (1, 64), (32, 4), (8, 8), (4, 16), (1, 128))
        groups, per_group = pick(rng, [o for o in options if width * o[1] >= 64])
    return ResNetSpec(
        **vision,
        block=block,
        depths=tuple(int(rng.integers(1, 5 if block == "basic" else 4)) for _ in range(stages)),
        width=width,
        stem="cifar" if vision["resolution"] <= 64 and rng.random() < 0.7 else "imagenet",
        kernel=pick(rng, (3, 3, 3, 5)),
        groups=groups,
        width_per_group=per_group,
    )


# ShuffleNetV2 (torchvision): repeats of the three stages, stem and conv5 channels.
SHUFFLE_REPEATS = (4, 8, 4)
SHUFFLE_STEM = 24
SHUFFLE_CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
                    1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}  # fmt: skip


class ShuffleNetV2Spec(VisionSpec):
    family: Literal["shufflenetv2"] = "shufflenetv2"
    channels: tuple[Channels, ...] = Field(SHUFFLE_CHANNELS[1.0][:3], min_length=3, max_length=3)
    repeats: tuple[Depth, ...] = Field(SHUFFLE_REPEATS, min_length=3, max_length=3)
    last_channels: int = Field(1024, ge=8, le=4096)
    stem_channels: int = Field(SHUFFLE_STEM, ge=4, le=256)
    kernel: Literal[3, 5, 7] = 3


def _shuffle_unit(
    b: GraphBuilder, x: Tensor, out: int, stride: int, spec: ShuffleNetV2Spec
) -> Tensor:
    half, k, p = out // 2, spec.kernel, spec.padding
    if stride == 1:
        left, right = b.split(x, 2)
    else:
        left = conv_bn(b, x, x.shape[1], k, stride, groups=x.shape[1], act="none", padding=p)
        left = conv_bn(b, left, half, 1)
        right = x
    right = conv_bn(b, right, half, 1)
    right = conv_bn(b, right, half, k, stride, groups=half, act="none", padding=p)
    right = conv_bn(b, right, half, 1)
    y = b.concat([left, right])
    # channel_shuffle(y, 2): view as (N, 2, C/2, H, W), swap the group axes, view back
    n, c, h, w = y.shape
    y = b.reshape(y, (n, 2, c // 2, h, w))
    y = b.transpose(y, (0, 2, 1, 3, 4))
    return b.reshape(y, (n, c, h, w))


def build_shufflenetv2(spec: ShuffleNetV2Spec, b: GraphBuilder) -> Tensor:
    """ShuffleNetV2: stem and max pool, three stages of shuffle units, conv5, classifier."""
    if any(c % 2 for c in spec.channels):
        raise ValueError(f"channels must be even (split in two halves), got {list(spec.channels)}")
    x = conv_bn(b, b.input, spec.stem_channels, 3, 2, padding=spec.padding)
    x = b.maxpool(x, 3, 2, padding=pads(3, spec.padding))
    for out, repeats in zip(spec.channels, spec.repeats, strict=True):
        for j in range(repeats):
            x = _shuffle_unit(b, x, out, 2 if j == 0 else 1, spec)
    x = conv_bn(b, x, spec.last_channels, 1)
    return classifier(b, x, spec.num_classes, spec.softmax, mean=True)


def sample_shufflenetv2(rng: np.random.Generator) -> ShuffleNetV2Spec:
    """Published or any even stage widths, repeats -2..+1, conv5 512-2048, dw kernel 3/5/7."""
    vision = sample_vision(rng)
    if rng.random() < 0.5:  # one of the published widths
        *channels, last = SHUFFLE_CHANNELS[pick(rng, tuple(SHUFFLE_CHANNELS))]
    else:  # any even widths around them
        base = sample_width(rng, 0.25, 2.0)
        channels = [2 * max(4, round(c * base / 2)) for c in SHUFFLE_CHANNELS[1.0][:3]]
        last = pick(rng, (512, 768, 1024, 1024, 1280))
    return ShuffleNetV2Spec(
        **vision,
        channels=tuple(channels),
        repeats=tuple(min(8, max(1, r + int(rng.integers(-2, 2)))) for r in SHUFFLE_REPEATS),
        last_channels=last,
        stem_channels=pick(rng, (12, 16, 24, 24, 24, 32)),
        kernel=pick(rng, (3, 3, 3, 5, 7)),
    )


# SqueezeNet fire modules: (squeeze, expand 1x1, expand 3x3), None = 3x3/s2 ceil-mode pool.
SQUEEZE_FIRES = {
    "1_0": ((16, 64, 64), (16, 64, 64), (32, 128, 128), None, (32, 128, 128),
            (48, 192, 192), (48, 192, 192), (64, 256, 256), None, (64, 256, 256)),
    "1_1": ((16, 64, 64), (16, 64, 64), None, (32, 128, 128), (32, 128, 128), None,
            (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)),
}  # fmt: skip
SQUEEZE_STEM = {"1_0": (96, 7), "1_1": (64, 3)}  # (channels, kernel), stride 2, no padding


class SqueezeNetSpec(VisionSpec):
    family: Literal["squeezenet"] = "squeezenet"
    version: Literal["1_0", "1_1"] = "1_1"
    width: float = Field(1.0, gt=0, le=2.0)
    pct3x3: float = Field(0.5, ge=0.0, le=1.0)  # share of the expand channels that are 3x3
    divisor: int = Field(1, ge=1, le=64)


def build_squeezenet(spec: SqueezeNetSpec, b: GraphBuilder) -> Tensor:
    """SqueezeNet 1_0 / 1_1: valid stem conv, fire modules and ceil-mode pools, conv head."""
    ch = lambda c: make_divisible(c * spec.width, spec.divisor)  # noqa: E731
    stem, k = SQUEEZE_STEM[spec.version]
    x = b.conv(b.input, ch(stem), k, 2, padding="valid", relu=True, bn=False)
    x = b.maxpool(x, 3, 2, ceil_mode=True)
    for fire in SQUEEZE_FIRES[spec.version]:
        if fire is None:
            x = b.maxpool(x, 3, 2, ceil_mode=True)
            continue
        squeeze, e1, e3 = fire
        expand = ch(e1 + e3)
        e3 = round(expand * spec.pct3x3)
        s = b.conv(x, ch(squeeze), 1, padding="valid", relu=True, bn=False)
        branches = []
        if expand - e3:
            branches.append(b.conv(s, expand - e3, 1, padding="valid", relu=True, bn=False))
        if e3:
            branches.append(b.conv(s, e3, 3, padding=pads(3, spec.padding), relu=True, bn=False))
        x = b.concat(branches) if len(branches) > 1 else branches[0]
    x = b.conv(x, spec.num_classes, 1, padding="valid", relu=True, bn=False)
    y = b.flatten(b.global_avgpool(x))
    return b.softmax(y) if spec.softmax else y


def sample_squeezenet(rng: np.random.Generator) -> SqueezeNetSpec:
    """Version, width 0.25-1.5, 3x3 share 1/4-3/4, divisor 1-16, resolution from 48 px."""
    return SqueezeNetSpec(
        **sample_vision(rng, low=48),
        version=pick(rng, ("1_0", "1_1", "1_1")),
        width=sample_width(rng, 0.25, 1.5),
        pct3x3=pick(rng, (0.25, 0.5, 0.5, 0.75)),
        divisor=pick(rng, (1, 1, 8, 16)),
    )


FAMILIES = {
    "resnet": Family(ResNetSpec, build_resnet, sample_resnet),
    "shufflenetv2": Family(ShuffleNetV2Spec, build_shufflenetv2, sample_shufflenetv2),
    "squeezenet": Family(SqueezeNetSpec, build_squeezenet, sample_squeezenet),
}
