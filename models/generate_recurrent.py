"""Export the recurrent keyword-spotting models (models/kws_lstm.onnx, models/kws_gru.onnx)
from PyTorch, exactly as a user's PyTorch training script would.

This is a one-off generation tool: torch is NOT a dependency of ndpsim. Run it in any
environment with a CPU torch and onnx (`pip install torch onnx`):

    python models/generate_recurrent.py

The weights are PyTorch's default (seeded) initialization, not trained: the files are for
latency / energy simulation and for checking the simulator against onnxruntime. Both models
read 49 frames x 10 MFCCs (the MLPerf Tiny KWS front end), with the time axis exported as a
symbolic dim `frames` (give it with `--input-shape input=1x49x10`), and score 12 classes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FRAMES, MFCC, CLASSES = 49, 10, 12
OUT = Path(__file__).resolve().parent


class KwsLSTM(nn.Module):
    """2-layer bidirectional LSTM (hidden 32) with given initial states; last frame -> FC."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(MFCC, 32, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(64, CLASSES)

    def forward(self, x, h0, c0):
        y, _ = self.rnn(x, (h0, c0))
        return self.fc(y[:, -1, :])


class KwsGRU(nn.Module):
    """2-layer GRU (hidden 64), zero initial state; last frame -> FC."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(MFCC, 64, num_layers=2, batch_first=True)
        self.fc = nn.Linear(64, CLASSES)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1, :])


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, FRAMES, MFCC)
    lstm = KwsLSTM().eval()
    h0, c0 = torch.zeros(4, 1, 32), torch.zeros(4, 1, 32)
    torch.onnx.export(lstm, (x, h0, c0), OUT / "kws_lstm.onnx", input_names=["input", "h0", "c0"],
                      output_names=["output"], dynamic_axes={"input": {1: "frames"}},
                      opset_version=13, dynamo=False)  # fmt: skip
    gru = KwsGRU().eval()
    torch.onnx.export(gru, (x,), OUT / "kws_gru.onnx", input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {1: "frames"}},
                      opset_version=13, dynamo=False)  # fmt: skip
    for name in ("kws_lstm.onnx", "kws_gru.onnx"):
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
