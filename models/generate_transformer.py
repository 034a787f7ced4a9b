"""Export the keyword-transformer model (models/kws_transformer.onnx) from PyTorch, exactly as
a user's PyTorch training script would.

A one-off generation tool: torch is NOT a dependency of ndpsim. Run it in any environment
with a CPU torch and onnx (`pip install torch onnx`):

    python models/generate_transformer.py

The network is a small Keyword Transformer (Berg, Costa and Wayne, "Keyword Transformer: A
Self-Attention Model for Keyword Spotting", Interspeech 2021): each of the 49 frames of 10
MFCCs (the MLPerf Tiny KWS front end) is a token, linearly embedded to 64 dims, with a class
token and learned position embeddings; two pre-norm transformer blocks (2-head self-attention,
an MLP of 128 with exact GELU); LayerNorm; a 12-class head on the class token. Weights are
PyTorch's default (seeded) initialization, not trained: the file is for latency / energy
simulation and for checking the simulator against onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FRAMES, MFCC, CLASSES = 49, 10, 12
DIM, HEADS, MLP, DEPTH = 64, 2, 128, 2
OUT = Path(__file__).resolve().parent


class Attention(nn.Module):
    """Multi-head self-attention: Q·Kᵀ and A·V are products of two activations."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)) * (d // HEADS) ** -0.5
        y = (a.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.attn = Attention()
        self.mlp = nn.Sequential(nn.Linear(DIM, MLP), nn.GELU(), nn.Linear(MLP, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class KeywordTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(MFCC, DIM)
        self.cls = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, FRAMES + 1, DIM) * 0.02)
        self.blocks = nn.Sequential(*[Block() for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0]).softmax(dim=-1)


def main() -> None:
    torch.manual_seed(0)
    model = KeywordTransformer().eval()
    x = torch.randn(1, FRAMES, MFCC)
    torch.onnx.export(model, (x,), OUT / "kws_transformer.onnx", input_names=["input"],
                      output_names=["output"], opset_version=17, dynamo=False)  # fmt: skip
    print(f"wrote {OUT / 'kws_transformer.onnx'}")


if __name__ == "__main__":
    main()
