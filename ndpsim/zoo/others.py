"""Larger / extra reference networks, built in memory with seeded random weights.

- ``resnet50_like``: the conv shapes, strides and pads of onnx's ``light_resnet50`` test
  model (Caffe2 ResNet-50 v1: stride on the 3x3 of the bottleneck), BN folded into
  conv biases, Add instead of Sum. ~25.5 M params, so it is never written to models/.
- ``mobilenetv2_like``: Keras MobileNetV2 layout (width multiplier, make-divisible-by-8
  channels, first block without expansion, ReLU6 as Clip, linear projection).
- ``squeezenet_like``: SqueezeNet 1.1 fire modules at a small resolution, 10 classes.
"""

from __future__ import annotations

import onnx

from ndpsim.zoo.builder import GraphBuilder, Tensor

# ResNet-50 stages: (bottleneck width, output channels, blocks, stride of the first block).
RESNET50_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (64, 256, 3, 1),
    (128, 512, 4, 2),
    (256, 1024, 6, 2),
    (512, 2048, 3, 2),
)
# Scale of the last conv of each ResNet-50 residual branch: with plain He init the
# variance doubles at each of the 16 adds and the softmax saturates to one-hot; damping
# the branch (the idea behind zero-init residuals, Goyal et al. 2017) keeps it finite.
RESIDUAL_BRANCH_SCALE = 0.2
# MobileNetV2 inverted-residual settings: (expansion t, channels c, repeats n, stride s)
# from Sandler et al. 2018, Table 2.
MOBILENETV2_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# Keras keeps the 1280-channel last conv for every width multiplier <= 1.
MOBILENETV2_LAST_CHANNELS = 1280
# SqueezeNet 1.1 fire modules: (squeeze, expand per branch); None marks a 3x3/s2 MaxPool.
SQUEEZENET_FIRES: tuple[tuple[int, int] | None, ...] = (
    (16, 64),
    (16, 64),
    None,
    (32, 128),
    (32, 128),
    None,
    (48, 192),
    (48, 192),
    (64, 256),
    (64, 256),
)


def _sym_pads(kernel: int) -> tuple[int, int, int, int]:
    """Symmetric k//2 padding, as in the Caffe2 ResNet-50 (not TF SAME)."""
    p = kernel // 2
    return (p, p, p, p)


def resnet50_like(seed: int = 0, num_classes: int = 1000) -> onnx.ModelProto:
    """ResNet-50 v1 with light_resnet50's exact layer shapes; input 1x3x224x224.

    Conv order per block matches light_resnet50: branch2a (1x1), 2b (3x3, strided),
    2c (1x1), then the projection shortcut (1x1, strided) of a stage's first block.
    """
    b = GraphBuilder("resnet50_like", (1, 3, 224, 224), seed)
    x = b.conv(b.input, 64, 7, stride=2, padding=_sym_pads(7), relu=True)
    x = b.maxpool(x, 3, stride=2, padding=_sym_pads(3))
    for width, out_channels, blocks, first_stride in RESNET50_STAGES:
        for block in range(blocks):
            stride = first_stride if block == 0 else 1
            y = b.conv(x, width, 1, padding="valid", relu=True)
            y = b.conv(y, width, 3, stride=stride, padding=_sym_pads(3), relu=True)
            y = b.conv(y, out_channels, 1, padding="valid", weight_scale=RESIDUAL_BRANCH_SCALE)
            shortcut = b.conv(x, out_channels, 1, stride, padding="valid") if block == 0 else x
            x = b.add(y, shortcut, relu=True)
    x = b.flatten(b.avgpool(x, 7, stride=1))
    return b.build(b.softmax(b.gemm(x, num_classes)))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never dropping more than 10% (Keras rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _inverted_residual(
    b: GraphBuilder, x: Tensor, expansion: int, out_ch: int, stride: int
) -> Tensor:
    in_ch = x.shape[1]
    y = x
    if expansion != 1:
        y = b.relu6(b.conv(y, in_ch * expansion, 1))
    y = b.relu6(b.depthwise(y, 3, stride=stride))
    y = b.conv(y, out_ch, 1)  # linear bottleneck: no activation after the projection
    return b.add(x, y) if stride == 1 and in_ch == out_ch else y


def mobilenetv2_like(
    seed: int = 0, width: float = 0.35, resolution: int = 96, num_classes: int = 10
) -> onnx.ModelProto:
    """MobileNetV2 with width multiplier ``width`` on a resolution x resolution RGB input."""
    b = GraphBuilder(f"mobilenetv2_{width:g}_{resolution}", (1, 3, resolution, resolution), seed)
    x = b.relu6(b.conv(b.input, make_divisible(32 * width), 3, stride=2))
    for expansion, channels, repeats, stride in MOBILENETV2_BLOCKS:
        # Keras truncates before rounding: _make_divisible(int(filters * alpha), 8).
        out_ch = make_divisible(int(channels * width))
        for i in range(repeats):
            x = _inverted_residual(b, x, expansion, out_ch, stride if i == 0 else 1)
    last = max(MOBILENETV2_LAST_CHANNELS, make_divisible(MOBILENETV2_LAST_CHANNELS * width))
    x = b.relu6(b.conv(x, last, 1))
    x = b.flatten(b.global_avgpool(x))
    return b.build(b.softmax(b.gemm(x, num_classes)))


def _fire(b: GraphBuilder, x: Tensor, squeeze: int, expand: int) -> Tensor:
    s = b.conv(x, squeeze, 1, relu=True)
    return b.concat([b.conv(s, expand, 1, relu=True), b.conv(s, expand, 3, relu=True)])


def squeezenet_like(seed: int = 0, resolution: int = 64, num_classes: int = 10) -> onnx.ModelProto:
    """SqueezeNet 1.1 on a small RGB input (32 or 64 px); SAME padding keeps sizes even.

    Head as in SqueezeNet: 1x1 conv to the classes + ReLU, GlobalAveragePool, Softmax.
    """
    b = GraphBuilder(f"squeezenet_like_{resolution}", (1, 3, resolution, resolution), seed)
    x = b.conv(b.input, 64, 3, stride=2, relu=True)
    x = b.maxpool(x, 3, stride=2, padding="same")
    for fire in SQUEEZENET_FIRES:
        x = b.maxpool(x, 3, stride=2, padding="same") if fire is None else _fire(b, x, *fire)
    x = b.conv(x, num_classes, 1, relu=True)
    x = b.flatten(b.global_avgpool(x))
    return b.build(b.softmax(x))
