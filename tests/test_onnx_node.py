"""ONNX backend node tests (onnx.backend.test), generated offline from the onnx wheel's case
definitions and simulated: every case on the include list passes (float cases to 1e-4 on the
float datapath, integer cases exactly), and the README's op table is what this run measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ndpsim.lower.registry import SUPPORTED_OPS
from ndpsim.onnx_backend import (
    README_BEGIN,
    README_END,
    NdpsimBackend,
    coverage_rows,
    included_cases,
    node_cases,
    render_table,
    run_case,
)

ROOT = Path(__file__).resolve().parents[1]
INCLUDED = sorted(included_cases())


@pytest.fixture(scope="module")
def cases() -> dict:
    return {c.name: c for c in node_cases()}


@pytest.fixture(scope="module")
def results(cases) -> dict:
    return {name: run_case(c) for name, c in cases.items()}


def test_include_list_is_substantial_and_known(cases):
    assert len(INCLUDED) >= 200
    assert set(INCLUDED) <= set(cases), "include list names cases onnx does not define"


@pytest.mark.parametrize("name", INCLUDED)
def test_included_node_test_passes(name, results):
    r = results[name]
    assert r.passed, f"{name}: {r.reason}"


def test_excluded_cases_fail_with_a_reason(results):
    # a case left off the list must really fail (else it belongs on the list)
    for name, r in results.items():
        if name not in INCLUDED:
            assert not r.passed and r.reason, f"{name} passes: add it to the include list"


# Supported ops none of whose node tests can pass, and why (each checked to be refused).
NO_PASSABLE_CASE = {
    # every single-node Cast case is at opset 28 (beyond the accepted 25) or casts between
    # non-float types; ndpsim lowers only float or bool -> float Casts of activations (a wire)
    "Cast": "opset 28",
    # Not's three cases are at opset 1, older than the accepted 7 (tests/test_logic_ops.py
    # checks Not against onnxruntime instead)
    "Not": "opset 1",
}


def test_every_supported_op_with_node_tests_has_included_cases(results):
    rows = coverage_rows(list(results.values()), set(INCLUDED))
    missing = [op for op, n, inc, _ in rows if n and not inc]
    assert sorted(missing) == sorted(NO_PASSABLE_CASE), f"none included: {missing}"
    for op, why in NO_PASSABLE_CASE.items():
        cases = [r for r in results.values() if r.op == op]
        assert any(why in r.reason for r in cases)
    assert {r.op for r in results.values()} <= SUPPORTED_OPS


def test_readme_table_is_what_the_run_measures(results):
    table = render_table(coverage_rows(list(results.values()), set(INCLUDED)))
    text = (ROOT / "README.md").read_text()
    block = text[text.index(README_BEGIN) + len(README_BEGIN) : text.index(README_END)].strip()
    assert block == table, "stale: run `python -m ndpsim.onnx_backend --write`"


def test_backend_interface_runs_a_case(cases):
    case = cases["test_lstm_defaults"]
    inputs, outputs = case.data_sets[0]
    rep = NdpsimBackend.prepare(case.model)
    got = rep.run(list(inputs))
    assert NdpsimBackend.supports_device("CPU") and not NdpsimBackend.supports_device("CUDA")
    for g, want in zip(got, outputs, strict=True):
        np.testing.assert_allclose(g.reshape(want.shape), want, rtol=1e-4, atol=1e-4)
