"""Always-on power: one inference every 1/rate seconds, idle in between.

average power = active energy x rate + idle power x (1 - duty cycle),
duty cycle    = latency x rate,
battery life  = capacity (mAh x V = mWh) / average power (mW).
The equations are in docs/machine_model.md ("Always-on power").
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict

from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.report.schema import SimulationReport

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(hz|khz|s|ms|us)?\s*$", re.I)
_TO_HZ = {"hz": 1.0, "khz": 1e3}
_TO_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


class AlwaysOn(BaseModel):
    """Average power of a part that runs one inference per period and idles in between."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_hz: float
    period_ms: float
    latency_ms: float
    duty_cycle: float
    active_energy_uj: float
    active_power_mw: float  # energy / latency while inferring
    idle_power_mw: float
    average_power_mw: float
    battery_mah: float | None = None
    battery_v: float | None = None
    battery_life_h: float | None = None


def parse_rate_hz(text: str, option: str = "--rate") -> float:
    """'50', '50Hz', '2kHz' are rates; '20ms', '0.5s', '500us' are periods (an audio hop)."""
    m = _RATE.match(str(text))
    if not m:
        raise UserError(f"{option} expects a rate (50, 50Hz) or a hop (20ms, 0.5s), got {text!r}")
    value, unit = float(m.group(1)), (m.group(2) or "hz").lower()
    if value <= 0 or not math.isfinite(value):
        raise UserError(f"{option} must be positive, got {text!r}")
    return value * _TO_HZ[unit] if unit in _TO_HZ else 1.0 / (value * _TO_S[unit])


def always_on(
    report: SimulationReport,
    hw: HardwareConfig,
    rate_hz: float,
    battery_mah: float | None = None,
    battery_v: float | None = None,
) -> AlwaysOn:
    """Average power at `rate_hz` inferences per second; UserError when one inference does not
    fit in the period."""
    latency_s = report.latency_us * 1e-6
    period_s = 1.0 / rate_hz
    if latency_s > period_s:
        raise UserError(
            f"rate {rate_hz:g} Hz leaves {period_s * 1e3:.4g} ms per inference but one takes "
            f"{latency_s * 1e3:.4g} ms on {hw.name} at {hw.voltage_v:g} V / {hw.clock_mhz:g} MHz "
            f"(at most {1 / latency_s:.4g} Hz)"
        )
    for name, v in (("--battery-mah", battery_mah), ("--battery-v", battery_v)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise UserError(f"{name} must be positive, got {v:g}")
    duty = latency_s * rate_hz
    idle_mw = hw.idle_power_total_mw
    # uJ x 1/s = uW; / 1000 -> mW
    avg_mw = report.energy_uj * rate_hz / 1e3 + idle_mw * (1.0 - duty)
    life_h = None
    if battery_mah is not None:
        battery_v = battery_v if battery_v is not None else 3.0
        life_h = battery_mah * battery_v / avg_mw
    return AlwaysOn(
        rate_hz=rate_hz,
        period_ms=period_s * 1e3,
        latency_ms=latency_s * 1e3,
        duty_cycle=duty,
        active_energy_uj=report.energy_uj,
        active_power_mw=report.energy_uj / report.latency_us * 1e3 if report.latency_us else 0.0,
        idle_power_mw=idle_mw,
        average_power_mw=avg_mw,
        battery_mah=battery_mah,
        battery_v=battery_v if battery_mah is not None else None,
        battery_life_h=life_h,
    )


def render(a: AlwaysOn) -> str:
    lines = [
        f"always-on {a.rate_hz:g} Hz (one inference every {a.period_ms:.4g} ms): duty cycle "
        f"{100 * a.duty_cycle:.2f}%, average power {a.average_power_mw:.4g} mW "
        f"(inference {a.active_energy_uj:.4g} uJ x {a.rate_hz:g} Hz + idle "
        f"{a.idle_power_mw:.4g} mW x {100 * (1 - a.duty_cycle):.1f}%)"
    ]
    if a.battery_life_h is not None:
        days = a.battery_life_h / 24
        lines.append(
            f"battery   {a.battery_mah:g} mAh at {a.battery_v:g} V: {a.battery_life_h:,.0f} h "
            f"({days:,.1f} days)"
        )
    return "\n".join(lines)
