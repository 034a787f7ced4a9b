"""The public Python API: `simulate(model, hardware=..., options=...) -> SimulationReport`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from pydantic import BaseModel, ConfigDict, Field

from ndpsim.config import HardwareConfig, load_preset
from ndpsim.errors import ConfigError, UserError
from ndpsim.frontend import load_model
from ndpsim.ir import Graph
from ndpsim.lower import Program, lower
from ndpsim.report.build import build_report
from ndpsim.report.schema import Agreement, SimulationReport
from ndpsim.sim.bind import QuantPlan, bind
from ndpsim.sim.model_plan import model_plan
from ndpsim.sim.quantize import PTQOptions, calibrate
from ndpsim.sim.run import RunResult, read_value, run


class SimOptions(BaseModel):
    """How to simulate: timing only or full (functional), inputs, calibration, reference."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    timing_only: bool = False
    inputs: str | None = Field(None, description=".npz of model inputs (default: seeded random)")
    calibration: str | None = Field(
        None, description=".npz of calibration inputs (default: the inputs)"
    )
    calibration_samples: int = Field(
        0, ge=0, le=10_000, description="N seeded random calibration inputs (0: the inputs)"
    )
    seed: int = 0
    compare_reference: bool = True
    include_outputs: bool = False
    input_shapes: dict[str, tuple[int, ...]] | None = None
    input_values: dict[str, tuple[float, ...]] | None = Field(
        None, description="inputs fixed to constant values (resolves If on them)"
    )
    precision: tuple[str, ...] = Field(
        (), description="per-layer precision rules PATTERN=BITS over the hardware's own"
    )
    ptq: PTQOptions = PTQOptions()


def _model_bytes_and_graph(model: Any, input_shapes, input_values=None) -> tuple[Graph, str, str]:
    if isinstance(model, Graph):
        return model, model.name, ""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        data = path.read_bytes() if path.is_file() else b""
        return (
            load_model(path, input_shapes=input_shapes, input_values=input_values),
            str(path),
            hashlib.sha256(data).hexdigest(),
        )
    graph = load_model(model, input_shapes=input_shapes, input_values=input_values)
    raw = model if isinstance(model, bytes) else model.SerializeToString()
    return graph, graph.name, hashlib.sha256(raw).hexdigest()


def _load_npz(path: str, graph: Graph) -> list[dict[str, np.ndarray]]:
    """Inputs from an .npz: arrays named as the graph inputs; a leading sample axis allowed."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read inputs {path}: {exc}") from None
    samples: list[dict[str, np.ndarray]] = []
    for name in graph.inputs:
        if name not in data:
            raise UserError(f"{path}: no array named {name!r} (inputs: {', '.join(graph.inputs)})")
        arr = np.asarray(data[name], np.float32)
        shape = graph.tensors[name].shape
        batch = arr.reshape((-1, *shape)) if arr.size % max(1, int(np.prod(shape))) == 0 else None
        if batch is None:
            raise UserError(f"{path}: {name!r} has {arr.size} elements; shape is {shape}")
        for i, x in enumerate(batch):
            if len(samples) <= i:
                samples.append({})
            samples[i][name] = x
    return samples


def random_inputs(graph: Graph, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(graph.tensors[n].shape).astype(np.float32) for n in graph.inputs}


def calibration_inputs(
    graph: Graph, opts: SimOptions, samples: list[dict[str, np.ndarray]]
) -> list[dict[str, np.ndarray]]:
    """The .npz given, else `calibration_samples` seeded random inputs (seeds after the
    measured input's), else the measured inputs themselves."""
    if opts.calibration:
        return _load_npz(opts.calibration, graph)
    if opts.calibration_samples:
        return [random_inputs(graph, opts.seed + 1 + i) for i in range(opts.calibration_samples)]
    return samples


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of `got` against `ref`, in dB."""
    return _sqnr_db(ref, got)


def _sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((ref - got) ** 2))
    signal = float(np.sum(ref**2))
    return float("inf") if noise == 0 else 10 * np.log10(max(signal, 1e-30) / noise)


def agreement(
    graph: Graph, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], ref_name: str
) -> list[Agreement]:
    rows = []
    producers = graph.producers()
    for name, got in outputs.items():
        ref = reference[name].reshape(got.shape)
        top1 = None  # class scores: a softmax output of one sample
        src = producers.get(name)
        if src is not None and src.op_type == "Softmax" and got.size == got.shape[-1]:
            top1 = bool(np.argmax(got) == np.argmax(ref))
        rows.append(
            Agreement(
                reference=ref_name,
                output=name,
                sqnr_db=_sqnr_db(ref, got),
                max_abs_error=float(np.max(np.abs(ref - got))),
                top1_agreement=top1,
            )
        )
    return rows


def onnxruntime_outputs(
    model: Any, inputs: dict[str, np.ndarray], fixed: dict | None = None
) -> dict[str, np.ndarray] | None:
    """onnxruntime's float result, or None when onnxruntime is not installed. `fixed`: inputs
    fixed to values (SimOptions.input_values), fed in the dtype the model declares."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    src = (
        str(model)
        if isinstance(model, (str, os.PathLike))
        else (model if isinstance(model, bytes) else model.SerializeToString())
    )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feed = dict(inputs)
    for i in sess.get_inputs():
        if fixed and i.name in fixed:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(
                onnx.helper.np_dtype_to_tensor_dtype(np.dtype(_ORT_TYPES.get(i.type, "float32")))
            )
            shape = [d for d in i.shape if isinstance(d, int)]
            feed[i.name] = np.asarray(fixed[i.name], dtype).reshape(shape)
    return dict(zip(names, sess.run(None, feed), strict=True))


