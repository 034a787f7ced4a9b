"""Functional agreement on the real trained MLPerf Tiny models in ../shared (skipped when the
folder is absent): top-1 with onnxruntime on >= 95% of 100 seeded inputs for the three
classifiers, SQNR >= 20 dB on the autoencoder. Calibration uses 8 other seeded inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ndpsim.api import random_inputs
from ndpsim.config import load_preset
from ndpsim.frontend import load_model
from ndpsim.lower import lower
from ndpsim.quant.bind import bind
from ndpsim.sim.calibrate import calibrate
from ndpsim.sim.run import read_value, run

ort = pytest.importorskip("onnxruntime")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "mlperf_tiny_onnx"
N_INPUTS = 100


def _compare(name: str):
    path = SHARED / f"{name}_ref.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    hw = load_preset("generic")
    graph = load_model(path)
    program = lower(graph, hw)
    plan = calibrate(program, hw, [random_inputs(graph, 1000 + i) for i in range(8)])
    params = bind(program, plan)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = program.outputs[0]
    agree, sqnrs = 0, []
    for seed in range(N_INPUTS):
        x = random_inputs(graph, seed)
        got = read_value(program, run(program, hw, params, x, plan), out, plan).reshape(-1)
        ref = sess.run(None, x)[0].reshape(-1)
        agree += int(np.argmax(got) == np.argmax(ref))
        sqnrs.append(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - got) ** 2), 1e-30)))
    return agree / N_INPUTS, float(np.median(sqnrs))


@pytest.mark.parametrize("name", ["kws_dscnn", "vww_mobilenetv1_025", "ic_resnet8"])
def test_classifier_top1_agreement(name):
    top1, _ = _compare(name)
    assert top1 >= 0.95, f"{name}: top-1 agreement {top1:.2%}"


def test_autoencoder_sqnr():
    _, sqnr = _compare("ad_fc_autoencoder")
    assert sqnr >= 20.0, f"median SQNR {sqnr:.1f} dB"
