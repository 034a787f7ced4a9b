"""The Chrome / Perfetto trace: loads as JSON, has a track per unit, spans nest per track."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ndpsim.api import trace_model
from ndpsim.config import load_preset

ROOT = Path(__file__).resolve().parents[1]


def _check_nesting(trace: dict) -> dict[int, str]:
    """Assert every "X" span of a track lies inside or entirely after the open ones."""
    names = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}  # fmt: skip
    spans: dict[int, list] = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            assert e["tid"] in names and e["dur"] >= 0
            spans.setdefault(e["tid"], []).append((e["ts"], -e["dur"], e["ts"] + e["dur"]))
    eps = 1e-6
    for tid, ss in spans.items():
        stack: list[float] = []
        for ts, _, end in sorted(ss):
            while stack and ts >= stack[-1] - eps:
                stack.pop()
            assert not stack or end <= stack[-1] + eps, f"span crosses its parent on {names[tid]}"
            stack.append(end)
    return names


@pytest.mark.parametrize("model", ["kws_dscnn", "ic_resnet8"])
def test_fresh_trace_nests_and_has_unit_tracks(model):
    hw = load_preset("ndp120").at_operating_point("0.9V")
    trace, report = trace_model(ROOT / "models" / f"{model}.onnx", hw)
    names = set(_check_nesting(json.loads(json.dumps(trace))).values())
    assert {"core0.macro0", "core0.vector", "dma", "external memory", "layers"} <= names
    ends = [e["ts"] + e["dur"] for e in trace["traceEvents"] if e["ph"] == "X"]
    assert max(ends) == pytest.approx(report.latency_us)


def test_committed_kws_trace_loads_and_nests():
    trace = json.loads((ROOT / "docs" / "kws_trace.json").read_text())
    assert trace["otherData"]["hardware"] == "ndp120"
    _check_nesting(trace)
    assert sum(e["ph"] == "X" for e in trace["traceEvents"]) < 500  # grouped: small
