"""Kernel samplers: shapes from a prior of real networks, densified around multiples of
the parallelism factor, and neighbours of badly predicted kernels (adaptive re-sampling).

A sampled kernel is a small dict (type, channels, size, kernel, stride, activation) turned
into a one-kernel ONNX model; the lowering then reports it as the kernel it really runs.
"""

from __future__ import annotations

import numpy as np
import onnx

from ndpsim.zoo.builder import GraphBuilder

# Channel counts of real networks: MLPerf Tiny (DS-CNN 64/172, ResNet-8 16/32/64,
# MobileNetV1-0.25 8..256, the autoencoder's 128/640), MobileNetV1/V2/V3, ResNet,
# EfficientNet and the keyword-spotting nets.
PRIOR_CHANNELS = (
    3,
    8,
    10,
    12,
    16,
    20,
    24,
    32,
    40,
    48,
    56,
    64,
    72,
    80,
    96,
    112,
    120,
    128,
    144,
    160,
    172,
    192,
    200,
    240,
    256,
    288,
    320,
    336,
    384,
    480,
    512,
    576,
    640,
    672,
    720,
    960,
    1024,
    1152,
    1280,
)
# Feature-map sizes (square) of those networks at their input resolutions, plus the
# keyword-spotting spectrogram shapes (49x10, 25x5) as (h, w).
PRIOR_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64)
KWS_SIZES = ((49, 10), (25, 5), (13, 3))
# Share of each kernel type in the initial sample (nn-Meter: 10k conv, 5k depthwise, 3k other).
TYPE_WEIGHTS = {
    "conv": 0.22,
    "conv1x1": 0.30,
    "dwconv": 0.24,
    "fc": 0.06,
    "add": 0.08,
    "pool": 0.04,
    "gap": 0.06,
}


def _channels(rng: np.random.Generator, cols: int, dense: bool) -> int:
    if dense:  # around a multiple of the parallelism factor: the steps the estimator must see
        m = int(rng.integers(1, 9))
        return max(1, m * cols + int(rng.choice((-8, -3, -2, -1, 0, 0, 1, 2, 3, 8))))
    return int(rng.choice(PRIOR_CHANNELS))


def sample_kernel(rng: np.random.Generator, cols: int, dense: bool = False) -> dict:
    """One kernel spec from the prior (dense: channels near multiples of `cols`)."""
    types = list(TYPE_WEIGHTS)
    kind = types[int(rng.choice(len(types), p=np.array(list(TYPE_WEIGHTS.values()))))]
    if rng.random() < 0.08:
        h, w = KWS_SIZES[int(rng.integers(len(KWS_SIZES)))]
    else:
        h = w = int(rng.choice(PRIOR_SIZES))
    c_in, c_out = _channels(rng, cols, dense), _channels(rng, cols, dense)
    if kind in (
        "conv",
        "conv1x1",
        "dwconv",
    ):  # the input image size is the output size times stride
        stride = int(rng.choice((1, 1, 2)))
        h, w = h * stride, w * stride
    else:
        stride = 1
    spec = {
        "kind": kind,
        "c_in": c_in,
        "c_out": c_out,
        "h": h,
        "w": w,
        "k": 1
        if kind == "conv1x1"
        else int(rng.choice((3, 3, 5, 7) if kind == "conv" else (3, 5))),
        "stride": stride,
        "act": str(rng.choice(("none", "relu", "relu6"))),
    }
    if kind == "pool":
        spec["k"], spec["stride"] = int(rng.choice((2, 3))), int(rng.choice((1, 2)))
    if kind == "conv" and c_in > 64 and rng.random() < 0.5:  # the stem: an image in
        spec["c_in"] = 3
    return spec


def neighbours(spec: dict, rng: np.random.Generator, n: int) -> list[dict]:
    """`n` perturbations of a kernel spec (channels +-25%, size +-1 step, same type)."""
    out = []
    for _ in range(n):
        s = dict(spec)
        for key in ("c_in", "c_out"):
            s[key] = max(
                1, int(round(spec[key] * rng.uniform(0.75, 1.25))) + int(rng.integers(-2, 3))
            )
        if spec["kind"] not in ("fc",) and rng.random() < 0.5:
            f = rng.choice((0.5, 1.0, 2.0))
            s["h"] = max(s["k"], int(spec["h"] * f))
            s["w"] = max(s["k"], int(spec["w"] * f)) if spec["w"] > 1 else spec["w"]
        out.append(s)
    return out


def kernel_model(spec: dict, seed: int = 0) -> onnx.ModelProto:
    """A one-kernel model: input, the kernel (with its activation), output."""
    kind = spec["kind"]
    if kind == "fc":
        b = GraphBuilder("kernel", (1, spec["c_in"]), seed)
        y = b.gemm(b.input, spec["c_out"])
    else:
        c = spec["c_in"]
        b = GraphBuilder("kernel", (1, c, spec["h"], spec["w"]), seed)
        x, k = b.input, min(spec["k"], spec["h"], spec["w"])
        if kind == "dwconv":
            y = b.depthwise(x, k, spec["stride"])
        elif kind in ("conv", "conv1x1"):
            y = b.conv(x, spec["c_out"], k, spec["stride"])
        elif kind == "add":
            y = b.add(x, x)
        elif kind == "pool":
            y = b.maxpool(x, k, spec["stride"], padding="same")
        elif kind == "gap":
            y = b.global_avgpool(x)
        else:
            raise ValueError(f"unknown kernel kind {kind!r}")
    if spec["act"] == "relu":
        y = b.relu(y)
    elif spec["act"] == "relu6":
        y = b.relu6(y)
    return b.build(y)
