"""`ndpsim update`: the changed weights of a model update, counted exactly, and the price of
writing them against a full reload (ndpsim/update.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ndpsim.config import load_preset
from ndpsim.errors import UserError
from ndpsim.update import update_cost

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "models" / "kws_dscnn.onnx"


def _weights(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The MAC layers' weight tensors (Conv and Gemm weights: rank >= 2)."""
    return [t for t in model.graph.initializer if len(t.dims) >= 2]


def _negate_share(model: onnx.ModelProto, share: float, seed: int) -> tuple[onnx.ModelProto, int]:
    """A copy with `share` of every weight tensor's elements negated, chosen at random among
    those that quantize to a nonzero integer: a channel's largest |w| is kept, so its scale is
    too, and each negated weight changes exactly one cell."""
    new = onnx.ModelProto()
    new.CopyFrom(model)
    rng = np.random.default_rng(seed)
    changed = 0
    for t in _weights(new):
        w = numpy_helper.to_array(t).astype(np.float32).copy()
        flat = w.reshape(-1)
        # per output channel: Conv weights are [cout, ...]; the Gemm's [out, in] (transB=1)
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1, keepdims=True)
        q = np.rint(w.reshape(w.shape[0], -1) / (amax / 127))
        eligible = np.flatnonzero(q.reshape(-1) != 0)
        pick = rng.choice(eligible, int(round(share * w.size)), replace=False)
        flat[pick] = -flat[pick]
        changed += pick.size
        t.CopyFrom(numpy_helper.from_array(w, t.name))
    return new, changed


@pytest.fixture(scope="module")
def kws() -> onnx.ModelProto:
    return onnx.load(KWS)


def test_two_percent_changed_weights_are_counted_exactly(kws):
    new, n = _negate_share(kws, 0.02, seed=3)
    r = update_cost(kws, new, load_preset("ndp120"))
    total = sum(int(np.prod(t.dims)) for t in _weights(kws))
    assert r.weights == total
    assert r.changed_weights == n and 0.015 * total < n < 0.025 * total
    assert r.changed_cells == n  # one cell per negated weight: scales are unchanged
    assert sum(layer.changed_weights for layer in r.layers) == n
    s, f = r.sparse_update, r.full_reload
    assert 0 < s.payload_bytes < f.payload_bytes and s.written_words < f.written_words
    assert s.energy_uj < f.energy_uj and s.total_us < f.total_us
    assert r.payload_saving == pytest.approx(1 - s.payload_bytes / f.payload_bytes)


def test_an_identical_model_costs_nothing_and_a_full_reload_writes_every_cell(kws):
    hw = load_preset("ndp120")
    r = update_cost(kws, kws, hw)
    assert r.changed_weights == r.changed_cells == r.changed_tiles == 0
    assert r.sparse_update.payload_bytes == r.sparse_update.written_words == 0
    f = r.full_reload
    assert f.written_bits >= r.cell_bits  # every row of every tile, in whole words
    assert r.cell_bits <= f.payload_bytes * 8 < r.cell_bits + 8 * r.tiles  # bytes per tile
    assert f.host_link_us == pytest.approx(f.payload_bytes * 8 / hw.host_link_mbit_per_s)
    assert f.energy_uj > 0 and f.write_us > 0


def _fc(w: np.ndarray) -> onnx.ModelProto:
    """x[1, K] -> Gemm with weights w [N, K] (transB) -> y."""
    from onnx import TensorProto, helper

    n, k = w.shape
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "fc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(w.astype(np.float32), "w")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_every_weight_of_a_tile_changed_makes_it_a_full_tile():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 1.0, (40, 300)) * rng.choice([-1, 1], (40, 300))  # no zero cells
    hw = load_preset("generic").with_(macro_rows=64, macro_cols=16)
    r = update_cost(_fc(w), _fc(-w), hw)  # every cell flips sign
    assert r.changed_weights == r.changed_cells == w.size
    assert r.tiles == 3 * 5 and r.full_tiles == r.tiles and r.sparse_tiles == 0
    w2 = w.copy()
    w2[:16, :64] *= -1  # exactly the first tile: 16 columns x 64 rows
    r2 = update_cost(_fc(w), _fc(w2), hw)
    assert (r2.changed_tiles, r2.full_tiles, r2.changed_weights) == (1, 1, 16 * 64)


def test_cell_write_constants_price_the_writes(kws):
    new, _ = _negate_share(kws, 0.02, seed=4)
    sram = load_preset("ndp120")
    nvm = sram.with_(weight_cell_technology="rram", weight_write_ns_per_word=100.0,
                     weight_write_energy_pj_per_byte=20.0, weight_cell_endurance_writes=1e6)
    a, b = update_cost(kws, new, sram), update_cost(kws, new, nvm)
    assert b.sparse_update.write_us == pytest.approx(10 * a.sparse_update.write_us)
    bits = a.sparse_update.written_bits
    assert b.sparse_update.energy_uj - a.sparse_update.energy_uj == pytest.approx(
        bits * (20.0 - sram.weight_write_energy_pj_per_byte) / 8 / 1e6
    )
    assert a.weight_cell_endurance_writes is None and b.weight_cell_endurance_writes == 1e6


def test_a_different_structure_is_refused(kws):
    other = onnx.load(ROOT / "models" / "ic_resnet8.onnx")
    with pytest.raises(UserError, match="differ in structure"):
        update_cost(kws, other, load_preset("generic"))


def test_cli_update_json_and_errors(tmp_path, kws):
    new, n = _negate_share(kws, 0.02, seed=5)
    path = tmp_path / "new.onnx"
    onnx.save(new, path)
    out = tmp_path / "u.json"
    cmd = [sys.executable, "-m", "ndpsim", "update", str(KWS), str(path), "-p", "ndp120",
           "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "sparse update" in done.stdout and "full reload" in done.stdout
    data = json.loads(out.read_text())
    assert data["changed_weights"] == n and data["sparse_update"]["payload_bytes"] > 0
    bad = subprocess.run([*cmd[:4], str(ROOT / "models" / "ic_resnet8.onnx"), str(path)],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "structure" in bad.stderr
