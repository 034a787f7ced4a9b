"""The MLPerf Tiny reference networks with seeded random weights.

Layer tables: /work/shared/reference/mlperf_tiny_models.md, taken from mlcommons/tiny
(`benchmark/training/*/keras_model.py`, `vww_model.py`) and counted from the deployed
BN-folded .tflite files. Every conv carries a bias (BatchNorm folded), SAME padding is
explicit pads in the TensorFlow convention, fused ReLUs are separate Relu nodes, and the
head is AveragePool -> Flatten -> Gemm -> Softmax (AD: no Softmax). Layouts are NCHW.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ndpsim.zoo.builder import GraphBuilder

KWS_FILTERS = 64
KWS_DS_BLOCKS = 4
KWS_CLASSES = 12
# MobileNetV1 alpha=0.25: (pointwise output channels, depthwise stride) of the 13 blocks.
VWW_BLOCKS: tuple[tuple[int, int], ...] = (
    (16, 1),
    (32, 2),
    (32, 1),
    (64, 2),
    (64, 1),
    (128, 2),
    (128, 1),
    (128, 1),
    (128, 1),
    (128, 1),
    (128, 1),
    (256, 2),
    (256, 1),
)
VWW_STEM_CHANNELS = 8
VWW_CLASSES = 2
# ResNet-8 (16 filters): (channels, stride) of the three residual stacks.
IC_STACKS: tuple[tuple[int, int], ...] = ((16, 1), (32, 2), (64, 2))
IC_CLASSES = 10
AD_INPUT = 640  # 5 frames x 128 log-mel bins
AD_HIDDEN = 128
AD_BOTTLENECK = 8
# Streaming wake word (v1.3): input 30 frames x 40 features (NCHW: 40 channels, 30 x 1);
# (depthwise kernel over time, pointwise output channels) of the four blocks, valid padding.
SWW_FRAMES = 30
SWW_FEATURES = 40
SWW_BLOCKS: tuple[tuple[int, int], ...] = ((3, 128), (5, 128), (10, 128), (15, 32))
SWW_CLASSES = 3


def kws_dscnn(seed: int = 0) -> onnx.ModelProto:
    """KWS DS-CNN: 10x4/s2 conv, 4 x (dw3x3 + pw1x1), AvgPool, FC 64->12, Softmax.

    Input 1x1x49x10 (49 MFCC frames x 10 coefficients); 22,604 params, 2,656,768 MACs.
    """
    b = GraphBuilder("kws_dscnn", (1, 1, 49, 10), seed)
    x = b.conv(b.input, KWS_FILTERS, kernel=(10, 4), stride=2, relu=True)
    for _ in range(KWS_DS_BLOCKS):
        x = b.depthwise(x, 3, relu=True)
        x = b.conv(x, KWS_FILTERS, 1, relu=True)
    x = b.flatten(b.avgpool(x))
    return b.build(b.softmax(b.gemm(x, KWS_CLASSES)))


def vww_mobilenetv1_025(seed: int = 0) -> onnx.ModelProto:
    """VWW MobileNetV1 alpha=0.25: 3x3/s2 conv, 13 x (dw3x3 + pw1x1), AvgPool, FC 256->2.

    Input 1x3x96x96; 210,850 params, 7,489,664 MACs.
    """
    b = GraphBuilder("vww_mobilenetv1_025", (1, 3, 96, 96), seed)
    x = b.conv(b.input, VWW_STEM_CHANNELS, 3, stride=2, relu=True)
    for channels, stride in VWW_BLOCKS:
        x = b.depthwise(x, 3, stride=stride, relu=True)
        x = b.conv(x, channels, 1, relu=True)
    x = b.flatten(b.avgpool(x))
    return b.build(b.softmax(b.gemm(x, VWW_CLASSES)))


def ic_resnet8(seed: int = 0) -> onnx.ModelProto:
    """IC ResNet-8 (16 filters): stem conv + 3 residual stacks, AvgPool, FC 64->10.

    A stack is conv3x3(+ReLU) -> conv3x3, plus a 1x1 strided shortcut conv when the
    shape changes, joined by Add + ReLU. Input 1x3x32x32; 77,706 params, 12,501,632 MACs.
    """
    b = GraphBuilder("ic_resnet8", (1, 3, 32, 32), seed)
    x = b.conv(b.input, IC_STACKS[0][0], 3, relu=True)
    for channels, stride in IC_STACKS:
        y = b.conv(x, channels, 3, stride=stride, relu=True)
        y = b.conv(y, channels, 3)
        # The table orders the shortcut conv after the main branch; keep that order.
        shortcut = x if stride == 1 and x.shape[1] == channels else b.conv(x, channels, 1, stride)
        x = b.add(shortcut, y, relu=True)
    x = b.flatten(b.avgpool(x))
    return b.build(b.softmax(b.gemm(x, IC_CLASSES)))


def ad_fc_autoencoder(seed: int = 0) -> onnx.ModelProto:
    """AD FC autoencoder: 640-128-128-128-128-8-128-128-128-128-640, ReLU on all but the last.

    Input 1x640; no Softmax (the output is the reconstruction). 265,864 params, 264,192 MACs.
    """
    b = GraphBuilder("ad_fc_autoencoder", (1, AD_INPUT), seed)
    widths = [AD_HIDDEN] * 4 + [AD_BOTTLENECK] + [AD_HIDDEN] * 4
    x = b.input
    for width in widths:
        x = b.gemm(x, width, relu=True)
    return b.build(b.gemm(x, AD_INPUT))


def sww_streaming_wakeword(seed: int = 0) -> onnx.ModelProto:
    """Streaming wake word (MLPerf Tiny v1.3): 4 x (depthwise kx1 over time, valid padding ->
    1x1 conv + ReLU) with kernels 3, 5, 10, 15, then Flatten -> Gemm 32->3 -> Softmax.

    Input 1x40x30x1 (40 features as channels, 30 frames); 46,883 params, 826,368 MACs. The
    depthwise layers have no activation and zero biases (the deployed .tflite); BatchNorm is
    folded into the pointwise convs' biases.
    """
    b = GraphBuilder("sww_streaming_wakeword", (1, SWW_FEATURES, SWW_FRAMES, 1), seed)
    x = b.input
    for kernel, channels in SWW_BLOCKS:
        x = b.depthwise(x, (kernel, 1), padding="valid")
        bias = b.initializers[-1]  # counted as parameters, all zero as deployed
        bias.CopyFrom(numpy_helper.from_array(np.zeros(bias.dims[0], np.float32), bias.name))
        x = b.conv(x, channels, 1, relu=True)
    return b.build(b.softmax(b.gemm(b.flatten(x), SWW_CLASSES)))
