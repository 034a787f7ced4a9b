"""Hostile inputs: every malformed or malicious model is refused with a ModelError naming
the problem, quickly and without allocating what it declares."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from ndpsim.errors import ModelError
from ndpsim.frontend import load_model
from ndpsim.ir.graph import Graph
from ndpsim.lower.registry import SUPPORTED_OPS
from tests.hostile_corpus import hostile_cases, small_model

MAX_SECONDS = 2.0
MAX_PEAK_BYTES = 64 * 2**20

with tempfile.TemporaryDirectory() as _folder:
    CASE_NAMES = [name for name, _, _ in hostile_cases(Path(_folder))]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("hostile")
    return {name: (source, expected) for name, source, expected in hostile_cases(folder)}


def test_corpus_is_large_and_distinct() -> None:
    assert len(CASE_NAMES) >= 100
    assert len(set(CASE_NAMES)) == len(CASE_NAMES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_case_is_refused(name: str, cases: dict) -> None:
    source, expected = cases[name]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelError) as info:
            load_model(source, supported=SUPPORTED_OPS)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert elapsed < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES


def _shape_chain_model() -> bytes:
    """Flatten via Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as PyTorch exports it."""
    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["s"]),
        n("Gather", ["s", "zero"], ["b"], axis=0),
        n("Unsqueeze", ["b", "axes"], ["b1"]),
        n("Concat", ["b1", "minus1"], ["shape"], axis=0),
        n("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [0]),
        helper.make_tensor("minus1", TensorProto.INT64, [1], [-1]),
    ]
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return model.SerializeToString()


SEEDS = [small_model().SerializeToString(), _shape_chain_model()]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "set"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif kind == "truncate":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(mutated())
def test_mutated_models_give_graph_or_model_error(data: bytes) -> None:
    try:
        result = load_model(data, supported=SUPPORTED_OPS)
    except ModelError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(result, Graph)
    for name in result.outputs:
        assert all(d > 0 for d in result.tensors[name].shape) or name in result.constants
    assert all(isinstance(a, np.ndarray) for a in result.constants.values())
