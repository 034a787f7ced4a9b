"""The public Python API: `simulate(model, hardware=..., options=...) -> SimulationReport`.

A thin front to `ndpsim.session.Session`, the one pipeline every caller shares."""

from __future__ import annotations

from typing import Any

from ndpsim.config import HardwareConfig
from ndpsim.inputs import calibration_inputs, random_inputs
from ndpsim.options import SimOptions
from ndpsim.report.agreement import onnxruntime_outputs, sqnr_db
from ndpsim.report.schema import SimulationReport
from ndpsim.session import Session, execute, hardware_of

__all__ = [
    "SimOptions",
    "calibration_inputs",
    "execute",
    "onnxruntime_outputs",
    "random_inputs",
    "simulate",
    "sqnr_db",
]


def simulate(
    model: Any,
    hardware: HardwareConfig | str | None = None,
    options: SimOptions | None = None,
) -> SimulationReport:
    """Simulate `model` (an ONNX path, bytes, ModelProto or an imported Graph) on `hardware`
    (a HardwareConfig or a preset name; default `generic`). For many configurations of one
    model, keep a `Session` instead: it imports once and lowers once per structure."""
    opts = options or SimOptions()
    session = Session(model, input_shapes=opts.input_shapes, input_values=opts.input_values)
    return session.simulate(hardware_of(hardware), opts)
