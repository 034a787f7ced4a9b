"""An ONNX backend (`onnx.backend.base.Backend`) that simulates models, and the coverage of
the official ONNX node tests (`onnx.backend.test`) it passes, per op.

The node-test cases are generated offline from the definitions the onnx wheel ships
(`onnx.backend.test.case.node.collect_testcases`): no test data and no network needed.

- A case's weights arrive as graph inputs. Like a compiler for a weight-stationary machine,
  the backend binds the inputs that the op takes as parameters (`PARAM_INPUTS`: weights,
  biases, shapes, indices, scales) as initializers before lowering; every other input is
  run-time data placed in SRAM by the host.
- Float cases run the lowered program on the float datapath (fp32 arithmetic, the same
  tiling, padding and schedule) and must match the expected outputs to 1e-4 (absolute and
  relative). Integer cases run the integer datapath with every value at scale 1 and the
  range of its dtype, and must match exactly.

`python -m ndpsim.onnx_backend` prints included / passing counts per op;
`--write` rewrites the README's op table between its markers.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.base import Backend, BackendRep

from ndpsim.config import HardwareConfig, load_preset
from ndpsim.errors import UserError
from ndpsim.lower.registry import OPS, SUPPORTED_OPS
from ndpsim.quant.bind import bind
from ndpsim.quant.params import QParams, QuantPlan
from ndpsim.session import Session, float_outputs
from ndpsim.sim.run import read_value, run

# Input positions each op takes as parameters (bound as constants before lowering).
PARAM_INPUTS: dict[str, tuple[int, ...]] = {op: e.param_inputs for op, e in OPS.items()}
TOLERANCE = 1e-4  # float cases: |got - want| <= 1e-4 + 1e-4 |want|
# A small machine, so that the node tests exercise folding and tiling.
HARDWARE = load_preset("generic").with_(macro_rows=16, macro_cols=8)
README_BEGIN, README_END = "<!-- node-tests:begin -->", "<!-- node-tests:end -->"
INCLUDE_FILE = Path(__file__).resolve().parent / "_data" / "node_tests_included.txt"


def bind_parameters(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose parameter inputs (PARAM_INPUTS) are initializers."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    params = {
        node.input[i]
        for node in m.graph.node
        for i in PARAM_INPUTS.get(node.op_type, ())
        if i < len(node.input) and node.input[i] in inputs
    }
    for name in sorted(params):
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(inputs[name]), name))
    keep = [v for v in m.graph.input if v.name not in params]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    return m


def _exact_plan(program, graph) -> QuantPlan:
    """Integer datapath at scale 1: every value quantized to itself, saturating at its
    dtype's range (within the int32 arena)."""
    tensors = {}
    for name in program.placements:
        dt = np.dtype(graph.tensors[name].dtype) if name in graph.tensors else np.dtype("int32")
        info = np.iinfo(dt) if dt.kind in "iu" else np.iinfo(np.int32)
        lo, hi = max(int(info.min), -(2**31)), min(int(info.max), 2**31 - 1)
        tensors[name] = QParams(1.0, 0, lo, hi)
    return QuantPlan(tensors, 8)


def simulate_outputs(
    model: onnx.ModelProto, inputs: dict[str, np.ndarray], hw: HardwareConfig = HARDWARE
) -> dict[str, np.ndarray]:
    """Lower `model` with its parameters bound and run it: float cases on the float
    datapath, integer cases on the integer datapath at scale 1."""
    session = Session(bind_parameters(model, inputs))
    graph, program = session.graph, session.program(hw)
    data = {n: np.asarray(inputs[n]) for n in graph.inputs}
    integer = all(np.asarray(v).dtype.kind in "iub" for v in data.values()) and bool(data)
    if integer:
        plan = _exact_plan(program, graph)
        res = run(program, hw, bind(program, plan), data, plan)
        return {o: read_value(program, res, o, plan) for o in program.outputs}
    return float_outputs(program, hw, data)