_ORT_TYPES = {"tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(float)": "float32",
              "tensor(double)": "float64", "tensor(bool)": "bool"}  # fmt: skip


def execute(
    program: Program,
    hw: HardwareConfig,
    inputs: dict[str, np.ndarray],
    calibration: list[dict[str, np.ndarray]],
    ptq: PTQOptions | None = None,
    plan: QuantPlan | None = None,
) -> tuple[RunResult, QuantPlan, dict]:
    """Quantize post-training on `calibration` (or use `plan`), run the integer datapath on
    `inputs`; returns the run, the plan and the dequantized outputs."""
    if plan is None:
        plan = (
            model_plan(program)
            if program.graph.quant is not None
            else calibrate(program, hw, calibration, ptq)
        )
    res = run(program, hw, bind(program, plan), inputs, plan)
    outs = {o: read_value(program, res, o, plan) for o in program.outputs}
    return res, plan, outs


def simulate(
    model: Any,
    hardware: HardwareConfig | str | None = None,
    options: SimOptions | None = None,
    program: Program | None = None,
) -> SimulationReport:
    """Simulate `model` (an ONNX path, bytes, ModelProto or an imported Graph) on `hardware`
    (a HardwareConfig or a preset name; default `generic`). `program`, when given, is the
    model already lowered for hardware with the same STRUCTURAL_FIELDS (sweeps reuse it)."""
    opts = options or SimOptions()
    if hardware is None or isinstance(hardware, str):
        hw = load_preset(hardware or "generic")
    elif isinstance(hardware, HardwareConfig):
        hw = hardware
    else:
        raise ConfigError("hardware must be a HardwareConfig or a preset name")
    graph, name, digest = _model_bytes_and_graph(model, opts.input_shapes, opts.input_values)
    program = program if program is not None else lower(graph, hw, list(opts.precision))
    if opts.timing_only:
        res = run(program, hw)
        return build_report(program, res, hw, model=name, model_sha256=digest, mode="timing-only")
    samples = _load_npz(opts.inputs, graph) if opts.inputs else [random_inputs(graph, opts.seed)]
    calib = calibration_inputs(graph, opts, samples)
    res, _, outs = execute(program, hw, samples[0], calib, opts.ptq)
    rows: list[Agreement] = []
    if opts.compare_reference:
        ref = None
        if not isinstance(model, Graph):
            ref = onnxruntime_outputs(model, samples[0], fixed=opts.input_values)
        ref_name = "onnxruntime"
        if ref is None:  # no onnxruntime: compare with the simulator's own float datapath
            fres = run(program, hw, bind(program, None), samples[0])
            ref = {o: read_value(program, fres, o, None) for o in program.outputs}
            ref_name = "ndpsim-float"
        rows = agreement(graph, outs, ref, ref_name)
    outputs = {k: v.tolist() for k, v in outs.items()} if opts.include_outputs else None
    return build_report(
        program,
        res,
        hw,
        model=name,
        model_sha256=digest,
        mode="full",
        agreement=rows,
        outputs=outputs,
    )
