"""Estimator speed against the simulator it predicts.

    python benchmarks/estimator_speed.py [--estimator estimator.npz] [--repeats 5] [--configs 1000]

(a) One model on one configuration, in process (numba already compiled), medians of
    `--repeats`:
    - cold: from the ONNX file: `Predictor(path)` + `Estimator.predict` against
      `Session(path).simulate(hw, timing_only)` (both import and run the graph passes);
    - warm import: the model already imported (a Session, and for the estimator its
      skeleton structure), on hardware of a macro shape not seen before (each repeat another
      macro_rows x macro_cols): the estimator plans and replays, the simulator lowers and
      runs;
    - re-time: the same hardware structure again with other timing and energy fields (the
      simulator re-runs a cached program, the estimator replays a cached plan).
(b) One model over `--configs` sampled configurations (estimator/hardware.py, half with small
    memories): configurations per second, the estimator on all of them, the simulator on the
    first 100 (its rate extrapolates: every configuration costs about the same).

Without `--estimator` the analytic model alone is timed (an estimator without regressors);
with one, its regressors are evaluated too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx.backend.test

from ndpsim.config import load_preset
from ndpsim.estimator.hardware import sample_configs
from ndpsim.estimator.model import Estimator
from ndpsim.estimator.predict import Predictor
from ndpsim.options import SimOptions
from ndpsim.session import Session

ROOT = Path(__file__).resolve().parents[1]
TIMING = SimOptions(timing_only=True)
TARGET_RATIO, TARGET_RATE = 10.0, 1000.0
SHAPES = [(r, c) for r in (64, 128, 256, 512) for c in (8, 16, 32, 128)]


def models(tmp: Path) -> list[tuple[str, Path, dict | None]]:
    from ndpsim.zoo.families import build_network

    mbv2 = tmp / "mobilenetv2_224.onnx"  # MobileNetV2 1.0 at 224 px (the zoo family)
    mbv2.write_bytes(build_network({"family": "mobilenetv2", "width": 1.0,
                                    "resolution": 224}).SerializeToString())  # fmt: skip
    light = Path(onnx.backend.test.__file__).parent / "data" / "light"
    return [("kws_dscnn", ROOT / "models/kws_dscnn.onnx", None),
            ("ic_resnet8", ROOT / "models/ic_resnet8.onnx", None),
            ("vww_mobilenetv1_025", ROOT / "models/vww_mobilenetv1_025.onnx", None),
            ("kws_lstm", ROOT / "models/kws_lstm.onnx", {"input": (1, 49, 10)}),
            ("mobilenetv2 1.0 224", mbv2, None),
            ("light_resnet50", light / "light_resnet50.onnx", None)]  # fmt: skip


def _median(fn, repeats: int, *args) -> float:
    """Median seconds of fn(i, *args) over i = 0 .. repeats - 1."""
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i, *args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _shape(hw, i: int):
    """Hardware of another macro shape for every i (no lowering or tiling cached for it)."""
    rows, cols = SHAPES[i % len(SHAPES)]
    return hw.with_(macro_rows=rows, macro_cols=cols, accumulator_entries_per_macro=4096)


def _other_shape(hw, i: int):
    """Shapes the simulator's repeats did not use (the estimator caches tilings per shape)."""
    return _shape(hw, i + 7)


def _retime(hw, i: int):
    """The same structure with another clock (the simulator re-runs a cached program)."""
    return hw.with_(clock_mhz=hw.clock_mhz * (1 + (i + 1) / 100))


def _cold_sim(i, path, shapes, hw):
    Session(path, input_shapes=shapes).simulate(hw, TIMING)


def _cold_est(i, est, path, shapes, hw):
    est.predict(Predictor(path, input_shapes=shapes), [hw])


def _sim(i, session, make, hw):
    session.simulate(make(hw, i), TIMING)


def _est(i, est, pred, make, hw):
    est.predict(pred, [make(hw, i)])


