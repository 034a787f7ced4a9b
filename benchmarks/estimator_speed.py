"""Estimator speed against the simulator it predicts.

    python benchmarks/estimator_speed.py [--estimator estimator.npz] [--repeats 7]
        [--configs 1000] [--presets generic,ndp120] [--models kws_dscnn,...] [--no-fresh]

(a) One model on one configuration, in process (numba already compiled), medians of
    `--repeats`, the simulator's and the estimator's repeats interleaved (so that a load
    from other processes falls on both; compare the ratios, measured in the same run):
    - predict (the target, >= 10x): the model imported (a Session; for the estimator its
      skeleton structure too), on hardware of a macro shape not seen before (each repeat
      another macro_rows x macro_cols): the simulator lowers and runs a timing-only
      simulation, the estimator plans and replays (`Estimator.predict`);
    - re-time: the same hardware structure again with another clock (the simulator re-runs
      a cached program, the estimator replays a cached plan);
    - cold: from the ONNX file, with an on-disk program cache (program_cache.py, a fresh
      folder filled by a first run): `Session(path).simulate` against `Predictor(path)` +
      `Estimator.predict`; both read their lowering from the cache instead of importing.
(b) One model over `--configs` sampled configurations (estimator/hardware.py, half with small
    memories), the model imported once: configurations per second, the median of three runs,
    each with a fresh `Predictor` (its skeleton structure included); the simulator on the
    first 100 (its rate extrapolates: every configuration costs about the same). Target
    >= 1,000 configurations/s.
(c) A fresh process (interpreter start, imports, kernels from numba's cache, the lowering
    from a warm program cache): `ndpsim simulate --timing-only` against `ndpsim estimator
    predict`, wall time, median of three.

Without `--estimator` the analytic model alone is timed (an estimator without regressors);
with one, its regressors are evaluated too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx.backend.test

from ndpsim.config import load_preset
from ndpsim.estimator.hardware import sample_configs
from ndpsim.estimator.model import Estimator
from ndpsim.estimator.predict import Predictor
from ndpsim.options import SimOptions
from ndpsim.program_cache import ProgramCache
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
            ("mobilenetv2_224", mbv2, None),
            ("light_resnet50", light / "light_resnet50.onnx", None)]  # fmt: skip


def _interleaved(sim, est, repeats: int) -> tuple[float, float]:
    """Median seconds of sim(i) and of est(i), i = 0 .. repeats - 1, run alternately."""
    ts, te = [], []
    for i in range(repeats):
        for fn, out in ((sim, ts), (est, te)):
            t0 = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - t0)
    return statistics.median(ts), statistics.median(te)


def _shape(hw, i: int):
    """Hardware of another macro shape for every i (no lowering or tiling cached for it)."""
    rows, cols = SHAPES[i % len(SHAPES)]
    return hw.with_(macro_rows=rows, macro_cols=cols, accumulator_entries_per_macro=4096)


def _retime(hw, i: int):
    """The same structure with another clock (the simulator re-runs a cached program)."""
    return hw.with_(clock_mhz=hw.clock_mhz * (1 + (i + 1) / 100))


def table_a(est: Estimator, cases, presets, repeats: int, tmp: Path) -> list[float]:
    print(f"(a) one model, one configuration, in process: median ms of {repeats} (ratio = "
          "simulation / estimator)")  # fmt: skip
    print(f"  {'model':20s} {'preset':8s} | {'sim':>7s} {'predict':>7s} {'ratio':>6s} "
          f"{'>=10x':>5s} | {'re-time sim':>11s} {'est':>6s} {'ratio':>6s} | "
          f"{'cold sim':>8s} {'est':>6s} {'ratio':>6s}")  # fmt: skip
    ratios = []
    for name, path, shapes in cases:
        for preset in presets:
            warm, re, cold = _case(est, path, shapes, load_preset(preset), repeats,
                                   tmp / f"cache-{name}-{preset}")  # fmt: skip
            r = [s / e for s, e in (warm, re, cold)]
            ratios.append(r[0])
            verdict = "PASS" if r[0] >= TARGET_RATIO else "FAIL"
            print(f"  {name:20s} {preset:8s} | {1e3 * warm[0]:7.2f} {1e3 * warm[1]:7.3f} "
                  f"{r[0]:6.1f} {verdict:>5s} | {1e3 * re[0]:11.2f} {1e3 * re[1]:6.3f} "
                  f"{r[1]:6.1f} | {1e3 * cold[0]:8.1f} {1e3 * cold[1]:6.1f} {r[2]:6.1f}",
                  flush=True)  # fmt: skip
    return ratios


def _case(est: Estimator, path: Path, shapes, hw, repeats: int, cache_dir: Path):
    """(predict, re-time, cold) medians (simulation s, estimator s) of one model on `hw`."""
    session = Session(path, input_shapes=shapes)
    pred = Predictor(session)
    est.predict(pred, [hw])  # the skeleton structure: the estimator's import
    # new macro shapes: the simulator gets shapes i, the estimator shapes i + 7 (the
    # configurations are made before the clock starts: validating one is the caller's)
    sim_hw = [_shape(hw, i) for i in range(repeats)]
    est_hw = [_shape(hw, i + 7) for i in range(repeats)]
    warm = _interleaved(lambda i: session.simulate(sim_hw[i], TIMING),
                        lambda i: est.predict(pred, [est_hw[i]]), repeats)  # fmt: skip
    session.simulate(hw, TIMING)
    re_hw = [_retime(hw, i) for i in range(repeats)]
    re = _interleaved(lambda i: session.simulate(re_hw[i], TIMING),
                      lambda i: est.predict(pred, [re_hw[i]]), repeats)  # fmt: skip
    cache = ProgramCache(cache_dir)
    Session(path, input_shapes=shapes, cache=cache).simulate(hw, TIMING)  # fills the cache
    est.predict(Predictor(path, input_shapes=shapes, cache=cache), [hw])
    cold = _interleaved(
        lambda i: Session(path, input_shapes=shapes, cache=cache).simulate(hw, TIMING),
        lambda i: est.predict(Predictor(path, input_shapes=shapes, cache=cache), [hw]),
        repeats,
    )
    return warm, re, cold


def table_b(est: Estimator, cases, n: int) -> list[float]:
    hws = sample_configs(n, 7, "bench")
    print(f"(b) one model over {n} sampled configurations (half with small memories); "
          "median of 3")  # fmt: skip
    print(f"  {'model':20s} {'estimator s':>11s} {'configs/s':>10s} {'>=1000':>6s} "
          f"{'simulator s/100':>15s} {'configs/s':>10s} {'ratio':>6s}")  # fmt: skip
    rates = []
    for name, path, shapes in cases:
        session = Session(path, input_shapes=shapes)
        est.predict(Predictor(session), hws[:1])
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = est.predict(Predictor(session), hws)
            times.append(time.perf_counter() - t0)
            assert len(out) == n and all(p.latency_cycles > 0 for p in out)
        t_est = statistics.median(times)
        t0 = time.perf_counter()
        for hw in hws[:100]:
            session.simulate(hw, TIMING)
        t_sim = time.perf_counter() - t0
        rate, sim_rate = n / t_est, min(100, n) / t_sim
        rates.append(rate)
        verdict = "PASS" if rate >= TARGET_RATE else "FAIL"
        print(f"  {name:20s} {t_est:11.2f} {rate:10.0f} {verdict:>6s} {t_sim:15.2f} "
              f"{sim_rate:10.1f} {rate / sim_rate:6.0f}", flush=True)  # fmt: skip
    return rates


def table_c(cases, tmp: Path) -> None:
    print("(c) a fresh process, generic, warm program and kernel caches: wall s, median of 3")
    print(f"  {'model':20s} {'simulate':>9s} {'predict':>8s} {'ratio':>6s}")
    env = {**os.environ, "NDPSIM_CACHE_DIR": str(tmp / "fresh-cache")}
    cli = [sys.executable, "-m", "ndpsim"]
    for name, path, shapes in cases:
        extra = [f"--input-shape={k}={'x'.join(map(str, v))}" for k, v in (shapes or {}).items()]
        cmds = (cli + ["simulate", str(path), "--timing-only"],
                cli + ["estimator", "predict", str(path), "-e", str(tmp / "none.npz")])  # fmt: skip
        walls = []
        for cmd in cmds:
            cmd = cmd + extra
            subprocess.run(cmd, env=env, check=True, capture_output=True)  # fills the caches
            ts = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                ts.append(time.perf_counter() - t0)
            walls.append(statistics.median(ts))
        print(f"  {name:20s} {walls[0]:9.2f} {walls[1]:8.2f} {walls[0] / walls[1]:6.1f}",
              flush=True)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--estimator", type=Path)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--configs", type=int, default=1000, help="0: skip (b)")
    ap.add_argument("--presets", default="generic,ndp120")
    ap.add_argument("--models", default="", help="comma-separated names (default: all)")
    ap.add_argument("--no-fresh", action="store_true", help="skip (c)")
    args = ap.parse_args()
    est = Estimator.load(args.estimator) if args.estimator else Estimator()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = models(tmp)
        if args.models:
            cases = [c for c in cases if c[0] in args.models.split(",")]
        # warm-up, untimed: numba compiles or loads the kernels, and the interpreter settles
        # (its first calls of every function run slower, which would fall on the first case)
        warm_session, generic = Session(cases[0][1]), load_preset("generic")
        warm_pred = Predictor(warm_session)
        for i in range(8):
            warm_session.simulate(_shape(generic, i), TIMING)
            est.predict(warm_pred, [_shape(generic, i)])
        ratios = table_a(est, cases, args.presets.split(","), args.repeats, tmp)
        print()
        sweep = [c for c in cases if c[0] in ("kws_dscnn", "mobilenetv2_224")]
        rates = table_b(est, sweep, args.configs) if sweep and args.configs > 0 else []
        if not args.no_fresh and sweep:
            print()
            Estimator().save(tmp / "none.npz")
            table_c(sweep, tmp)
    print()
    print(f"predict ratio: lowest {min(ratios):.1f}x (target {TARGET_RATIO:g}x); "
          f"configurations/s: lowest {min(rates, default=0):.0f} (target {TARGET_RATE:g}); "
          f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
