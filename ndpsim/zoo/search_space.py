"""A MobileNet-like NAS search space: genomes (JSON), ONNX models, and their kernels.

A genome is a stem conv (3x3, stride 2), a list of stages and a head (1x1 conv, global
average pool, fully connected). A stage repeats one block `depth` times; the first block
carries the stage's stride. Blocks:

- ``ibn`` (inverted bottleneck, MobileNetV2): 1x1 expansion to ``expansion x c_in`` (skipped
  at expansion 1), ``kernel x kernel`` depthwise conv, linear 1x1 projection;
- ``fused`` (fused-IBN, EfficientNet-EdgeTPU): one full ``kernel x kernel`` conv to
  ``expansion x c_in``, linear 1x1 projection;

both with a residual Add when the stride is 1 and the channels are unchanged. Convs use
TensorFlow SAME padding; activations are ReLU6 (Clip) or ReLU.

`genome_kernels` lists the kernels the lowering will report for a genome's model without
building it (tests check both agree): the estimator's fast path for scoring thousands of
candidates per second.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import onnx
from pydantic import BaseModel, ConfigDict, Field

from ndpsim.zoo.builder import GraphBuilder, Tensor, same_pads

# The base layout: (stride, channels, depth) per stage, after MobileNetV2 / EfficientNet-B0.
BASE_STAGES: tuple[tuple[int, int, int], ...] = (
    (1, 16, 1),
    (2, 24, 2),
    (2, 40, 2),
    (2, 80, 3),
    (1, 112, 3),
    (2, 192, 1),
)
RESOLUTIONS = (32, 48, 64, 80, 96, 112, 128)
STEM_CHANNELS = (8, 16, 24, 32)
HEAD_CHANNELS = (256, 384, 512, 640, 768, 1024, 1280)
EXPANSIONS = (1, 3, 4, 6)
FUSED_EXPANSIONS = (1, 2, 3, 4)  # a full kxk conv to 6x channels is a very large layer
KERNELS = (3, 5)
DEPTHS = (1, 2, 3, 4)
FAMILIES = ("random", "ibn", "fused", "edgetpu", "mbv2")


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    block: Literal["ibn", "fused"]
    expansion: int = Field(ge=1, le=8)
    kernel: Literal[3, 5]
    channels: int = Field(ge=1, le=2048)
    depth: int = Field(ge=1, le=8)
    stride: Literal[1, 2]


class Genome(BaseModel):
    """One architecture of the search space (serializes to and from JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolution: int = Field(ge=16, le=256)
    stem_channels: int = Field(ge=1, le=256)
    stages: tuple[Stage, ...] = Field(min_length=1, max_length=10)
    head_channels: int = Field(ge=1, le=4096)
    num_classes: int = Field(10, ge=1, le=1000)
    activation: Literal["relu6", "relu"] = "relu6"

    def blocks(self) -> list[tuple[list[tuple[int, int, int, int, int, bool]], bool]]:
        """The network as blocks of convs (c_in, c_out, kernel, stride, groups, activation)
        with a residual flag; the stem and the head conv are blocks of one conv. The one
        source of both `build_onnx` and `genome_kernels`."""
        out = [([(3, self.stem_channels, 3, 2, 1, True)], False)]
        c = self.stem_channels
        for st in self.stages:
            for j in range(st.depth):
                s = st.stride if j == 0 else 1
                mid = c * st.expansion
                if st.block == "fused":
                    convs = [(c, mid, st.kernel, s, 1, True)]
                else:
                    convs = [(c, mid, 1, 1, 1, True)] if st.expansion != 1 else []
                    convs.append((mid, mid, st.kernel, s, mid, True))
                convs.append((mid, st.channels, 1, 1, 1, False))
                out.append((convs, s == 1 and c == st.channels))
                c = st.channels
        out.append(([(c, self.head_channels, 1, 1, 1, True)], False))
        return out


def build_into(genome: Genome, b: GraphBuilder) -> Tensor:
    """Append the genome's layers to ``b`` (whose input is the 1 x 3 x r x r image)."""
    act = b.relu6 if genome.activation == "relu6" else b.relu
    x = b.input
    for convs, residual in genome.blocks():
        y = x
        for _, c_out, k, s, groups, has_act in convs:
            y = b.conv(y, c_out, k, s, groups)
            y = act(y) if has_act else y
        x = b.add(x, y) if residual else y
    x = b.flatten(b.global_avgpool(x))
    return b.gemm(x, genome.num_classes)


def build_onnx(genome: Genome, seed: int = 0) -> onnx.ModelProto:
    """The genome's model as ONNX (seeded random weights)."""
    r = genome.resolution
    b = GraphBuilder("nas", (1, 3, r, r), seed)
    return b.build(build_into(genome, b))


def genome_kernels(genome: Genome, a_bits: int = 8, w_bits: int = 8) -> list[tuple]:
    """The kernels of the genome's lowered model, in program order, as tuples in the field
    order of `ndpsim.lower.kernels.Kernel` (ops joined by "+"), without building anything."""
    act = "Clip" if genome.activation == "relu6" else "Relu"
    r = genome.resolution
    rows = [("input", "Host", 0, 3, r, r, 3, r, r, 1, 1, 1, 1, 1, 1, 0, 0, 1, "none", 1, 0, a_bits)]
    h = r
    for convs, residual in genome.blocks():
        for c_in, c_out, k, s, groups, has_act in convs:
            o = -(-h // s)
            pad = same_pads((h, h), (k, k), (s, s))[0]
            if groups > 1:
                kind = "dwconv"
            else:
                kind = "conv1x1" if k == 1 else "conv"
            a = act if has_act else "none"
            ops = "Conv+" + act if has_act else "Conv"
            li = len(rows)
            rows.append(
                (
                    kind,
                    ops,
                    li,
                    c_in,
                    h,
                    h,
                    c_out,
                    o,
                    o,
                    k,
                    k,
                    s,
                    s,
                    1,
                    1,
                    pad,
                    pad,
                    groups,
                    a,
                    1,
                    w_bits,
                    a_bits,
                )
            )
            h = o
        if residual:
            c = rows[-1][6]
            li = len(rows)
            rows.append(
                (
                    "add",
                    "Add",
                    li,
                    c,
                    h,
                    h,
                    c,
                    h,
                    h,
                    1,
                    1,
                    1,
                    1,
                    1,
                    1,
                    0,
                    0,
                    1,
                    "none",
                    2,
                    0,
                    a_bits,
                )
            )
    c = genome.head_channels
    li = len(rows)
    rows.append(
        (
            "gap",
            "GlobalAveragePool",
            li,
            c,
            h,
            h,
            c,
            1,
            1,
            h,
            h,
            1,
            1,
            1,
            1,
            0,
            0,
            1,
            "none",
            1,
            0,
            a_bits,
        )
    )
    n = genome.num_classes  # li + 1 is the Flatten: an alias, no kernel
    rows.append(
        (
            "fc",
            "Gemm",
            li + 2,
            c,
            1,
            1,
            n,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            0,
            0,
            1,
            "none",
            1,
            w_bits,
            a_bits,
        )
    )
    rows.append(
        (
            "output",
            "Host",
            li + 3,
            n,
            1,
            1,
            n,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            0,
            0,
            1,
            "none",
            1,
            0,
            a_bits,
        )
    )
    return rows


def _stage_channels(rng: np.random.Generator, base: int) -> int:
    """Channels of a stage: any multiple of 8 from half to 1.5 times the base width."""
    return 8 * int(rng.integers(max(1, base // 16), (3 * base) // 16 + 1))


def sample_genome(rng: np.random.Generator, family: str = "random") -> Genome:
    """A random genome of `family` (one of FAMILIES):

    - ``random``: every choice uniform (block type, expansion, kernel, channels, depth,
      the stride of the first and fifth stage, resolution, stem, head, activation);
    - ``ibn`` / ``fused``: every block of that type;
    - ``edgetpu``: fused-IBN in the first three stages, IBN after (EfficientNet-EdgeTPU);
    - ``mbv2``: IBN, expansion 6, 3x3, the base depths and strides, one width multiplier.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    stages = []
    width = pick((0.35, 0.5, 0.75, 1.0, 1.25, 1.5))
    for i, (stride, base, depth) in enumerate(BASE_STAGES):
        if family == "mbv2":
            ch = max(8, int(round(base * width / 8)) * 8)
            stages.append(
                Stage(
                    block="ibn",
                    expansion=6 if i else 1,
                    kernel=3,
                    channels=ch,
                    depth=depth,
                    stride=stride,
                )
            )
            continue
        block = {"ibn": "ibn", "fused": "fused"}.get(family) or pick(("ibn", "fused"))
        if family == "edgetpu":
            block = "fused" if i < 3 else "ibn"
        if i in (0, 4) and family == "random":
            stride = pick((1, 2))
        stages.append(
            Stage(
                block=block,
                expansion=pick(FUSED_EXPANSIONS if block == "fused" else EXPANSIONS),
                kernel=pick(KERNELS),
                channels=_stage_channels(rng, base),
                depth=pick(DEPTHS),
                stride=stride,
            )
        )
    return Genome(
        resolution=pick(RESOLUTIONS),
        stem_channels=pick(STEM_CHANNELS),
        stages=tuple(stages),
        head_channels=pick(HEAD_CHANNELS),
        activation=pick(("relu6", "relu")),
    )


def genome_macs(genome: Genome) -> int:
    """Multiply-accumulates of the genome's model (the FLOPs baseline's input)."""
    macs = 0
    for row in genome_kernels(genome):
        if row[0] in ("conv", "conv1x1", "dwconv", "fc"):
            c_in, c_out, oh, ow, k, groups = row[3], row[6], row[7], row[8], row[9], row[17]
            macs += oh * ow * c_out * (c_in // groups) * k * k
    return macs


__all__ = [
    "FAMILIES",
    "Genome",
    "Stage",
    "build_into",
    "build_onnx",
    "genome_kernels",
    "genome_macs",
    "sample_genome",
]
