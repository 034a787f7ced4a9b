"""The Python API and the report: consistent totals, JSON round trip, agreement."""

from __future__ import annotations

import math
from pathlib import Path

import ndpsim
from ndpsim import SimOptions, SimulationReport

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
