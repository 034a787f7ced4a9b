"""The estimator's analytic model (estimator/plan.py, replay.py) is the simulator evaluated
without instructions: per-layer first start and last end, every counter and the makespan
equal the simulator's, on models and hardware where weights stream, activations spill,
several cores share vector layers and dispatch binds."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx.backend.test
import pytest

from ndpsim.config import load_preset
from ndpsim.estimator.macs import geometry_row, plan_macs
from ndpsim.estimator.predict import Predictor
from ndpsim.isa import empty_program
from ndpsim.lower.tiling import pixel_block, tiles_for
from ndpsim.report.build import layer_spans
from ndpsim.session import Session
from ndpsim.sim.run import run

ROOT = Path(__file__).resolve().parents[1]
GENERIC = load_preset("generic")
# streamed weights (tiles > slots and <= slots), spilled activations, two cores
SMALL = GENERIC.with_(cores=2, macro_weight_sets=4, sram_bytes=32768)
# one weight set per macro (every layer reloads per pixel block), tiny macros and
# accumulators, dispatch three cycles an instruction
TINY = GENERIC.with_(macro_weight_sets=1, macros_per_core=2, sram_bytes=16384, macro_rows=64,
                     macro_cols=16, accumulator_entries_per_macro=256,
                     instruction_issue_cycles=3)  # fmt: skip
CONFIGS = {"generic": GENERIC, "ndp120": load_preset("ndp120"),
           "neural-engine": load_preset("neural-engine"), "small": SMALL, "tiny": TINY}  # fmt: skip
RECURRENT = {"input": (1, 49, 10)}


def assert_exact(session: Session, hw) -> None:
    program = session.program(hw)
    res = run(program, hw)
    first, last = layer_spans(program, res)
    ev = Predictor(session).evaluate(hw)
    assert ev.cycles == res.cycles
    np.testing.assert_array_equal(ev.first, first)
    np.testing.assert_array_equal(ev.last, last)
    np.testing.assert_array_equal(ev.counters, res.counters)
    assert ev.resident == program.weights_resident
    assert ev.spilled == len(program.spilled)


@pytest.mark.parametrize("model", sorted(p.name for p in (ROOT / "models").glob("*.onnx")))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_bundled_models_exactly(model, config):
    shapes = RECURRENT if model.startswith(("kws_lstm", "kws_gru")) else None
    assert_exact(Session(ROOT / "models" / model, input_shapes=shapes), CONFIGS[config])


def _function_ops_model() -> onnx.ModelProto:
    """A conv feeding the function unit, element-wise Max / Min / Div of two activations and
    ReduceSum / ReduceMax, big enough to spill on the small configurations."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((24, 8, 3, 3)).astype(np.float32), "w")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    N = helper.make_node
    nodes = [
        N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        N("Gelu", ["c"], ["g"]),
        N("Erf", ["c"], ["e"]),
        N("Abs", ["e"], ["a"]),
        N("Exp", ["e"], ["ex"]),
        N("Log", ["ex"], ["lg"]),
        N("Neg", ["lg"], ["ng"]),
        N("Max", ["g", "ng", "a"], ["mx"]),
        N("Min", ["g", "ng"], ["mn"]),
        N("ReduceSum", ["ex", "axes"], ["rs"], keepdims=1),
        N("Reciprocal", ["rs"], ["rc"]),
        N("Div", ["mx", "rs"], ["dv"]),
        N("Mul", ["dv", "rc"], ["m"]),
        N("Add", ["m", "mn"], ["s"]),
        N("ReduceMax", ["s", "axes"], ["y"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "funcs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 20, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 20, 20])], [w, axes],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize("config", list(CONFIGS))
def test_function_and_reduction_ops_exactly(config):
    assert_exact(Session(_function_ops_model()), CONFIGS[config])


def test_every_included_onnx_node_test_exactly():
    """Every op the simulator accepts, alone (the node tests), on generic and on tiny memories
    with two cores: vector kernels of every kind, grouped convs, recurrent rewrites."""
    from ndpsim.onnx_backend import bind_parameters, included_cases, node_cases

    included, n = set(included_cases()), 0
    hw2 = TINY.with_(cores=2, sram_bytes=1024, macro_rows=16, macro_cols=8,
                     accumulator_entries_per_macro=64)  # fmt: skip
    for case in node_cases():
        if case.name not in included:
            continue
        names = [v.name for v in case.model.graph.input]
        feed = dict(zip(names, (np.asarray(v) for v in case.data_sets[0][0]), strict=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = Session(bind_parameters(case.model, feed))
            for hw in (GENERIC, hw2):
                assert_exact(session, hw)
                n += 1
    assert n >= 400


def test_mac_tiling_classes_are_the_lowerings_tiles():
    """plan_macs' flat tiles, issue order and classes against lower/tiling.tiles_for."""
    from ndpsim.zoo.builder import GraphBuilder

    rng = np.random.default_rng(0)
    for _ in range(60):
        c_in, c_out = int(rng.integers(1, 200)), int(rng.integers(1, 200))
        k, g = int(rng.choice([1, 3, 5])), int(rng.choice([1, 2, 4]))
        if rng.random() < 0.3:
            g = c_out = c_in
        c_in, c_out = c_in // g * g or g, c_out // g * g or g
        b = GraphBuilder("t", (1, c_in, 12, 12))
        session = Session(b.build(b.conv(b.input, c_out, k, group=g)))
        layer = next(x for x in Predictor(session).planner(GENERIC)[0].st.layers if x.mac)
        geom = layer.mac.geom
        rows, cols = int(rng.choice([16, 32, 64])), int(rng.choice([4, 8, 16]))
        geo = np.array([geometry_row(geom, 8, 8, 8)], np.int64)
        blank = empty_program(1)
        head, _, tile_class, order, *_, reps, _ = plan_macs(geo, np.array([cols]), rows, 512,
                                                            blank[:0], blank)  # fmt: skip
        flat = [t for ct in tiles_for(geom, rows, cols) for t in ct]
        n_tiles, blocks, block_classes = int(head[0, 0]), int(head[2, 0]), int(head[6, 0])
        assert n_tiles == len(flat)
        for i, t in enumerate(flat):
            rep = reps[tile_class[i] * block_classes]
            assert (rep["rows"], rep["cols"]) == (t.rows, t.cols)
        n_kf = len(tiles_for(geom, rows, cols)[0])  # issue order: k-fold major
        assert sorted(order.tolist()) == list(range(len(flat)))
        assert order[: len(flat) // n_kf].tolist() == list(range(0, len(flat), n_kf))
        assert blocks == -(-geom.pixels // pixel_block(geom, max(t.cols for t in flat), 512))


LIGHT = sorted((Path(onnx.backend.test.__file__).parent / "data" / "light").glob("light_*.onnx"))


@pytest.mark.slow
@pytest.mark.parametrize("path", LIGHT, ids=lambda p: p.stem)
def test_real_networks_exactly(path):
    session = Session(path)
    for hw in (GENERIC, SMALL, load_preset("neural-engine")):
        assert_exact(session, hw)


@pytest.mark.slow
def test_every_zoo_family_exactly():
    from ndpsim.zoo.families import NETWORK_FAMILIES, build_network, sample_spec

    rng = np.random.default_rng(1)
    for family in NETWORK_FAMILIES:
        session = Session(build_network(sample_spec(family, rng)))
        for hw in (GENERIC, SMALL, load_preset("ndp120")):
            assert_exact(session, hw)


@pytest.mark.parametrize("model", ["ic_resnet8.onnx", "vww_mobilenetv1_025.onnx"])
def test_one_memory_plan_serves_a_range_of_sram_sizes(model):
    """Planner.spilled reuses a plan over the SRAM sizes it holds for: the same spilled
    values as lower/memory.plan_memory run afresh at each size."""
    from ndpsim.estimator.plan import Planner

    planner = Predictor(Session(ROOT / "models" / model)).planner(GENERIC)[0]
    total = sum(planner.st.nbytes.values())
    rng = np.random.default_rng(2)
    sizes = np.exp(rng.uniform(0, np.log(2 * total), 400)).astype(int).tolist()
    for size in sizes:
        fresh = Planner(planner.st).spilled(size)
        cached = planner.spilled(size)
        np.testing.assert_array_equal(cached[0], fresh[0])
        assert cached[1] == fresh[1]
    assert len(planner._spill_plans) < len(set(sizes)) / 2  # the ranges did serve


def test_a_model_files_planner_comes_from_the_program_cache(tmp_path):
    """With a program cache a repeat Predictor of a model file takes its planner from disk:
    no import, no lowering, and the same evaluation exactly."""
    from ndpsim.program_cache import ProgramCache

    cache = ProgramCache(tmp_path)
    path = ROOT / "models" / "ic_resnet8.onnx"
    first = Predictor(path, cache=cache).evaluate(SMALL)
    again = Predictor(path, cache=cache)
    ev = again.evaluate(SMALL)
    assert again.session._graph is None  # nothing imported
    assert ev.spilled == first.spilled and ev.resident == first.resident
    res = run(Session(path).program(SMALL), SMALL)  # and the simulator's, exactly
    assert ev.cycles == first.cycles == res.cycles
    np.testing.assert_array_equal(ev.counters, res.counters)
    np.testing.assert_array_equal(ev.last, first.last)


def test_the_planning_kernel_carries_the_digest_of_the_tiling_equations_it_compiles():
    """numba keys estimator/macs.py's cache on that file: its stamp must change with the
    lowering's scalar tiling equations it compiles in."""
    import hashlib
    import inspect

    from ndpsim.estimator import macs
    from ndpsim.lower import tiling

    h = hashlib.sha256()
    for f in (tiling.groups_per_tile_of, tiling.pixel_block_of, tiling.input_bytes_of):
        h.update(inspect.getsource(f).encode())
    assert macs.TILING_DIGEST == h.hexdigest()[:16], "update TILING_DIGEST in estimator/macs.py"
