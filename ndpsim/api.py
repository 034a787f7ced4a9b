"""The public Python API: `simulate(model, hardware, options, inputs=..., **fields)`.

A thin front to `ndpsim.session.Session`, the one pipeline every caller shares.

    report = ndpsim.simulate("models/kws_dscnn.onnx", "ndp120", inputs={"input": x})
    report.outputs["output"]          # an ndarray
    ndpsim.simulate(path, "ndp120", inputs=[{"input": x} for x in xs])  # a batch
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.inputs import calibration_inputs, random_inputs
from ndpsim.options import SimOptions
from ndpsim.program_cache import ProgramCache
from ndpsim.report.agreement import onnxruntime_outputs, sqnr_db
from ndpsim.report.schema import SimulationReport
from ndpsim.session import Session, execute, hardware_of
from ndpsim.sim.notice import compile_notice

__all__ = [
    "SimOptions",
    "calibration_inputs",
    "execute",
    "onnxruntime_outputs",
    "random_inputs",
    "simulate",
    "sqnr_db",
    "trace_model",
]


def simulate(
    model: Any,
    hardware: HardwareConfig | str | None = None,
    options: SimOptions | None = None,
    **fields: Any,
) -> SimulationReport:
    """Simulate `model` (an ONNX path, bytes, ModelProto or an imported Graph) on `hardware`
    (a HardwareConfig or a preset name; default `generic`).

    Options come as `options` (a SimOptions) and/or as its fields by keyword, which override
    it: `inputs={"input": x}` (arrays; the report's outputs are then arrays too), a list of
    such dicts (a batch: the agreement is over every sample and the outputs are stacked),
    `timing_only=True`, `precision=("conv*=w4a8",)`, ... A model file's lowered programs
    are kept in the user's cache (ndpsim/program_cache.py), so a repeat run imports no
    onnx. For many configurations of one model, keep a `Session` instead: it imports once
    and lowers once per structure. The first run in an empty kernel cache says on stderr
    that it compiles (ndpsim/sim/notice.py)."""
    opts = options or SimOptions()
    if fields:
        try:
            opts = SimOptions.model_validate({**dict(opts), **fields})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"][:1])
            raise UserError(f"simulate({where}=...): {err['msg']}") from None
    session = Session(model, input_shapes=opts.input_shapes, input_values=opts.input_values,
                      cache=ProgramCache.default())  # fmt: skip
    with compile_notice():
        return session.simulate(hardware_of(hardware), opts)


def trace_model(
    model: Any, hw: HardwareConfig, input_shapes: dict | None = None
) -> tuple[dict, SimulationReport]:
    """Lower and time `model` on `hw` (timing only); its Chrome / Perfetto trace
    (report/trace.py) and its report."""
    from ndpsim.report.trace import build_trace  # the simulator's run types: loads numba

    session = Session(model, input_shapes=input_shapes)
    program = session.program(hw)
    res = session.time(hw)
    report = session.report(program, res, hw, "timing-only")
    return build_trace(program, res, hw, report), report
