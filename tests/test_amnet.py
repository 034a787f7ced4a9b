"""Data-dependent branches on the bundled AmNet-style encoder (models/amnet_kws.onnx): the
stream takes, hop by hop, the branch onnxruntime's arbitrator takes; the cost is the taken
branch's; both branches' weights stay resident and count in the memory budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ndpsim.config import load_preset
from ndpsim.options import SimOptions
from ndpsim.report.budget import check
from ndpsim.session import Session
from ndpsim.stream import run_stream, stream_inputs
from ndpsim.zoo.amnet import amnet_kws

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]
AMNET = ROOT / "models" / "amnet_kws.onnx"
HOPS = 120
GENERIC = load_preset("generic")


def _arbitrator(samples: list[dict]) -> tuple[list[bool], np.ndarray]:
    """onnxruntime's decision (`full`: the then-branch) and score per sample: the model with
    the If's condition and the score added as graph outputs."""
    model = onnx.load(AMNET)
    model.graph.output.extend([
        helper.make_tensor_value_info("full", TensorProto.BOOL, None),
        helper.make_tensor_value_info("score", TensorProto.FLOAT, None),
    ])  # fmt: skip
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    runs = [sess.run(["full", "score"], x) for x in samples]
    return [bool(f.reshape(-1)[0]) for f, _ in runs], np.array([float(s.reshape(-1)[0])
                                                                for _, s in runs])  # fmt: skip


@pytest.fixture(scope="module")
def stream():
    session = Session(AMNET)
    samples = stream_inputs(session, None, HOPS, seed=0)
    full, score = _arbitrator(samples)
    return session, samples, full, score


def test_committed_file_is_a_fresh_build():
    assert AMNET.read_bytes() == amnet_kws(seed=0).SerializeToString()


def test_float_stream_takes_onnxruntimes_branch_every_hop(stream):
    session, samples, full, _ = stream
    r = run_stream(session, GENERIC, samples, 32.0, SimOptions(float_datapath=True))
    taken = [h.branches["encoder"] == "then" for h in r.per_hop]
    assert taken == full
    share = sum(full) / HOPS
    assert 0.2 < share < 0.8  # both branches are exercised
    assert r.branch_shares == {"encoder": {"else": 1 - share, "then": share}}


def test_int8_stream_differs_only_near_the_threshold(stream):
    """Post-training int8 moves the score by a few quantization steps: a decision may flip
    only where onnxruntime's score is that close to the 0.5 threshold."""
    session, samples, full, score = stream
    r = run_stream(session, GENERIC, samples, 32.0)
    taken = np.array([h.branches["encoder"] == "then" for h in r.per_hop])
    flipped = taken != np.array(full)
    assert flipped.mean() < 0.05
    assert np.all(np.abs(score[flipped] - 0.5) < 0.02)


def test_the_cost_is_the_branch_the_data_picks(stream):
    session, samples, full, _ = stream
    runs = {}
    for want in (True, False):
        x = samples[full.index(want)]
        runs[want] = session.simulate(GENERIC, SimOptions(inputs=x, float_datapath=True))
        timed = session.simulate(GENERIC, SimOptions(timing_only=True,
                                                     branches={"encoder": want}))  # fmt: skip
        assert runs[want].branches == {"encoder": "then" if want else "else"}
        assert runs[want].latency_cycles == timed.latency_cycles
        assert runs[want].energy_uj == pytest.approx(timed.energy_uj, rel=1e-12)
    full_run, cheap = runs[True], runs[False]
    assert full_run.macs - cheap.macs == 128 * 256 * 2 - 128 * 16 * 2  # 65,536 vs 4,096
    assert full_run.latency_cycles > cheap.latency_cycles
    assert full_run.energy_uj > 1.5 * cheap.energy_uj


