"""What each bit costs and buys on the KWS DS-CNN: whole-model weight / activation bits, then
per-layer mixed assignments suggested by `ndpsim precision` (greedy, docs/quantization.md),
vs latency, energy and output SQNR against onnxruntime's float result. Post-training
quantized from ranges calibrated on 8 seeded random inputs; SQNR over 4 other seeded inputs.
Prints one table.

    python benchmarks/precision_kws.py [--preset generic]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ndpsim
from ndpsim.api import SimOptions
from ndpsim.precision.sensitivity import Evaluator, sensitivity, suggest

MODEL = Path(__file__).resolve().parents[1] / "models" / "kws_dscnn.onnx"
BITS = [(8, 16), (8, 8), (4, 8), (2, 8), (1, 8), (8, 4), (4, 4), (2, 4)]


def _mix(rules: dict[str, str]) -> str:
    """ "w4 x6, w2 x1": how many layers the assignment lowers, to which bits."""
    if not rules:
        return "all default"
    counts: dict[str, int] = {}
    for bits in rules.values():
        counts[bits] = counts.get(bits, 0) + 1
    return ", ".join(f"{b} x{n}" for b, n in sorted(counts.items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="generic")
    args = ap.parse_args()
    hw = ndpsim.load_preset(args.preset)
    t0 = time.perf_counter()
    ev = Evaluator(MODEL, hw, SimOptions(seed=100, calibration_samples=8), n_eval=4)
    print(f"KWS DS-CNN on {args.preset}: bits vs cost and accuracy (SQNR vs onnxruntime float)")
    print(f"{'assignment':<34} {'latency us':>11} {'energy uJ':>10} {'SQNR dB':>8}")
    for w, a in BITS:
        if w not in hw.supported_weight_bits or a not in hw.supported_activation_bits:
            continue
        p = ev.evaluate([f"default=w{w}a{a}"])
        print(f"{f'w{w}a{a} (whole model)':<34} {p.latency_us:>11.2f} {p.energy_uj:>10.4f} "
              f"{p.sqnr_db:>8.1f}")  # fmt: skip
    base, rows = sensitivity(ev, [4, 2, 1])
    goals = [("SQNR >= base - 1 dB", {"target_sqnr_db": base.sqnr_db - 1}),
             ("SQNR >= base - 3 dB", {"target_sqnr_db": base.sqnr_db - 3}),
             ("SQNR >= base - 6 dB", {"target_sqnr_db": base.sqnr_db - 6}),
             ("energy <= 75% of w8a8", {"energy_budget_uj": 0.75 * base.energy_uj})]  # fmt: skip
    for label, goal in goals:
        sug = suggest(ev, base, rows, **goal)
        p = sug.point
        met = "" if sug.met else " (not met)"
        print(f"{f'mixed, {label}':<34} {p.latency_us:>11.2f} {p.energy_uj:>10.4f} "
              f"{p.sqnr_db:>8.1f}   {_mix(sug.rules)}{met}")  # fmt: skip
        if sug.rules:
            print(f"{'':<4}" + " ".join(f"{n}={b}" for n, b in sug.rules.items()))
    print(f"({ev.evaluations} model evaluations in {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
