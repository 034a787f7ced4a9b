"""What `simulate` adds to a report on request: always-on power and memory budgets."""

from __future__ import annotations

from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.report import budget as B
from ndpsim.report import power as P
from ndpsim.report.schema import SimulationReport


def extras(
    report: SimulationReport,
    rate: str | None,
    battery_mah: float | None,
    battery_v: float | None,
    check_budget: bool,
    budget_weights: str | None,
    budget_activations: str | None,
) -> tuple[SimulationReport, str, bool]:
    """(report with `always_on` / `budget` filled, text to print after the summary, whether
    the budget passed)."""
    if rate is None and (battery_mah is not None or battery_v is not None):
        raise UserError("--battery-mah / --battery-v need --rate (how often it infers)")
    if battery_v is not None and battery_mah is None:
        raise UserError("--battery-v needs --battery-mah (the capacity)")
    hw = HardwareConfig.model_validate(report.hardware)
    w = B.parse_bytes(budget_weights, "--budget-weights") if budget_weights else None
    a = B.parse_bytes(budget_activations, "--budget-activations") if budget_activations else None
    text, update, ok = "", {}, True
    if rate is not None:
        aon = P.always_on(report, hw, P.parse_rate_hz(rate), battery_mah, battery_v)
        update["always_on"] = aon.model_dump()
        text += "\n" + P.render(aon)
    if check_budget or w is not None or a is not None:
        b = B.check(report, hw, w, a)
        update["budget"] = b.model_dump()
        text += "\n" + B.render(b)
        ok = b.ok
    return (report.model_copy(update=update) if update else report), text, ok
