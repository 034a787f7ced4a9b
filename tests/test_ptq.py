"""Post-training quantization options of float models: calibration inputs, min-max vs
percentile, per-channel vs per-tensor weights, symmetric vs asymmetric activations,
accumulator and pre-activation widths; and the `ndpsim precision` command end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ndpsim
from ndpsim import SimOptions
from ndpsim.api import random_inputs
from ndpsim.config import load_preset
from ndpsim.frontend import load_model
from ndpsim.lower import lower
from ndpsim.quant.ptq import PTQOptions
from ndpsim.sim.calibrate import calibrate, collect_ranges

ROOT = Path(__file__).resolve().parents[1]


def relu_model(channel_scale: bool = False) -> onnx.ModelProto:
    """conv -> relu -> conv: a non-negative intermediate (asymmetric helps) and, with
    `channel_scale`, output channels whose weights differ 100x in size (per-channel helps)."""
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    if channel_scale:
        w2 *= np.geomspace(0.01, 1.0, 6, dtype=np.float32)[:, None, None, None]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1] * 4, name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], pads=[1] * 4, name="conv2"),
    ]
    g = helper.make_graph(
        nodes, "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 8, 8])],
        [helper.make_tensor(n, TensorProto.FLOAT, a.shape, a.reshape(-1))
         for n, a in (("w1", w1), ("w2", w2))],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _sqnr(model, hw="generic", **opts) -> float:
    opts.setdefault("calibration_samples", 8)
    return ndpsim.simulate(model, hw, SimOptions(**opts)).agreement[0].sqnr_db


def test_asymmetric_activations_use_the_range_of_a_non_negative_value():
    g = load_model(relu_model())
    program = lower(g, load_preset("generic"), ["default=a4"])
    xs = [random_inputs(g, i) for i in range(4)]
    sym = calibrate(program, load_preset("generic"), xs)
    asym = calibrate(program, load_preset("generic"), xs, PTQOptions(activations="asymmetric"))
    r1 = next(n for n in program.graph.nodes if n.name == "conv1").outputs[0]
    assert sym.tensors[r1].zero_point == 0
    # [0, max] over all 16 levels: half the step of the symmetric [-max, max], zero at qmin
    assert asym.tensors[r1].zero_point == -8
    assert asym.tensors[r1].scale == pytest.approx(sym.tensors[r1].scale * 7 / 15)
    rules = ("default=a4",)
    assert _sqnr(relu_model(), precision=rules, ptq=PTQOptions(activations="asymmetric")) > (
        _sqnr(relu_model(), precision=rules) + 1.0
    )


def test_per_channel_weights_beat_per_tensor_on_uneven_channels():
    m = relu_model(channel_scale=True)
    per_ch = _sqnr(m, precision=("default=w4",))
    per_t = _sqnr(m, precision=("default=w4",), ptq=PTQOptions(weights="per-tensor"))
    assert per_ch > per_t + 3.0, (per_ch, per_t)


def test_percentile_clips_the_range_and_calibration_inputs_matter(tmp_path):
    g = load_model(relu_model())
    hw = load_preset("generic")
    program = lower(g, hw)
    xs = [random_inputs(g, i) for i in range(4)]
    mm = collect_ranges(program, hw, xs)
    pc = collect_ranges(program, hw, xs, PTQOptions(method="percentile", percentile=99.0))
    assert all(pc.values[v][1] < mm.values[v][1] for v in ("x", "y"))
    # an .npz of calibration inputs is read as samples along the leading axis
    npz = tmp_path / "calib.npz"
    np.savez(npz, x=np.stack([x["x"] for x in xs]))
    a = ndpsim.simulate(relu_model(), hw, SimOptions(calibration=str(npz), include_outputs=True))
    b = ndpsim.simulate(relu_model(), hw, SimOptions(calibration_samples=1, include_outputs=True))
    assert not np.array_equal(a.outputs["y"], b.outputs["y"])


def test_accumulator_bits_saturate_the_sums():
    # sums of 16-bit activations x 8-bit weights overflow 16-bit accumulators (saturating)
    wide = _sqnr(relu_model(), precision=("default=a16acc32",))
    narrow = _sqnr(relu_model(), precision=("default=a16acc16",))
    assert narrow < wide - 3.0, (wide, narrow)


def test_preactivation_stage_is_bounded_and_narrow_ones_cost_accuracy():
    hw = load_preset("generic")
    base = _sqnr(relu_model(), hw)
    pre16 = _sqnr(relu_model(), hw.with_(preactivation_bits=16))
    pre10 = _sqnr(relu_model(), hw.with_(preactivation_bits=10))
    assert pre16 != base and abs(pre16 - base) < 1.0  # a second rounding, 8 bits finer
    assert pre10 < pre16  # 2 extra fractional bits round more coarsely
    assert load_preset("ndp120").preactivation_bits == 16


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndpsim", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)  # fmt: skip


def test_precision_command_suggests_a_spec_that_simulate_accepts(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(relu_model(), model)
    spec = tmp_path / "spec.yaml"
    p = _cli("precision", str(model), "--bits", "4,2", "--eval-samples", "2",
             "--calibration-samples", "2", "--target-sqnr", "10", "--save", str(spec))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "conv1" in p.stdout and "w2" in p.stdout and "suggested assignment" in p.stdout
    assert spec.read_text().startswith("precision:")
    q = _cli("profile", str(model), "--precision", str(spec))
    assert q.returncode == 0, q.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "models/kws_dscnn.onnx", "-P", "conv*=w3"], "3-bit weights are not"),
        (["simulate", "models/kws_dscnn.onnx", "-P", "nosuch*=w4"], "matches no layer"),
        (["simulate", "models/kws_dscnn.onnx", "-q", "method=best"], "--quant method"),
        (["precision", "models/kws_dscnn.onnx", "--bits", "4,x"], "--bits expects"),
    ],
)
def test_bad_precision_input_exits_2_with_one_line(args, message):
    p = _cli(*args)
    assert p.returncode == 2 and message in p.stderr and len(p.stderr.strip().splitlines()) == 1
