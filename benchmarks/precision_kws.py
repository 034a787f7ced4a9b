"""What each bit costs and buys on the KWS DS-CNN: whole-model weight / activation bits vs
latency, energy and output SQNR against onnxruntime's float result (post-training quantized,
calibrated on 8 seeded inputs, measured on another). Prints one table.

    python benchmarks/precision_kws.py [--preset generic]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import ndpsim
from ndpsim.api import SimOptions, random_inputs
from ndpsim.frontend import load_model

MODEL = Path(__file__).resolve().parents[1] / "models" / "kws_dscnn.onnx"
BITS = [(8, 16), (8, 8), (4, 8), (2, 8), (1, 8), (8, 4), (4, 4), (2, 4)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="generic")
    args = ap.parse_args()
    base = ndpsim.load_preset(args.preset)
    graph = load_model(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        xs = [random_inputs(graph, 100 + i) for i in range(8)]
        np.savez(calib, **{n: np.stack([x[n] for x in xs]) for n in graph.inputs})
        print(f"KWS DS-CNN on {args.preset}: bits vs cost and accuracy")
        print(f"{'w/a bits':>8} {'latency us':>11} {'energy uJ':>10} {'SQNR dB':>8}")
        for w, a in BITS:
            if w not in base.supported_weight_bits or a not in base.supported_activation_bits:
                continue
            hw = base.with_(weight_bits=w, activation_bits=a)
            r = ndpsim.simulate(MODEL, hw, SimOptions(calibration=str(calib), seed=7))
            print(f"{f'w{w}a{a}':>8} {r.latency_us:>11.2f} {r.energy_uj:>10.4f} "
                  f"{r.agreement[0].sqnr_db:>8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
