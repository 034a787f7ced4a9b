"""One pipeline from a model to a report, and the one place that assembles it.

    session = Session("models/kws_dscnn.onnx")
    report = session.simulate(load_preset("ndp120"), SimOptions(timing_only=True))

Stages, in order (each owned by its module; a Session only strings them together and caches):
  1. import     frontend.load_model       ONNX -> checked, folded Graph             once
  2. passes     lower.passes.run_passes   Graph -> Graph (identities, BN, fusion)    once
  3. lower      lower.lower               Graph x structure -> Program    cached per structure
  4. quantize   sim.quantize / model_plan calibration samples -> QuantPlan
  5. bind       sim.bind                  Program x QuantPlan -> Params
  6. run        sim.run                   timing, and the arithmetic unless timing-only
  7. report     report.build              counters -> SimulationReport

Every caller goes through a Session: the API (`ndpsim.simulate`), sweep workers, the
estimator's measurements, precision sensitivity, the trace and the ONNX backend. Programs
are cached per (structural fields of the hardware, precision rules): hardware that differs
only in timing or energy fields re-runs the core on the same program (docs/architecture.md,
"Structural vs timing fields").
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ndpsim.config import STRUCTURAL_FIELDS, HardwareConfig, load_preset
from ndpsim.errors import ConfigError, InputShapeWarning, UserError
from ndpsim.inputs import calibration_inputs, samples_of
from ndpsim.ir import Graph
from ndpsim.options import SimOptions
from ndpsim.program_cache import ProgramCache

if TYPE_CHECKING:  # the modules behind these import onnx or numba: loaded when used
    from ndpsim.lower import Program
    from ndpsim.quant.bind import Params
    from ndpsim.quant.params import QuantPlan
    from ndpsim.quant.ptq import PTQOptions
    from ndpsim.report.schema import Agreement, SimulationReport
    from ndpsim.sim.run import RunResult

PROGRAM_CACHE_SIZE = 8  # lowered programs kept per session: sweeps order points by structure
REFERENCE_CACHE_SIZE = 4  # onnxruntime results kept per session (one per input sample)


def structural_key(hw: HardwareConfig) -> tuple:
    """What of `hw` the lowered program depends on (config.STRUCTURAL_FIELDS)."""
    return tuple(repr(getattr(hw, f)) for f in sorted(STRUCTURAL_FIELDS))


def hardware_of(hardware: HardwareConfig | str | None) -> HardwareConfig:
    """A HardwareConfig, a preset name, or None for `generic`."""
    if hardware is None or isinstance(hardware, str):
        return load_preset(hardware or "generic")
    if isinstance(hardware, HardwareConfig):
        return hardware
    raise ConfigError("hardware must be a HardwareConfig or a preset name")


MAX_BRANCH_RUNS = 16  # runs to settle the branches of one input (each If flips at most once)


def _import(
    model: Any, input_shapes: Mapping | None, input_values: Mapping | None, branches: dict
) -> tuple[Graph, str, str]:
    """(graph, display name, sha256 of the ONNX bytes; '' for an imported Graph). An If on
    run-time data without a choice in `branches` takes its then-branch, and `branches` is
    completed with it."""
    from ndpsim.frontend import load_model
    from ndpsim.frontend.control import BranchNeeded
    from ndpsim.lower.registry import SUPPORTED_OPS

    if isinstance(model, Graph):
        return model, model.name, ""
    while True:
        try:
            graph = load_model(model, input_shapes=input_shapes, input_values=input_values,
                               supported=SUPPORTED_OPS, branches=branches)  # fmt: skip
            break
        except BranchNeeded as need:
            if need.name in branches or len(branches) >= MAX_BRANCH_RUNS:
                raise
            branches[need.name] = True
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        data = path.read_bytes() if path.is_file() else b""
        return graph, str(path), hashlib.sha256(data).hexdigest()
    raw = model if isinstance(model, bytes) else model.SerializeToString()
    return graph, graph.name, hashlib.sha256(raw).hexdigest()


def execute(
    program: Program,
    hw: HardwareConfig,
    inputs: dict[str, np.ndarray],
    calibration: list[dict[str, np.ndarray]],
    ptq: PTQOptions | None = None,
    plan: QuantPlan | None = None,
    params: Params | None = None,
) -> tuple[RunResult, QuantPlan, dict[str, np.ndarray]]:
    """Quantize post-training on `calibration` (or use `plan`; a quantized model brings its
    own), run the integer datapath on `inputs` (with `params`, `plan`'s bound parameters,
    when given); returns the run, the plan and the dequantized outputs."""
    from ndpsim.quant.bind import bind
    from ndpsim.sim.run import read_value, run

    if plan is None:
        plan = quantization_plan(program, hw, calibration, ptq)
    res = run(program, hw, params if params is not None else bind(program, plan), inputs, plan)
    outs = {o: read_value(program, res, o, plan) for o in program.outputs}
    return res, plan, outs


def quantization_plan(
    program: Program,
    hw: HardwareConfig,
    calibration: list[dict[str, np.ndarray]],
    ptq: PTQOptions | None = None,
) -> QuantPlan:
    """The model's own plan (an imported quantized model), else one calibrated post-training
    on `calibration` (float runs)."""
    if program.graph.quant is not None:
        from ndpsim.quant.model_plan import model_plan

        return model_plan(program)
    from ndpsim.sim.calibrate import calibrate

    return calibrate(program, hw, calibration, ptq)


def float_outputs(
    program: Program, hw: HardwareConfig, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The program's outputs on the float datapath (the model's float arithmetic, tiled)."""
    from ndpsim.quant.bind import bind
    from ndpsim.sim.run import read_value, run

    res = run(program, hw, bind(program, None), inputs)
    return {o: read_value(program, res, o, None) for o in program.outputs}


