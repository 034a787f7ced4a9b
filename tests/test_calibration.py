"""The ndp120 preset reproduces the published NDP120 MLPerf Tiny silicon figures (the
calibration set of benchmarks/calibrate_ndp120.py), and operating points are config."""

from __future__ import annotations

from pathlib import Path

import pytest

from ndpsim.api import SimOptions, simulate
from ndpsim.config import load_preset, resolve_hardware
from ndpsim.errors import ConfigError

MODELS = Path(__file__).resolve().parents[1] / "models"
# MLCommons tiny_results_v1.0, closed/syntiant: (latency us, energy uJ)
SILICON = {
    ("kws_dscnn", "0.9V"): (4367.2, 31.537),
    ("kws_dscnn", "1.1V"): (1481.4, 43.802),
    ("ic_resnet8", "0.9V"): (15975.0, 101.833),
    ("ic_resnet8", "1.1V"): (5122.0, 139.367),
}


@pytest.mark.parametrize(("model", "point"), list(SILICON))
def test_ndp120_matches_silicon(model, point):
    hw = load_preset("ndp120").at_operating_point(point)
    r = simulate(MODELS / f"{model}.onnx", hw, SimOptions(timing_only=True))
    lat, energy = SILICON[(model, point)]
    assert abs(r.latency_us / lat - 1) <= 0.05
    assert abs(r.energy_uj / energy - 1) <= 0.10


def test_operating_points_set_voltage_and_clock():
    hw = resolve_hardware("ndp120", operating_point="0.9V")
    assert (hw.voltage_v, hw.clock_mhz) == (0.9, 30.7)
    # --set applies after the operating point
    assert resolve_hardware("ndp120", None, ["clock_mhz=40"], "0.9V").clock_mhz == 40
    with pytest.raises(ConfigError, match="unknown operating point"):
        resolve_hardware("ndp120", operating_point="2.0V")


def test_layer_setup_us_is_clock_independent_time():
    hw = load_preset("ndp120")
    fast = hw.at_operating_point("1.1V").layer_setup_total_cycles - hw.layer_setup_cycles
    slow = hw.at_operating_point("0.9V").layer_setup_total_cycles - hw.layer_setup_cycles
    # the same microseconds at either clock: cycles scale with the clock (to one cycle)
    assert abs(fast / 98.7 - hw.layer_setup_us) <= 1 / 98.7 and fast > 0
    assert abs(slow / 30.7 - hw.layer_setup_us) <= 1 / 30.7 and slow > 0
