"""The estimator end to end: no model the simulator accepts is refused, predictions equal the
simulator where the residual is zero, residual regressors correct what the analytic model
misses, estimator files round-trip without pickle, the CLI (predict like simulate, batch
forms, warnings, errors) and the dataset command (resumes after kill -9, Ctrl-C without
worker tracebacks, trains and evaluates)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx.backend.test
import pytest

from ndpsim.config import load_preset
from ndpsim.estimator.model import Estimator
from ndpsim.estimator.predict import Predictor
from ndpsim.estimator.train import Rows, fit
from ndpsim.lower.kernels import KERNEL_TYPES
from ndpsim.options import SimOptions

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "models").glob("*.onnx"))
LIGHT = sorted((Path(onnx.backend.test.__file__).parent / "data" / "light").glob("light_*.onnx"))
RECURRENT = {"input": (1, 49, 10)}
GENERIC = load_preset("generic")


def _shapes(path: Path):
    return RECURRENT if path.stem in ("kws_lstm", "kws_gru") else None


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ndpsim", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT)  # fmt: skip


@pytest.fixture(scope="module")
def empty(tmp_path_factory) -> Path:
    """An estimator file without regressors: the analytic model alone."""
    path = tmp_path_factory.mktemp("est") / "estimator.npz"
    Estimator(info={"training_ranges": {"macro_cols": [8, 128]}}).save(path)
    return path


@pytest.mark.parametrize("path", MODELS + LIGHT, ids=lambda p: p.stem)
def test_no_model_the_simulator_accepts_is_refused(path):
    """Every bundled model and every light_* network: a prediction on each preset equal to
    the timing-only simulation (the residual is zero without regressors)."""
    predictor = Predictor(path, input_shapes=_shapes(path))
    hws = [load_preset(p) for p in ("generic", "ndp120", "neural-engine")]
    if path in LIGHT:
        hws = hws[:1]  # the exactness on more hardware is test_estimator_plan's (slow) job
    for hw, pred in zip(hws, Estimator().predict(predictor, hws), strict=True):
        report = predictor.session.simulate(hw, SimOptions(timing_only=True))
        assert pred.latency_cycles == report.latency_cycles
        assert pred.energy_uj == pytest.approx(report.energy_uj, rel=1e-12)


def test_no_zoo_family_is_refused():
    from ndpsim.zoo.families import NETWORK_FAMILIES, build_network, sample_spec

    rng = np.random.default_rng(3)
    small = GENERIC.with_(macro_weight_sets=2, sram_bytes=65536)
    for family in NETWORK_FAMILIES:
        predictor = Predictor(build_network(sample_spec(family, rng)))
        (pred,) = Estimator().predict(predictor, [small])
        report = predictor.session.simulate(small, SimOptions(timing_only=True))
        assert pred.latency_cycles == report.latency_cycles, family
        assert pred.energy_uj == pytest.approx(report.energy_uj, rel=1e-12), family


def _rows_with_residual(factor: float):
    """Kernel rows of KWS on two configurations, its conv kernels simulated `factor` slower."""
    from ndpsim.estimator.features import features

    predictor = Predictor(ROOT / "models" / "kws_dscnn.onnx")
    parts = []
    for hw in (GENERIC, GENERIC.with_(macro_cols=32), GENERIC.with_(clock_mhz=50)):
        ev = predictor.evaluate(hw)
        layer, kind, geom = predictor.kernels(hw)
        X = np.repeat(features(layer, geom, ev, hw), 8, axis=0)  # enough rows for the trees
        k = np.repeat(kind, 8)
        y = np.where(k == KERNEL_TYPES.index("conv"), np.log(factor), 0.0)
        parts.append((X, k, y, np.zeros(len(k)), np.full(len(k), "dscnn")))
    return Rows(*(np.concatenate([p[j] for p in parts]) for j in range(5))), predictor


def test_regressors_learn_a_residual_and_compose_it(tmp_path):
    rows, predictor = _rows_with_residual(1.5)
    est = fit(rows, log=lambda *_: None)
    assert set(est.forests) == {"conv.latency"}  # zero residuals get no regressor
    ev = predictor.evaluate(GENERIC)
    layer, kind, geom = predictor.kernels(GENERIC)
    conv = layer[kind == KERNEL_TYPES.index("conv")]
    want = ev.cycles + 0.5 * float(np.sum(ev.spans[conv] + 1))
    (pred,) = est.predict(predictor, [GENERIC])
    assert pred.latency_cycles == pytest.approx(want, rel=1e-3)
    assert pred.analytic_cycles == ev.cycles
    est.save(tmp_path / "e.npz")
    again = Estimator.load(tmp_path / "e.npz")
    assert again.predict(predictor, [GENERIC])[0].latency_cycles == pred.latency_cycles
    with np.load(tmp_path / "e.npz", allow_pickle=False) as data:  # plain arrays only
        assert all(data[k].dtype != object for k in data.files)


def test_cli_predict_defaults_to_generic_with_energy_to_four_figures(empty):
    p = _cli("estimator", "predict", "models/kws_dscnn.onnx", "-e", str(empty))
    assert p.returncode == 0, p.stderr
    lat = p.stdout.splitlines()[0]
    assert "cycles, predicted" in lat
    energy = p.stdout.splitlines()[1].split()[1]
    assert len(energy.replace(".", "").lstrip("0")) == 4
    sim = Predictor(ROOT / "models" / "kws_dscnn.onnx").session.simulate(
        GENERIC, SimOptions(timing_only=True)
    )
    assert f"{sim.latency_cycles:,}" in lat  # the simulator's default preset: generic


def test_cli_predict_input_shape_and_batch_forms(empty, tmp_path):
    out = tmp_path / "p.json"
    p = _cli("estimator", "predict", "models/kws_lstm.onnx", "models/kws_gru.onnx", "-e",
             str(empty), "--input-shape", "input=1x49x10", "-p", "generic", "-p", "ndp120",
             "--json", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = json.loads(out.read_text())
    assert [(Path(r["model"]).stem, r["hardware"]) for r in rows] == [
        ("kws_lstm", "generic"), ("kws_lstm", "ndp120"), ("kws_gru", "generic"),
        ("kws_gru", "ndp120")]  # fmt: skip
    assert len(p.stdout.strip().splitlines()) == 5  # header + one line per pair
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [x.onnx]\nparameters:\n  macro_cols: [16, 32, 64]\n"
                    "  clock_mhz: [50, 100]\n")  # fmt: skip
    p = _cli("estimator", "predict", "models/kws_dscnn.onnx", "-e", str(empty), "--sweep",
             str(spec), "--json", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert len({r["config_id"] for r in json.loads(out.read_text())}) == 6


def test_cli_predict_warns_outside_the_training_hardware(empty):
    p = _cli("estimator", "predict", "models/kws_dscnn.onnx", "-e", str(empty), "--set",
             "macro_cols=4")  # fmt: skip
    assert p.returncode == 0
    assert "warning: generic lies outside the training hardware (macro_cols=4 (trained on " \
        "8..128)): the prediction is the analytic model's" in p.stderr
    inside = _cli("estimator", "predict", "models/kws_dscnn.onnx", "-e", str(empty))
    assert inside.returncode == 0 and "warning" not in inside.stderr


@pytest.mark.parametrize("args, message", [
    (["models/nope.onnx"], "model file not found"),
    (["models/kws_dscnn.onnx", "-e", "nope.npz"], "estimator file not found"),
    (["models/kws_lstm.onnx", "--input-shape", "input=1xx"], "--input-shape expects"),
    (["models/kws_dscnn.onnx", "-p", "nope"], "unknown preset"),
])  # fmt: skip
def test_cli_predict_bad_input_is_one_line_exit_2(empty, args, message):
    args = args if "-e" in args else [*args, "-e", str(empty)]
    p = _cli("estimator", "predict", *args)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


TINY_DATASET = ["--models-per-family", "2", "--train-configs", "1", "--eval-configs", "1",
                "--family", "dscnn", "--family", "mobilenetv2", "--no-real"]  # fmt: skip


def test_dataset_trains_and_evaluates(tmp_path):
    data = tmp_path / "d"
    p = _cli("dataset", str(data), *TINY_DATASET, "-j", "1", "-q")
    assert p.returncode == 0, p.stderr
    assert "0 failed" in p.stdout
    p = _cli("estimator", "train", str(data), "-o", str(tmp_path / "e.npz"), "-q")
    assert p.returncode == 0, p.stderr
    p = _cli("estimator", "eval", str(data), "-q", "--json", str(tmp_path / "r.json"))
    assert p.returncode == 0, p.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    assert set(r["lofo"]["per_family"]) == {"dscnn", "mobilenetv2"}
    assert len(r["configs"]) == 4 and r["lofo"]["all"]["latency"]["n"] == 16
    assert r["lofo"]["all"]["latency"]["within_10"] == 1.0
    again = _cli("dataset", str(data), *TINY_DATASET, "-j", "1", "-q")
    assert "0 points simulated" in again.stdout and "already done" in again.stdout


def _start(data: Path, batch_points: int) -> subprocess.Popen:
    args = ["ndpsim", "dataset", str(data), *TINY_DATASET, "--eval-configs", "6", "-j", "2"]
    code = (  # the CLI's entry point, with small batches so that files appear early
        f"import sys; from ndpsim.sweep import store; store.BATCH_POINTS = {batch_points}; "
        f"sys.argv = {args!r}; from ndpsim.cli import main; main()"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip


def _stored(data: Path) -> list[tuple]:
    import pyarrow.dataset as ds

    if not list((data / "sim" / "points").rglob("part-*.parquet")):
        return []
    t = ds.dataset(str(data / "sim" / "points"), format="parquet", partitioning="hive")
    t = t.to_table(columns=["model_sha256", "config_id"])
    return list(zip(*(t[c].to_pylist() for c in t.column_names), strict=True))


def _wait_for_points(data: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not _stored(data):
        time.sleep(0.05)


def test_dataset_killed_with_sigkill_resumes_to_every_point_once(tmp_path):
    data = tmp_path / "d"
    proc = _start(data, 2)
    _wait_for_points(data)
    os.killpg(proc.pid, signal.SIGKILL)  # the run, its pool and workers
    proc.wait()
    before = len(_stored(data))
    total = 2 * 2 * 9 + 2 * 1  # networks x (3 presets + 6), train networks x 1 train config
    assert 0 < before < total, "the kill must land mid-run"
    p = _cli("dataset", str(data), *TINY_DATASET, "--eval-configs", "6", "-j", "2", "-q")
    assert p.returncode == 0, p.stderr
    assert f"{total - before} points simulated" in p.stdout
    keys = _stored(data)
    assert len(keys) == len(set(keys)) == total


def test_dataset_ctrl_c_exits_130_without_worker_tracebacks(tmp_path):
    data = tmp_path / "d"
    proc = _start(data, 2)
    _wait_for_points(data)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted: finished points are stored" in err and "Traceback" not in err