class Session:
    """A model imported once; lowered per hardware structure; run and reported on demand.

    `model` is an ONNX path, bytes, a ModelProto, or an imported `Graph` (then onnxruntime
    cannot be the reference). `input_shapes` / `input_values` fix symbolic dims and inputs
    at import (docs/architecture.md, the frontend's stages). With a `cache`
    (program_cache.py) lowered programs are also kept on disk, and the model is imported
    only when a program is not there: a repeat run of a model file imports no onnx."""

    def __init__(
        self,
        model: Any,
        *,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_values: Mapping[str, Sequence[float]] | None = None,
        name: str | None = None,
        cache: ProgramCache | None = None,
    ):
        self._import_options = (input_shapes, input_values)
        self._model = model
        self.source = None if isinstance(model, Graph) else model  # what onnxruntime reads
        self.input_values = input_values
        self._programs: OrderedDict[tuple, Program] = OrderedDict()
        # onnxruntime's outputs per input sample: they do not depend on the hardware
        self._ort: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._graph: Graph | None = None
        self._variants: dict[tuple, Graph] = {}
        self._notes: list[str] = []  # what the import assumed (InputShapeWarning)
        data = _model_bytes(model)
        # a model file without external data (whose entries would name a b"location"): its
        # bytes are the whole model, so their hash keys its programs on disk
        self._cache = cache if data is not None and b"location" not in data else None
        if self._cache is None:  # import now: a bad model fails here, as it always did
            self._import_default()
            self.name = name or self._default_name
        else:
            self.sha256 = hashlib.sha256(data).hexdigest()
            self.name = name or str(model)

    def _import_default(self) -> None:
        chosen: dict[str, bool] = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputShapeWarning)
            imported, self._default_name, self.sha256 = _import(
                self._model, *self._import_options, chosen
            )
        for w in caught:  # passed on, and what the import assumed is kept with its programs
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self._notes = [str(w.message) for w in caught if w.category is InputShapeWarning]
        from ndpsim.lower.passes import run_passes

        self._graph = run_passes(imported)  # Ifs on run-time data: their then-branches
        self._variants[tuple(sorted(chosen.items()))] = self._graph

    @property
    def graph(self) -> Graph:
        """The model after passes (Ifs on run-time data: their then-branches)."""
        if self._graph is None:
            self._import_default()
        return self._graph

    @property
    def data_ifs(self) -> list[str]:
        """The model's Ifs on run-time data seen so far, in graph order."""
        names = self._default_data_ifs() if self._graph is None else []
        names += [b.name for g in self._variants.values() for b in g.branches]
        return list(dict.fromkeys(names))

    def _default_data_ifs(self) -> list[str]:
        """The Ifs on run-time data of the default import: kept in the disk cache beside the
        programs, so a cached run (a timing-only CLI run asks) imports nothing."""
        if self._cache is None:
            self._import_default()  # its graph joins the variants: the caller lists it
            return []
        key = self._cache.key(self.sha256, self._import_options, "data_ifs")
        names = self._cache.get(key)
        if names is None:
            self._import_default()
            names = [b.name for b in self._graph.branches]
            self._cache.put(key, names)
        return list(names)

    def variant(self, branches: Mapping[str, bool] | None = None) -> Graph:
        """The graph with each If on run-time data replaced by the branch `branches` picks
        (If name -> True for then; an If it does not name takes its then-branch)."""
        if not branches:
            return self.graph
        key = tuple(sorted(branches.items()))
        graph = self._variants.get(key)
        if graph is None:
            from ndpsim.lower.passes import run_passes

            chosen = dict(branches)
            graph = run_passes(_import(self._model, *self._import_options, chosen)[0])
            self._variants[key] = graph
        stray = set(branches) - set(self.data_ifs)
        if stray:
            raise UserError(f"no If on run-time data named {sorted(stray)[0]!r} (the model's: "
                            f"{', '.join(self.data_ifs) or 'none'})")  # fmt: skip
        return graph

    def program(
        self,
        hw: HardwareConfig,
        precision: Sequence[str] = (),
        branches: Mapping[str, bool] | None = None,
    ) -> Program:
        """The model lowered onto `hw` with per-layer `precision` rules and the data
        branches `branches` (cached in memory, and on disk with a cache)."""
        wanted = (structural_key(hw), tuple(precision), tuple(sorted((branches or {}).items())))
        program = self._programs.get(wanted)
        if program is None and self._cache is not None:
            disk_key = self._cache.key(self.sha256, self._import_options, wanted)
            entry = self._cache.get(disk_key)
            if entry is None:
                program = self._lower(hw, precision, branches)
                self._cache.put(disk_key, (program, self._notes))
            else:
                program, notes = entry
                if self._graph is None:  # said again, as the import said it
                    for note in notes:
                        warnings.warn(note, InputShapeWarning, stacklevel=2)
                    if not branches:
                        self._graph = program.graph  # the default variant, as imported then
                        self._notes = notes
                        key = tuple((b.name, b.taken) for b in program.graph.branches)
                        self._variants[key] = program.graph
        elif program is None:
            program = self._lower(hw, precision, branches)
        self._programs[wanted] = program
        self._programs.move_to_end(wanted)
        if len(self._programs) > PROGRAM_CACHE_SIZE:
            self._programs.popitem(last=False)
        return program

    def _lower(self, hw, precision, branches) -> Program:
        """The variant lowered, with the MAC layers of every data branch it does not run
        (each If's other branch, lowered in the variant that takes it) as its idle layers:
        both branches' weights stay resident on the part."""
        from ndpsim.lower import lower
        from ndpsim.lower.lower import gated_nodes

        graph = self.variant(branches)
        program = lower(graph, hw, list(precision), passed=True)
        for b in graph.branches:
            flipped = {x.name: x.taken for x in graph.branches} | {b.name: not b.taken}
            other = self.variant(flipped)
            mine = gated_nodes(other, b.name)
            idle = lower(other, hw, list(precision), passed=True).layers
            program.idle_layers += [ly for ly in idle if ly.kind == "mac" and ly.name in mine]
        return program

    def time(
        self,
        hw: HardwareConfig,
        precision: Sequence[str] = (),
        branches: Mapping[str, bool] | None = None,
    ) -> RunResult:
        """Timing and counters only: no arithmetic (equal to a full run's, docs)."""
        from ndpsim.sim.run import run

        return run(self.program(hw, precision, branches), hw)

    def params(
        self, program: Program, hw: HardwareConfig, opts: SimOptions | None = None
    ) -> tuple[QuantPlan, Params]:
        """The quantization plan (the model's own, or calibrated on `opts`' inputs: by default
        one seeded random sample) and the integer parameters the machine holds."""
        from ndpsim.quant.bind import bind

        opts = opts or SimOptions()
        samples, _ = samples_of(program.graph, opts)
        plan = quantization_plan(program, hw, calibration_inputs(program.graph, opts, samples),
                                 opts.ptq)  # fmt: skip
        return plan, bind(program, plan)

    def reference(
        self, program: Program, hw: HardwareConfig, inputs: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray]]:
        """(name, outputs) of the float reference: onnxruntime when installed and the model
        came as ONNX, else the simulator's own float datapath."""
        if self.source is not None:
            from ndpsim.report.agreement import onnxruntime_outputs

            key = tuple((n, hashlib.sha256(np.ascontiguousarray(x)).hexdigest())
                        for n, x in sorted(inputs.items()))  # fmt: skip
            ref = self._ort.get(key)
            if ref is None:
                ref = onnxruntime_outputs(self.source, inputs, fixed=self.input_values)
            if ref is not None:
                self._ort[key] = ref
                if len(self._ort) > REFERENCE_CACHE_SIZE:
                    self._ort.popitem(last=False)
                return "onnxruntime", ref
        return "ndpsim-float", float_outputs(program, hw, inputs)

    def report(
        self,
        program: Program,
        res: RunResult,
        hw: HardwareConfig,
        mode: str,
        **extra: Any,
    ) -> SimulationReport:
        """The report of one run (`extra`: build_report's agreement / outputs / with_layers)."""
        from ndpsim.report.build import build_report

        return build_report(program, res, hw, model=self.name, model_sha256=self.sha256,
                            mode=mode, **extra)  # fmt: skip

    def execute_settled(
        self,
        hw: HardwareConfig,
        inputs: dict[str, np.ndarray],
        calibration: list[dict[str, np.ndarray]],
        opts: SimOptions,
        plans: dict[int, tuple[Program, QuantPlan | None, Params]] | None = None,
    ) -> tuple[Program, RunResult, dict[str, np.ndarray]]:
        """Run the integer datapath on `inputs` with the branches the data picks: start from
        `opts.branches` (else then-branches), read each If's condition, and when the data
        picked the other branch, run again with it (later Ifs may change with it).
        Returns the program run, the run and its outputs (conditions included). `plans`
        keeps each program's quantization plan and parameters across calls (a batch or a
        stream calibrates and binds once). `opts.float_datapath`: float32 arithmetic, no
        quantization (the plan is None)."""
        chosen = dict(opts.branches or {})
        plans = {} if plans is None else plans
        for _ in range(MAX_BRANCH_RUNS):
            program = self.program(hw, opts.precision, chosen)
            known = plans.get(id(program))
            if opts.float_datapath:
                from ndpsim.quant.bind import bind

                if program.graph.quant is not None:
                    raise UserError("the float datapath runs float models; this one is "
                                    "quantized (it brings its own integer arithmetic)")  # fmt: skip
                if known is None or known[0] is not program:
                    plans[id(program)] = (program, None, bind(program, None))
            elif known is None or known[0] is not program:  # (an id may be reused)
                from ndpsim.quant.bind import bind
                from ndpsim.sim.precompile import integer_kernels_alongside

                # a float model calibrates on the float datapath: on a first run, the
                # integer kernels compile meanwhile in a helper process
                float_model = program.graph.quant is None
                with integer_kernels_alongside(program.instrs["op"] if float_model else ()):
                    plan = quantization_plan(program, hw, calibration, opts.ptq)
                    plans[id(program)] = (program, plan, bind(program, plan))
            _, plan, params = plans[id(program)]
            if plan is None:  # the float datapath
                from ndpsim.sim.run import read_value, run

                res = run(program, hw, params, inputs)
                outs = {o: read_value(program, res, o, None) for o in program.outputs}
            else:
                res, _, outs = execute(program, hw, inputs, calibration, opts.ptq, plan, params)
            for k, b in enumerate(program.graph.branches):
                if bool(np.asarray(outs[b.cond]).reshape(-1)[0] != 0) != b.taken:
                    # the Ifs before it ran as the data picks: keep them, flip this one
                    chosen = {x.name: x.taken for x in program.graph.branches[:k]}
                    chosen[b.name] = not b.taken
                    break
            else:
                return program, res, outs
        raise UserError(f"the data-dependent Ifs did not settle in {MAX_BRANCH_RUNS} runs")

    def simulate(self, hw: HardwareConfig, opts: SimOptions | None = None) -> SimulationReport:
        """The whole pipeline on `hw`: timing only (the branches `opts.branches` names), or
        quantize, run (the branches the data picks) and compare. With several input samples
        (a list, or a leading sample axis) every one is run on one quantization plan: the
        report is the first sample's run, its agreement is over all samples and its outputs
        are stacked along a first, sample axis."""
        opts = opts or SimOptions()
        program = self.program(hw, opts.precision, opts.branches)
        if opts.timing_only:
            from ndpsim.sim.run import run

            return self.report(program, run(program, hw), hw, "timing-only")
        samples, batched = samples_of(program.graph, opts)
        calib = calibration_inputs(program.graph, opts, samples)
        plans: dict[int, tuple[Program, QuantPlan | None, Params]] = {}
        runs = [self.execute_settled(hw, x, calib, opts, plans) for x in samples]
        program, res, _ = runs[0]
        outs = []
        for prog, _, out in runs:  # a condition the host reads is not a model output
            conds = {b.cond for b in prog.graph.branches if not b.declared}
            outs.append({k: v for k, v in out.items() if k not in conds})
        rows: list[Agreement] = []
        if opts.compare_reference:
            from ndpsim.report.agreement import agreement

            refs = [
                self.reference(prog, hw, x) for (prog, _, _), x in zip(runs, samples, strict=True)
            ]
            rows = agreement(program.graph, outs, [r for _, r in refs], refs[0][0])
        show = opts.include_outputs
        if show is None:
            show = isinstance(opts.inputs, (dict, list))  # arrays in: arrays out
        outputs = None
        if show:
            outputs = {k: np.stack([o[k] for o in outs]) if batched else outs[0][k]
                       for k in outs[0]}  # fmt: skip
        return self.report(program, res, hw, "full", agreement=rows, outputs=outputs)


def _model_bytes(model: Any) -> bytes | None:
    """The bytes of a model given as a path to a regular file, else None (bytes, a
    ModelProto, a Graph, a missing file: imported at once)."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        return path.read_bytes() if path.is_file() else None
    return None
