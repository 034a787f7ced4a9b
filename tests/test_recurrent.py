"""Recurrent keyword-spotting models exported from PyTorch (models/generate_recurrent.py):
they simulate, agree with onnxruntime at 8 bits, keep one copy of their weights however long
the sequence, take longer for longer sequences, and need their symbolic time axis given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import ndpsim
from ndpsim.api import SimOptions
from ndpsim.config import load_preset
from ndpsim.errors import ModelError
from ndpsim.frontend import load_model
from ndpsim.lower import lower

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]
MODELS = {"lstm": ROOT / "models" / "kws_lstm.onnx", "gru": ROOT / "models" / "kws_gru.onnx"}


def _shape(frames: int) -> dict:
    return {"input": (1, frames, 10)}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_kws_recurrent_model_agrees_with_onnxruntime_at_8_bits(kind):
    report = ndpsim.simulate(MODELS[kind], "ndp120", SimOptions(input_shapes=_shape(49)))
    (row,) = report.agreement
    assert row.reference == "onnxruntime"
    assert row.sqnr_db >= 20, f"{kind}: SQNR {row.sqnr_db:.1f} dB"
    assert report.macs > 0 and report.latency_us > 0


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_latency_grows_with_sequence_length_and_weights_do_not(kind):
    hw = load_preset("ndp120")
    lat, weights = [], []
    for frames in (8, 16, 32):
        report = ndpsim.simulate(
            MODELS[kind], hw, SimOptions(timing_only=True, input_shapes=_shape(frames))
        )
        lat.append(report.latency_cycles)
        weights.append(report.weight_bytes)
    assert lat[0] < lat[1] < lat[2]
    # the recurrence is sequential: doubling the frames nearly doubles the time
    assert lat[2] / lat[1] > 1.7 and lat[1] / lat[0] > 1.6
    assert weights[0] == weights[1] == weights[2]


def test_recurrent_weights_are_placed_once():
    model = onnx.load(MODELS["gru"])
    file_params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    hidden = [n.attribute[0].i for n in model.graph.node if n.op_type == "GRU"]
    program = lower(load_model(model, input_shapes=_shape(49)), load_preset("ndp120"))
    # each GRU's two biases Wb, Rb (6H) become one input-projection bias (3H) plus the hidden
    # gate's Rb_h (H) applied on the vector unit; every weight matrix is counted once,
    # although its recurrent MatMul runs 49 times
    assert sum(layer.params for layer in program.layers) == file_params - sum(3 * h for h in hidden)
    recurrent = [layer for layer in program.layers if layer.op_type == "MatMul"]
    assert len(recurrent) == 2 * 49
    assert sum(1 for layer in recurrent if layer.params) == 2


def test_symbolic_time_axis_must_be_given():
    with pytest.raises(ModelError, match="input 'input'.*--input-shape input=1x1x10"):
        load_model(MODELS["lstm"])
    p = subprocess.run([sys.executable, "-m", "ndpsim", "simulate", str(MODELS["lstm"])],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 2 and "--input-shape input=" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([sys.executable, "-m", "ndpsim", "simulate", str(MODELS["gru"]),
                        "--input-shape", "input=1x20x10", "--timing-only"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "latency" in p.stdout
