"""Always-on power: average power, duty cycle and battery life at an inference rate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ndpsim.api import SimOptions, simulate
from ndpsim.config import load_preset
from ndpsim.errors import UserError
from ndpsim.report.power import always_on, parse_rate_hz

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "models" / "kws_dscnn.onnx"


def test_parse_rate_accepts_rates_and_hops():
    assert parse_rate_hz("50") == parse_rate_hz("50Hz") == pytest.approx(parse_rate_hz("20ms"))
    assert parse_rate_hz("0.5s") == 2.0 and parse_rate_hz("2kHz") == 2000.0
    for bad in ("", "-5", "0", "fast", "10 parsecs"):
        with pytest.raises(UserError):
            parse_rate_hz(bad)


def test_always_on_kws_average_power_and_battery_life():
    hw = load_preset("ndp120").at_operating_point("0.9V")
    r = simulate(KWS, hw, SimOptions(timing_only=True))
    a = always_on(r, hw, 50.0, battery_mah=220, battery_v=3.0)
    duty = r.latency_us * 1e-6 * 50
    assert a.duty_cycle == pytest.approx(duty)
    # energy per inference x rate + idle power for the rest of the time
    want_mw = r.energy_uj * 50 / 1000 + hw.idle_power_mw * (1 - duty)
    assert a.average_power_mw == pytest.approx(want_mw)
    assert a.battery_life_h == pytest.approx(220 * 3.0 / want_mw)
    # a slower rate draws less on average, and idle power is the floor
    slow = always_on(r, hw, 1.0)
    assert hw.idle_power_mw < slow.average_power_mw < a.average_power_mw


def test_rate_beyond_latency_is_refused():
    hw = load_preset("ndp120").at_operating_point("0.9V")
    r = simulate(KWS, hw, SimOptions(timing_only=True))
    with pytest.raises(UserError, match="at most"):
        always_on(r, hw, 2.0 / (r.latency_us * 1e-6))


def test_cli_always_on_and_its_errors():
    run = [sys.executable, "-m", "ndpsim", "simulate", str(KWS), "-p", "ndp120", "-O", "0.9V",
           "--timing-only"]  # fmt: skip
    p = subprocess.run([*run, "--rate", "20ms", "--battery-mah", "220"], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "average power" in p.stdout and "days" in p.stdout
    p = subprocess.run([*run, "--rate", "1000Hz"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "at most" in p.stderr
