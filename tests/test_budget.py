"""Memory budgets: pass / fail, the overflowing layers and by how much."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ndpsim.api import SimOptions, simulate
from ndpsim.config import load_preset
from ndpsim.errors import UserError
from ndpsim.report.budget import check, parse_bytes

ROOT = Path(__file__).resolve().parents[1]
IC = ROOT / "models" / "ic_resnet8.onnx"


def test_parse_bytes_units():
    assert parse_bytes("65536", "x") == 65536
    assert parse_bytes("64KiB", "x") == 65536 and parse_bytes("64kB", "x") == 64000
    assert parse_bytes("1MB", "x") == 10**6 and parse_bytes("1.5MiB", "x") == 3 << 19
    for bad in ("", "-1", "0", "12XB", "lots"):
        with pytest.raises(UserError):
            parse_bytes(bad, "--budget-weights")


def test_budget_names_overflowing_layers():
    hw = load_preset("ndp120")
    r = simulate(IC, hw, SimOptions(timing_only=True))
    assert check(r, hw).ok  # the part's own capacities: it fits
    b = check(r, hw, activation_budget=40 * 1024)
    assert not b.ok and b.weights_fit and not b.activations_fit
    over = {x.name: x.activation_overflow_bytes for x in b.layers if x.activation_overflow_bytes}
    live = {x.name: x.live_activation_bytes for x in b.layers}
    assert over and all(over[n] == live[n] - 40 * 1024 for n in over)
    assert max(live.values()) == b.peak_activation_bytes
    assert any("activations" in a for a in b.advice)
    w = check(r, hw, weight_budget=1024)
    assert not w.weights_fit and w.weight_bytes >= r.weight_bytes


def test_cli_budget_exit_code_and_json(tmp_path):
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "ndpsim", "simulate", str(IC), "-p", "ndp120",
                        "--timing-only", "--budget-activations", "40KiB", "--json", str(out)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 1 and "FAIL" in p.stdout
    assert json.loads(out.read_text())["budget"]["activations_fit"] is False
