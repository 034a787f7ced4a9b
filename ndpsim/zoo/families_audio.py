"""Keyword spotters on spectrogram / MFCC inputs (Zhang et al. 2017, "Hello Edge").

- ``dscnn``: a strided k_t x k_f conv on the 1 x frames x features input, then depthwise-
  separable blocks (dw 3x3 + pw 1x1, ReLU), an average pool over the whole map, FC and
  softmax. 64 filters, 4 blocks, a 10x4/s2 first conv on 49x10 is the MLPerf Tiny KWS model.
- ``crnn_kws``: a conv front end over time and frequency, its output read as a sequence
  (Transpose + Reshape to frames x 1 x channels * bins), recurrent layers (GRU by default),
  the last step, an optional hidden FC + ReLU, FC.
- ``gru_kws`` / ``lstm_kws``: stacked GRU / LSTM layers on a 1 x frames x features input
  (batch first), exported as torch.onnx exports nn.GRU / nn.LSTM: Transpose to time-major,
  one ONNX GRU / LSTM node per layer (W, R, B initializers; GRU linear_before_reset=1; no
  initial state), Squeeze of the direction axis (or Transpose + Reshape joining both
  directions), Transpose back, Gather of step -1, FC. Two unidirectional GRU layers of 64 on
  49x10 and two bidirectional LSTM layers of 32 are the bundled PyTorch exports
  models/kws_gru.onnx and models/kws_lstm.onnx.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ndpsim.zoo.blocks import Family, Spec, pick
from ndpsim.zoo.builder import GraphBuilder, Tensor

# Spectrogram sizes the samplers draw from: frames of a 1 s clip at 10-40 ms hops, and
# MFCC / log-mel bin counts in use.
FRAMES = (25, 32, 49, 50, 62, 64, 98, 99, 124)
FEATURES = (10, 10, 13, 20, 32, 40, 64)
KWS_CLASSES = (2, 10, 12, 12, 35)


class AudioSpec(Spec):
    """A frames x features spectrogram input and a classifier head."""

    frames: int = Field(49, ge=4, le=256)
    features: int = Field(10, ge=1, le=128)
    num_classes: int = Field(12, ge=1, le=1000)
    softmax: bool = True


class DsCnnSpec(AudioSpec):
    family: Literal["dscnn"] = "dscnn"
    filters: int = Field(64, ge=1, le=512)
    blocks: int = Field(4, ge=1, le=8)
    first_kernel: tuple[int, int] = (10, 4)
    first_stride: tuple[int, int] = (2, 2)

    def input_shape(self) -> tuple[int, ...]:
        return (1, 1, self.frames, self.features)


def build_dscnn(spec: DsCnnSpec, b: GraphBuilder) -> Tensor:
    """DS-CNN: strided first conv, depthwise-separable blocks, average pool, FC."""
    kt, kf = spec.first_kernel
    if not (1 <= kt <= spec.frames and 1 <= kf <= spec.features) or min(spec.first_stride) < 1:
        raise ValueError(f"first_kernel {list(spec.first_kernel)} does not fit the input "
                         f"{spec.frames}x{spec.features} (or a stride < 1)")  # fmt: skip
    x = b.conv(b.input, spec.filters, spec.first_kernel, spec.first_stride, relu=True)
    for _ in range(spec.blocks):
        x = b.depthwise(x, 3, relu=True)
        x = b.conv(x, spec.filters, 1, relu=True)
    y = b.gemm(b.flatten(b.avgpool(x)), spec.num_classes)
    return b.softmax(y) if spec.softmax else y


def sample_dscnn(rng: np.random.Generator) -> DsCnnSpec:
    """Spectrogram sizes, filters 32-276 (Hello Edge S/M/L), 2-6 blocks, first kernel and stride."""
    frames, features = pick(rng, FRAMES), pick(rng, FEATURES)
    return DsCnnSpec(
        frames=frames,
        features=features,
        num_classes=pick(rng, KWS_CLASSES),
        softmax=bool(rng.random() < 0.8),
        # Hello Edge's S / M / L widths (64, 172, 276) and values around them
        filters=pick(rng, (32, 48, 64, 64, 100, 128, 172, 200, 276)),
        blocks=int(rng.integers(2, 7)),
        first_kernel=(min(frames, pick(rng, (3, 5, 10))), min(features, pick(rng, (3, 4)))),
        first_stride=(2, pick(rng, (1, 2))),
    )


class RecurrentSpec(AudioSpec):
    """Stacked recurrent layers and the head."""

    hidden: int = Field(64, ge=1, le=512)
    layers: int = Field(2, ge=1, le=4)
    bidirectional: bool = False
    fc_hidden: int = Field(0, ge=0, le=1024)  # 0: no hidden FC layer

    def input_shape(self) -> tuple[int, ...]:
        return (1, self.frames, self.features)


def _rnn_stack(b: GraphBuilder, x: Tensor, op: str, spec: RecurrentSpec) -> Tensor:
    """Time-major [T, 1, F] in; the layers; batch-first [1, T, H * dirs] out."""
    for _ in range(spec.layers):
        y = b.recurrent(x, op, spec.hidden, spec.bidirectional)
        if spec.bidirectional:  # [T, 2, 1, H] -> [T, 1, 2, H] -> [T, 1, 2H]
            t, dirs, n, h = y.shape
            x = b.reshape(b.transpose(y, (0, 2, 1, 3)), (t, n, dirs * h))
        else:
            x = b.squeeze(y, 1)
    return b.transpose(x, (1, 0, 2))


def _rnn_head(b: GraphBuilder, x: Tensor, spec: RecurrentSpec) -> Tensor:
    x = b.gather(x, -1, axis=1)  # the last step, as y[:, -1, :] exports
    if spec.fc_hidden:
        x = b.gemm(x, spec.fc_hidden, relu=True)
    y = b.gemm(x, spec.num_classes)
    return b.softmax(y) if spec.softmax else y


class GruKwsSpec(RecurrentSpec):
    family: Literal["gru_kws"] = "gru_kws"


class LstmKwsSpec(RecurrentSpec):
    family: Literal["lstm_kws"] = "lstm_kws"


def build_recurrent_kws(spec: GruKwsSpec | LstmKwsSpec, b: GraphBuilder) -> Tensor:
    """Stacked GRU (gru_kws) or LSTM (lstm_kws) layers, the last step, the head."""
    op = "GRU" if spec.family == "gru_kws" else "LSTM"
    x = b.transpose(b.input, (1, 0, 2))
    return _rnn_head(b, _rnn_stack(b, x, op, spec), spec)


def _sample_recurrent(rng: np.random.Generator) -> dict:
    bidirectional = bool(rng.random() < 0.3)
    return {
        "frames": pick(rng, FRAMES),
        "features": pick(rng, FEATURES),
        "num_classes": pick(rng, KWS_CLASSES),
        "softmax": bool(rng.random() < 0.5),
        "hidden": pick(rng, (16, 24, 32, 48, 64, 64, 100, 128, 154, 200, 256)),
        "layers": int(rng.integers(1, 3 if bidirectional else 4)),
        "bidirectional": bidirectional,
        "fc_hidden": pick(rng, (0, 0, 32, 64, 84, 128)),
    }


def sample_gru_kws(rng: np.random.Generator) -> GruKwsSpec:
    """Spectrogram sizes, hidden 16-256, 1-3 layers (bidirectional: 1-2), optional FC."""
    return GruKwsSpec(**_sample_recurrent(rng))


def sample_lstm_kws(rng: np.random.Generator) -> LstmKwsSpec:
    """Spectrogram sizes, hidden 16-256, 1-3 layers (bidirectional: 1-2), optional FC."""
    return LstmKwsSpec(**_sample_recurrent(rng))


class CrnnKwsSpec(RecurrentSpec):
    family: Literal["crnn_kws"] = "crnn_kws"
    cell: Literal["GRU", "LSTM"] = "GRU"
    filters: int = Field(48, ge=1, le=256)
    kernel: tuple[int, int] = (10, 4)
    stride: tuple[int, int] = (2, 1)
    hidden: int = Field(60, ge=1, le=512)
    fc_hidden: int = Field(84, ge=0, le=1024)

    def input_shape(self) -> tuple[int, ...]:
        return (1, 1, self.frames, self.features)


def build_crnn_kws(spec: CrnnKwsSpec, b: GraphBuilder) -> Tensor:
    """CRNN: a valid conv, its map read as a sequence, recurrent layers, the head."""
    kt, kf = spec.kernel
    if not (1 <= kt <= spec.frames and 1 <= kf <= spec.features) or min(spec.stride) < 1:
        raise ValueError(f"kernel {list(spec.kernel)} does not fit the input "
                         f"{spec.frames}x{spec.features} (or a stride < 1)")  # fmt: skip
    x = b.conv(b.input, spec.filters, spec.kernel, spec.stride, padding="valid", relu=True)
    _, c, t, f = x.shape  # [1, C, T', F'] -> [T', 1, C, F'] -> [T', 1, C * F']
    x = b.reshape(b.transpose(x, (2, 0, 1, 3)), (t, 1, c * f))
    return _rnn_head(b, _rnn_stack(b, x, spec.cell, spec), spec)


def sample_crnn_kws(rng: np.random.Generator) -> CrnnKwsSpec:
    """The recurrent draws (1-2 layers, GRU or LSTM), filters 16-128, kernel and stride."""
    rnn = _sample_recurrent(rng)
    return CrnnKwsSpec(
        **{**rnn, "layers": min(rnn["layers"], 2)},
        cell=pick(rng, ("GRU", "GRU", "LSTM")),
        filters=pick(rng, (16, 32, 48, 64, 100, 128)),
        kernel=(pick(rng, (3, 5, 10)), min(rnn["features"], pick(rng, (3, 4, 8)))),
        stride=(pick(rng, (1, 2, 2)), pick(rng, (1, 2))),
    )


FAMILIES = {
    "dscnn": Family(DsCnnSpec, build_dscnn, sample_dscnn),
    "crnn_kws": Family(CrnnKwsSpec, build_crnn_kws, sample_crnn_kws),
    "gru_kws": Family(GruKwsSpec, build_recurrent_kws, sample_gru_kws),
    "lstm_kws": Family(LstmKwsSpec, build_recurrent_kws, sample_lstm_kws),
}