def test_both_branches_count_in_the_memory_budget():
    session = Session(AMNET)
    tiles = {}
    for then in (True, False):
        r = session.simulate(GENERIC, SimOptions(timing_only=True, branches={"encoder": then}))
        mine = sum(ly.tiles for ly in r.layers if ly.kind == "mac")
        idle = {ly.name for ly in r.idle_branch_layers}
        assert idle == ({"lowrank1", "lowrank2"} if then else {"full1", "full2"})
        tiles[then] = (mine, sum(ly.tiles for ly in r.idle_branch_layers))
    assert tiles[True][0] + tiles[True][1] == tiles[False][0] + tiles[False][1]
    union = sum(tiles[True])
    # a part that holds either branch's weights but not both: 2 macros x (union - 1) / 2 sets
    sets = (union - 1) // 2
    assert max(tiles[True][0], tiles[False][0]) <= 2 * sets < union
    hw = GENERIC.with_(macros_per_core=2, macro_weight_sets=sets)
    r = session.simulate(hw, SimOptions(timing_only=True))
    assert r.weights_resident and not r.fits_on_chip
    b = check(r, hw)
    assert not b.weights_fit and b.weight_bytes == union * hw.macro_rows * hw.cell_columns // 8
    assert b.useful_weight_bytes == r.weight_bytes + sum(x.weight_bytes
                                                         for x in r.idle_branch_layers)  # fmt: skip
    assert b.useful_weight_bytes == 114_192  # every weight of both branches, one byte each
    roomy = GENERIC.with_(macros_per_core=2, macro_weight_sets=(union + 1) // 2)
    r = session.simulate(roomy, SimOptions(timing_only=True))
    assert r.fits_on_chip and check(r, roomy).weights_fit


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ndpsim", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip


def test_cli_branch_choice(tmp_path):
    out = tmp_path / "r.json"
    done = _cli("simulate", AMNET, "--timing-only", "--json", out)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"then", "else"}
    assert data["then"]["macs"] > data["else"]["macs"]
    assert data["then"]["branches"] == {"encoder": "then"}
    one = _cli("simulate", AMNET, "--timing-only", "--branch", "else", "--json", out)
    assert one.returncode == 0 and json.loads(out.read_text())["macs"] == data["else"]["macs"]
    over = _cli("simulate", AMNET, "--timing-only", "--budget", "--branch", "then",
                "--set", "macros_per_core=2", "--set", "macro_weight_sets=7")  # fmt: skip
    assert over.returncode == 1 and "budget    FAIL" in over.stdout
    bad = _cli("simulate", AMNET, "--branch", "then")
    assert bad.returncode == 2 and "--branch applies with --timing-only" in bad.stderr
    s = _cli("stream", AMNET, "--hop", "32ms", "--hops", "3", "--timing-only", "--json", out)
    assert s.returncode == 0, s.stderr
    shares = {k: v["branch_shares"] for k, v in json.loads(out.read_text()).items()}
    assert shares == {"then": {"encoder": {"then": 1.0}}, "else": {"encoder": {"else": 1.0}}}


def _gated(declare_cond: bool) -> onnx.ModelProto:
    """y = Relu(x W) if mean(x) > 0 else x (a pass-through branch); the condition computed
    by ReduceMean and Greater, optionally a declared output of the model."""
    w = np.random.default_rng(1).standard_normal((16, 16)).astype(np.float32) * 0.3
    f = TensorProto.FLOAT
    then = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"),
                              helper.make_node("Relu", ["m"], ["o"], name="relu")], "t", [],
                             [helper.make_tensor_value_info("o", f, [1, 16])])  # fmt: skip
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["o2"], name="skip")], "e",
                              [], [helper.make_tensor_value_info("o2", f, [1, 16])])  # fmt: skip
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0, name="mean"),
             helper.make_node("Greater", ["mean", "zero"], ["cond"], name="cmp"),
             helper.make_node("If", ["cond"], ["y"], name="gate", then_branch=then,
                              else_branch=other)]  # fmt: skip
    outs = [helper.make_tensor_value_info("y", f, [1, 16])]
    outs += [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])] if declare_cond else []
    inits = [onnx.numpy_helper.from_array(w, "W"),
             onnx.numpy_helper.from_array(np.float32(0), "zero")]  # fmt: skip
    graph = helper.make_graph(nodes, "gated", [helper.make_tensor_value_info("x", f, [1, 16])],
                              outs, inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("declare_cond", [False, True])
def test_a_condition_from_reducemean_and_a_pass_through_branch(declare_cond):
    model = _gated(declare_cond).SerializeToString()
    session = Session(model)
    rng = np.random.default_rng(2)
    samples = [{"x": rng.standard_normal((1, 16)).astype(np.float32)} for _ in range(24)]
    r = run_stream(session, GENERIC, samples, 10.0, SimOptions(float_datapath=True))
    assert [h.branches["gate"] == "then" for h in r.per_hop] == [
        bool(s["x"].mean() > 0) for s in samples]  # fmt: skip
    assert 0 < r.branch_shares["gate"]["then"] < 1
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for x in samples[:4]:
        rep = session.simulate(GENERIC, SimOptions(inputs=x, float_datapath=True))
        want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, x), strict=True))
        assert set(rep.outputs) == set(want)  # the declared condition stays an output
        np.testing.assert_allclose(rep.outputs["y"].reshape(want["y"].shape), want["y"],
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    cost = {t: session.simulate(GENERIC, SimOptions(timing_only=True, branches={"gate": t}))
            for t in (True, False)}  # fmt: skip
    assert cost[True].latency_cycles > cost[False].latency_cycles
    assert cost[True].macs == 256 and cost[False].macs == 0


@pytest.mark.parametrize("then", [True, False])
def test_the_estimator_replays_either_branch_exactly(then):
    """The analytic estimator (estimator/plan.py) on each variant: the makespan, every
    layer's span and every counter equal the simulator's."""
    from ndpsim.estimator.predict import Predictor
    from ndpsim.report.build import layer_spans
    from ndpsim.sim.run import run

    session, chosen = Session(AMNET), {"encoder": then}
    for hw in (GENERIC, load_preset("ndp120")):
        program = session.program(hw, (), chosen)
        res = run(program, hw)
        first, last = layer_spans(program, res)
        ev = Predictor(session, branches=chosen).evaluate(hw)
        assert ev.cycles == res.cycles
        np.testing.assert_array_equal(ev.first, first)
        np.testing.assert_array_equal(ev.last, last)
        np.testing.assert_array_equal(ev.counters, res.counters)
