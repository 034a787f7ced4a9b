"""The Python API and the report: consistent totals, JSON round trip, agreement."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import ndpsim
from ndpsim import SimOptions, SimulationReport
from ndpsim.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_report_totals_are_consistent():
    r = ndpsim.simulate(ROOT / "models" / "ic_resnet8.onnx", "ndp120")
    assert r.macs == sum(lay.macs for lay in r.layers) == 12_501_632
    assert math.isclose(r.energy_uj, sum(r.energy_breakdown_uj.values()))
    dyn_layers = sum(
        v for lay in r.layers for k, v in lay.energy_breakdown_uj.items() if k != "leakage"
    )
    assert math.isclose(r.dynamic_energy_uj, dyn_layers, rel_tol=1e-9)
    assert r.latency_cycles == max(lay.end_cycle for lay in r.layers)
    assert math.isclose(r.latency_us, r.latency_cycles / r.clock_mhz)
    assert all(0 <= u <= 1 for u in r.utilization.values())
    assert r.agreement[0].reference == "onnxruntime" and r.agreement[0].top1_agreement is not None


def test_report_json_round_trip():
    r = ndpsim.simulate(
        ROOT / "models" / "ad_fc_autoencoder.onnx", options=SimOptions(timing_only=True)
    )
    again = SimulationReport.model_validate_json(r.model_dump_json())
    assert again == r and again.mode == "timing-only" and again.agreement == []


def test_timing_only_equals_full_timing():
    path = ROOT / "models" / "kws_dscnn.onnx"
    t = ndpsim.simulate(path, "generic", SimOptions(timing_only=True))
    f = ndpsim.simulate(path, "generic", SimOptions(compare_reference=False))
    assert t.latency_cycles == f.latency_cycles and t.energy_uj == f.energy_uj


KWS = ROOT / "models" / "kws_dscnn.onnx"


def test_arrays_in_give_arrays_out_bit_identical_to_the_npz_path(tmp_path):
    x = np.random.default_rng(3).standard_normal((1, 49, 10, 1)).astype(np.float32)
    r = ndpsim.simulate(KWS, "ndp120", inputs={"input": x})
    out = r.outputs["output"]
    assert isinstance(out, np.ndarray) and out.shape == (1, 12)
    np.savez(tmp_path / "x.npz", input=x)
    via_file = ndpsim.simulate(KWS, "ndp120", SimOptions(inputs=str(tmp_path / "x.npz"),
                                                         include_outputs=True))  # fmt: skip
    assert via_file.outputs["output"].tobytes() == out.tobytes()
    assert via_file.agreement == r.agreement and r.agreement[0].samples == 1


def test_a_batch_is_run_on_one_plan_and_summarized(tmp_path):
    xs = np.random.default_rng(4).standard_normal((6, 1, 49, 10, 1)).astype(np.float32)
    r = ndpsim.simulate(KWS, "ndp120", inputs=[{"input": x} for x in xs])
    assert r.outputs["output"].shape == (6, 1, 12)
    (a,) = r.agreement
    assert a.samples == 6 and a.top1_agreed is not None and 0 <= a.top1_agreed <= 6
    assert a.top1_agreement == (a.top1_agreed == 6)
    # the same samples as one array with a sample axis: the same outputs and summary
    stacked = ndpsim.simulate(KWS, "ndp120", inputs={"input": xs})
    assert stacked.outputs["output"].tobytes() == r.outputs["output"].tobytes()
    assert stacked.agreement == r.agreement
    # a sample's outputs are the ones it gets alone with the batch as calibration set
    np.savez(tmp_path / "calib.npz", input=xs)
    one = ndpsim.simulate(KWS, "ndp120", inputs={"input": xs[2]},
                          calibration=str(tmp_path / "calib.npz"))  # fmt: skip
    assert one.outputs["output"].tobytes() == r.outputs["output"][2].tobytes()
    again = SimulationReport.model_validate_json(r.model_dump_json())
    assert again.outputs["output"].tolist() == r.outputs["output"].tolist()


def test_keyword_options_override_the_options_object():
    r = ndpsim.simulate(KWS, "generic", SimOptions(timing_only=False), timing_only=True)
    assert r.mode == "timing-only" and r.outputs is None


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"inputs": {"nope": np.zeros(490)}}, "no array named 'input'"),
        ({"inputs": {"input": np.zeros(7)}}, "has 7 elements"),
        ({"inputs": [{"input": np.zeros((2, 490))}]}, "one sample per entry"),
        ({"inputs": []}, "empty"),
        ({"timing_onyl": True}, "timing_onyl"),
    ],
)
def test_bad_inputs_are_user_errors(fields, needle):
    with pytest.raises(UserError, match=needle):
        ndpsim.simulate(KWS, "generic", **fields)
