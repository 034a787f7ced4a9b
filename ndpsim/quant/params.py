"""Affine quantization parameters: one tensor's (`QParams`), a program's (`QuantPlan`), and
how they are chosen from a range (symmetric, asymmetric)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class QParams:
    """Affine quantization of one tensor: real = scale * (q - zero_point), q in [qmin, qmax]."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """float32 x / scale, round half to even, + zero point, saturate (as QuantizeLinear)."""
        with np.errstate(over="ignore", invalid="ignore"):
            f = np.asarray(x, np.float32) / np.float32(self.scale)
        f = np.clip(np.nan_to_num(f), self.qmin - self.zero_point, self.qmax - self.zero_point)
        return (np.rint(f).astype(np.int64) + self.zero_point).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """float32 (q - zero point) * scale (as DequantizeLinear)."""
        qq = np.asarray(q, np.int64) - self.zero_point
        return qq.astype(np.float32) * np.float32(self.scale)


@dataclass
class QuantPlan:
    tensors: dict[str, QParams]  # every value the program stores (aliases share their source)
    # weights are quantized at their layer's w_bits (Program.layers), per output channel or
    # with one scale per tensor
    per_channel_weights: bool = True
    # MAC sums are first requantized to this many bits (at the output's range, with
    # preactivation_bits - a_bits more fractional bits), then activated and requantized to
    # the output (NDP120's 16-bit pre-activation); 0, or >= the output's bits: one step
    preactivation_bits: int = 0
    # the quantized model's own weights and biases (frontend.quantized.ModelQuant): bind uses
    # them as they are and reproduces onnxruntime's quantized kernels (sim/ort_bind.py)
    model: Any = None


def symmetric(amax: float, bits: int) -> QParams:
    """Symmetric signed quantization (zero point 0), as NDP120 runs activations."""
    qmax = (1 << (bits - 1)) - 1
    scale = amax / qmax if amax > 0 else 1.0 / qmax
    return QParams(float(scale), 0, -qmax - 1, qmax)


def asymmetric(lo: float, hi: float, bits: int) -> QParams:
    """Affine signed quantization of [lo, hi] (widened to hold 0 exactly): all 2^bits levels
    cover the range, the zero point shifts it."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0 / qmax
    zp = int(np.clip(np.rint(qmin - lo / scale), qmin, qmax))
    return QParams(float(scale), zp, qmin, qmax)