def table_a(est: Estimator, cases, presets, repeats: int) -> list[float]:
    print("(a) one model, one configuration, in process: median ms (ratio = simulation / "
          "estimator)")  # fmt: skip
    print(f"  {'model':22s} {'preset':14s} {'cold sim':>9s} {'est':>7s} {'ratio':>6s} "
          f"{'warm sim':>9s} {'est':>7s} {'ratio':>6s} {'re-time sim':>11s} {'est':>6s} "
          f"{'ratio':>6s}")  # fmt: skip
    ratios = []
    for name, path, shapes in cases:
        for preset in presets:
            hw = load_preset(preset)
            cold_sim = _median(_cold_sim, repeats, path, shapes, hw)
            cold_est = _median(_cold_est, repeats, est, path, shapes, hw)
            session = Session(path, input_shapes=shapes)
            pred = Predictor(session)
            est.predict(pred, [hw])  # the skeleton structure: the estimator's import
            warm_sim = _median(_sim, repeats, session, _shape, hw)
            warm_est = _median(_est, repeats, est, pred, _other_shape, hw)
            session.simulate(hw, TIMING)
            re_sim = _median(_sim, repeats, session, _retime, hw)
            re_est = _median(_est, repeats, est, pred, _retime, hw)
            r = (cold_sim / cold_est, warm_sim / warm_est, re_sim / re_est)
            ratios.append(r[1])
            print(f"  {name:22s} {preset:14s} {1e3 * cold_sim:9.1f} {1e3 * cold_est:7.1f} "
                  f"{r[0]:6.1f} {1e3 * warm_sim:9.1f} {1e3 * warm_est:7.2f} {r[1]:6.1f} "
                  f"{1e3 * re_sim:11.2f} {1e3 * re_est:6.2f} {r[2]:6.1f}", flush=True)  # fmt: skip
    return ratios


def table_b(est: Estimator, cases, n: int) -> list[float]:
    hws = sample_configs(n, 7, "bench")
    print(f"(b) one model over {n} sampled configurations (half with small memories)")
    print(f"  {'model':22s} {'estimator s':>11s} {'configs/s':>10s} {'simulator s/100':>15s} "
          f"{'configs/s':>10s} {'ratio':>6s}")  # fmt: skip
    rates = []
    for name, path, shapes in cases:
        pred = Predictor(path, input_shapes=shapes)
        est.predict(pred, hws[:1])
        t0 = time.perf_counter()
        out = est.predict(pred, hws)
        t_est = time.perf_counter() - t0
        assert len(out) == n and all(p.latency_cycles > 0 for p in out)
        session = Session(path, input_shapes=shapes)
        t0 = time.perf_counter()
        for hw in hws[:100]:
            session.simulate(hw, TIMING)
        t_sim = time.perf_counter() - t0
        rate, sim_rate = n / t_est, min(100, n) / t_sim
        rates.append(rate)
        print(f"  {name:22s} {t_est:11.2f} {rate:10.0f} {t_sim:15.2f} {sim_rate:10.1f} "
              f"{rate / sim_rate:6.0f}", flush=True)  # fmt: skip
    return rates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--estimator", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--configs", type=int, default=1000)
    ap.add_argument("--presets", default="generic,ndp120")
    args = ap.parse_args()
    est = Estimator.load(args.estimator) if args.estimator else Estimator()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cases = models(Path(tmp))
        Session(cases[0][1]).simulate(load_preset("generic"), TIMING)  # numba: compile / load
        est.predict(Predictor(cases[0][1]), [load_preset("generic")])
        ratios = table_a(est, cases, args.presets.split(","), args.repeats)
        print()
        rates = table_b(est, [c for c in cases if c[0] in ("kws_dscnn", "mobilenetv2 1.0 224")],
                        args.configs)  # fmt: skip
    print()
    print(f"warm-import ratio: median {np.median(ratios):.1f}x, lowest {min(ratios):.1f}x "
          f"(target {TARGET_RATIO:g}x); configurations/s: lowest {min(rates):.0f} "
          f"(target {TARGET_RATE:g})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
