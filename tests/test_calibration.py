"""The ndp120 preset reproduces the published NDP120 MLPerf Tiny silicon figures, predicts each
network from a fit on the others (benchmarks/calibrate_ndp120.py), and operating points are
config."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ndpsim.api import SimOptions, simulate
from ndpsim.config import load_preset, resolve_hardware
from ndpsim.errors import ConfigError
from ndpsim.report.power import always_on

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
_spec = importlib.util.spec_from_file_location(
    "calibrate_ndp120", REPO / "benchmarks" / "calibrate_ndp120.py"
)
cal = sys.modules.setdefault("calibrate_ndp120", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(cal)
POINTS = cal.read_measurements(cal.DEFAULT_CSV)


def _label(p) -> str:
    return p.label


def test_measurements_are_the_published_silicon_figures():
    # MLCommons tiny_results v1.0 (KWS, IC) and v1.3 (streaming wake word), closed/syntiant
    got = {
        (p.network, p.voltage_v): (round(p.latency_us, 3), p.energy_uj, p.average_power_mw)
        for p in POINTS
    }
    assert got == {
        ("kws_dscnn", 0.9): (4367.2, 31.537, None),
        ("kws_dscnn", 1.1): (1481.4, 43.802, None),
        ("ic_resnet8", 0.9): (15975.0, 101.833, None),
        ("ic_resnet8", 1.1): (5122.0, 139.367, None),
        ("sww_streaming_wakeword", 1.0): (699.0, None, 0.5067),
    }


@pytest.mark.parametrize("p", POINTS, ids=_label)
def test_ndp120_matches_silicon(p):
    hw = load_preset("ndp120").with_(voltage_v=p.voltage_v, clock_mhz=p.clock_mhz)
    r = simulate(p.model, hw, SimOptions(timing_only=True))
    assert abs(r.latency_us / p.latency_us - 1) <= 0.05
    if p.energy_uj is not None:
        assert abs(r.energy_uj / p.energy_uj - 1) <= 0.10
    else:  # always-on: average power at the measured inference period
        avg = always_on(r, hw, 1e3 / p.period_ms).average_power_mw
        assert abs(avg / p.average_power_mw - 1) <= 0.10


def test_preset_holds_the_constants_the_script_fits():
    hw = load_preset("ndp120")
    fitted = cal.fit(hw, POINTS, {})
    for k in cal.FITTED:  # the preset is the fit on all points, rounded as the script rounds
        assert getattr(fitted, k) == pytest.approx(getattr(hw, k), rel=0.01), k


@pytest.fixture(scope="module")
def folds():
    return cal.lono(load_preset("ndp120"), POINTS, {})


@pytest.mark.parametrize("p", POINTS, ids=_label)
def test_leave_one_network_out(folds, p):
    """Each network predicted by the constants fitted on the other two networks only."""
    err_latency, err_energy = cal.predict(folds[p.network], p).errors(p)
    assert abs(err_latency) <= 0.10
    assert abs(err_energy) <= 0.15


def test_fewer_fitted_constants_than_measurements():
    measurements = 2 * len(POINTS)  # a latency and an energy (or average power) per point
    assert len(cal.FITTED) < measurements
    for n in cal.networks(POINTS):  # also in every fold
        assert len(cal.FITTED) < 2 * sum(p.network != n for p in POINTS)


def test_power_follows_busy_units_not_cycles():
    """Silicon at 0.9 V: KWS draws 7.2 uJ/ms, IC 6.4 (IC's array idles a larger share of its
    cycles); a per-cycle energy model gives them the same power, the per-unit one the order."""
    hw = load_preset("ndp120").at_operating_point("0.9V")
    power = {}
    for name in ("kws_dscnn", "ic_resnet8"):
        r = simulate(MODELS / f"{name}.onnx", hw, SimOptions(timing_only=True))
        power[name] = r.energy_uj / r.latency_us * 1e3
    assert power["ic_resnet8"] < 0.95 * power["kws_dscnn"]


def test_sww_runs_at_more_macs_per_cycle_than_kws_and_ic():
    """Silicon, core-clock cycles once the per-layer fixed time is split off (cycles + f x t at
    two clocks): KWS 20.7, IC 25.9 MACs/cycle; SWW about 30 (its 0.699 ms less 10 layers'
    setup). The equations give the order: SWW has few output positions per MAC."""
    hw = load_preset("ndp120").at_operating_point("1.0V").with_(layer_setup_us=0.0)
    rate = {}
    for name in ("kws_dscnn", "ic_resnet8", "sww_streaming_wakeword"):
        r = simulate(MODELS / f"{name}.onnx", hw, SimOptions(timing_only=True))
        rate[name] = r.macs / r.latency_cycles
    assert rate["sww_streaming_wakeword"] > rate["ic_resnet8"] > rate["kws_dscnn"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,voltage_v\nkws_dscnn,0.9\n", "missing column"),
        (
            "model,voltage_v,clock_mhz,latency_ms,energy_uj\nkws_dscnn,0.9,30.7,abc,3\n",
            "latency_ms must be a number",
        ),
        (
            "model,voltage_v,clock_mhz,latency_ms,energy_uj\nkws_dscnn,0.9,30.7,4,\n",
            "give energy_uj",
        ),
        (
            "model,voltage_v,clock_mhz,latency_ms,energy_uj\nnope,0.9,30.7,4,3\n",
            "no such ONNX file",
        ),
        (
            "model,voltage_v,clock_mhz,latency_ms,energy_uj\nkws_dscnn,-1,30.7,4,3\n",
            "voltage_v must be positive",
        ),
        ("model,voltage_v,clock_mhz,latency_ms,energy_uj\n", "no measurements"),
    ],
)
def test_bad_measurements_file_is_one_line_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    assert cal.main(["--measurements", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_user_csv_calibrates_and_saves_a_loadable_config(tmp_path, capsys):
    """A user's chip: measurements of their own (here: the KWS and IC rows) -> a config file."""
    rows = [line for line in cal.DEFAULT_CSV.read_text().splitlines() if "sww" not in line]
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "mine.yaml"
    assert cal.main(["--measurements", str(path), "--save", str(out)]) == 0
    hw = resolve_hardware(config=out)
    assert hw.name == "ndp120" and hw.position_cycles > 0 and hw.fixed_power_mw >= 0
    assert "leave-one-network-out" in capsys.readouterr().out


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