class NdpsimRep(BackendRep):
    """A prepared model: parameters are bound when the inputs (weights included) arrive."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model

    def run(self, inputs, **kwargs):  # noqa: ANN001 - the onnx Backend signature
        names = [v.name for v in self.model.graph.input]
        feed = dict(zip(names, inputs, strict=False)) if isinstance(inputs, list) else inputs
        outs = simulate_outputs(self.model, feed)
        return tuple(outs[v.name] for v in self.model.graph.output)


class NdpsimBackend(Backend):
    """`onnx.backend.base.Backend` over the simulator (CPU device only: it is a model)."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> NdpsimRep:
        return NdpsimRep(model)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


@dataclass
class CaseResult:
    name: str
    op: str
    passed: bool
    reason: str  # "" when passed: the refusal or the mismatch


def node_cases() -> list:
    """The onnx node-test cases of single supported ops, generated from onnx's definitions."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return [
        c
        for c in cases
        if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in SUPPORTED_OPS
    ]


def _compare(want: np.ndarray, got: np.ndarray, integer: bool) -> str:
    want = np.asarray(want)
    if got.size != want.size:
        return f"{got.size} elements, expected {want.size}"
    got = got.reshape(want.shape)
    if integer:
        bad = int(np.sum(got != want))
        return f"{bad} of {want.size} integers differ" if bad else ""
    ok = np.abs(got - want) <= TOLERANCE + TOLERANCE * np.abs(want)
    ok |= np.isnan(want) & np.isnan(got)
    if ok.all():
        return ""
    return f"max abs error {np.nanmax(np.abs(got - want)):.3g} (tolerance {TOLERANCE})"


def run_case(case) -> CaseResult:
    """Simulate one node-test case against its expected outputs."""
    op = case.model.graph.node[0].op_type
    names = [v.name for v in case.model.graph.input]
    for inputs, outputs in case.data_sets:
        feed = {n: np.asarray(v) for n, v in zip(names, inputs, strict=False)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = simulate_outputs(case.model, feed)
        except UserError as exc:
            return CaseResult(case.name, op, False, f"refused: {exc}")
        for vi, want in zip(case.model.graph.output, outputs, strict=False):
            integer = np.asarray(want).dtype.kind in "iub"
            why = _compare(want, got[vi.name], integer)
            if why:
                return CaseResult(case.name, op, False, f"{vi.name}: {why}")
    return CaseResult(case.name, op, True, "")


def included_cases() -> set[str]:
    return {ln.strip() for ln in INCLUDE_FILE.read_text().splitlines() if ln.strip()}


def coverage_rows(results: list[CaseResult], included: set[str]) -> list[tuple[str, int, int, int]]:
    """Per supported op: (op, node-test cases, included, passing among the included)."""
    total, inc, ok = Counter(), Counter(), Counter()
    for r in results:
        total[r.op] += 1
        if r.name in included:
            inc[r.op] += 1
            ok[r.op] += int(r.passed)
    return [(op, total[op], inc[op], ok[op]) for op in sorted(SUPPORTED_OPS)]


def render_table(rows: list[tuple[str, int, int, int]]) -> str:
    """The README's op table (markdown)."""
    lines = [
        "| op | onnx node tests | included | passing |",
        "|---|---:|---:|---:|",
        *[f"| {op} | {n} | {i} | {p} |" for op, n, i, p in rows],
        f"| **all** | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | "
        f"{sum(r[3] for r in rows)} |",
    ]
    return "\n".join(lines)


def write_readme(table: str, readme: Path) -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    readme.write_text(pattern.sub(f"{README_BEGIN}\n{table}\n{README_END}", text))


def main(argv: list[str]) -> int:
    """Run every node test of a supported op; print per-op counts and every failure's reason.
    `--write`: update the README table; `--include`: rewrite the include list from the
    passing cases (review the diff: a case leaving the list is a regression)."""
    cases = node_cases()
    results = []
    for i, case in enumerate(cases):
        results.append(run_case(case))
        print(f"\r{i + 1}/{len(cases)} node tests", end="", file=sys.stderr)
    print(file=sys.stderr)
    if "--include" in argv:
        INCLUDE_FILE.write_text("".join(f"{r.name}\n" for r in results if r.passed))
    rows = coverage_rows(results, included_cases())
    for r in results:
        if not r.passed:
            print(f"  excluded {r.name}: {r.reason}")
    table = render_table(rows)
    print(table)
    if "--write" in argv:
        write_readme(table, Path(__file__).resolve().parents[1] / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
