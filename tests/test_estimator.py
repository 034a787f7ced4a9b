"""The estimator's pieces: kernels reported by the lowering, the search space's fast kernel
listing, tree export, persistence, the dataset and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ndpsim.config import load_preset
from ndpsim.estimator.fast import genome_table
from ndpsim.estimator.measure import measure_onnx
from ndpsim.estimator.model import KERNEL_COLUMNS, kernel_table
from ndpsim.frontend import load_model
from ndpsim.lower import lower
from ndpsim.zoo.search_space import (
    FAMILIES,
    Genome,
    Stage,
    build_onnx,
    genome_kernels,
    sample_genome,
)

NE = load_preset("neural-engine")
SMALL = Genome(
    resolution=32,
    stem_channels=8,
    head_channels=64,
    stages=(
        Stage(block="ibn", expansion=4, kernel=3, channels=8, depth=2, stride=1),
        Stage(block="fused", expansion=2, kernel=5, channels=16, depth=1, stride=2),
    ),
)


def _kernels(genome: Genome, hw=NE):
    return lower(load_model(build_onnx(genome).SerializeToString()), hw).kernels


def test_lowering_reports_its_kernels():
    ks = _kernels(SMALL)
    got = [(k.kernel_type, "+".join(k.ops), k.c_in, k.c_out, k.h_out) for k in ks]
    assert got == [
        ("input", "Host", 3, 3, 32),
        ("conv", "Conv+Clip", 3, 8, 16),  # stem, ReLU6 fused into the conv
        ("conv1x1", "Conv+Clip", 8, 32, 16),  # IBN expansion
        ("dwconv", "Conv+Clip", 32, 32, 16),
        ("conv1x1", "Conv", 32, 8, 16),  # linear projection
        ("add", "Add", 8, 8, 16),  # residual
        ("conv1x1", "Conv+Clip", 8, 32, 16),
        ("dwconv", "Conv+Clip", 32, 32, 16),
        ("conv1x1", "Conv", 32, 8, 16),
        ("add", "Add", 8, 8, 16),
        ("conv", "Conv+Clip", 8, 16, 8),  # fused-IBN: one full 5x5 conv, stride 2
        ("conv1x1", "Conv", 16, 16, 8),
        ("conv1x1", "Conv+Clip", 16, 64, 8),  # head
        ("gap", "GlobalAveragePool", 64, 64, 1),
        ("fc", "Gemm", 64, 10, 1),
        ("output", "Host", 10, 10, 1),
    ]
    assert [k.layer_index for k in ks][-3:] == [13, 15, 16]  # the Flatten alias is layer 14


@pytest.mark.parametrize("family", FAMILIES)
def test_genome_kernels_match_the_lowering(family):
    rng = np.random.default_rng(7)
    for _ in range(3):
        g = sample_genome(rng, family)
        assert [tuple(k.as_row().values()) for k in _kernels(g)] == genome_kernels(g)


def test_batched_genome_table_matches_the_listing():
    rng = np.random.default_rng(3)
    genomes = [sample_genome(rng, FAMILIES[i % len(FAMILIES)]) for i in range(25)]
    rows, group = [], []
    for i, g in enumerate(genomes):
        r = genome_kernels(g)
        rows += r
        group += [i] * len(r)
    ref = kernel_table(rows, np.array(group))
    fast = genome_table(genomes)
    for col in [c for c in KERNEL_COLUMNS if c not in ("kernel_type", "act")]:
        np.testing.assert_array_equal(fast[col], ref[col], err_msg=col)
    for col in ("type_code", "act_code", "group"):
        np.testing.assert_array_equal(fast[col], ref[col], err_msg=col)


def test_genome_json_roundtrip_and_refusal():
    assert Genome.model_validate_json(SMALL.model_dump_json()) == SMALL
    bad = json.loads(SMALL.model_dump_json())
    bad["stages"][0]["kernel"] = 4
    with pytest.raises(ValueError):
        Genome.model_validate(bad)


def test_kernel_spans_tile_the_model_latency():
    ((rows, model),) = measure_onnx(build_onnx(SMALL).SerializeToString(), [NE])
    assert model["sum_kernel_cycles"] == model["cycles"]  # a chain: kernels run back to back
    assert len(rows) == model["n_kernels"] == len(genome_kernels(SMALL))
    dyn = sum(r["dynamic_energy_pj"] for r in rows)
    assert dyn == pytest.approx(model["dynamic_energy_pj"], rel=1e-9)


def test_exported_trees_predict_like_sklearn():
    from sklearn.ensemble import HistGradientBoostingRegressor

    from ndpsim.estimator.trees import Forest, export_hgb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6))
    y = X[:, 0] * 2 + np.sin(3 * X[:, 1]) + (X[:, 2] > 0.3)
    model = HistGradientBoostingRegressor(max_iter=40, max_leaf_nodes=15).fit(X, y)
    forest = export_hgb(model)
    Xt = rng.normal(size=(300, 6))
    np.testing.assert_allclose(forest.predict(Xt), model.predict(Xt), rtol=1e-12, atol=1e-12)
    again = Forest.from_arrays(forest.arrays("f"), "f")
    np.testing.assert_array_equal(again.predict(Xt), forest.predict(Xt))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from ndpsim.estimator import dataset as D

    out = tmp_path_factory.mktemp("ds")
    hws = [NE]
    D.write_dataset(out, {"hw_configs": D.hw_rows(hws)}, 0, "hw")
    rows = D.sample_kernels(12, hws, 0, D.serial_mapper, quiet=True)
    D.write_dataset(out, {"kernels": rows}, 0, "k")
    small = {"ibn": 3, "fused": 3}
    m, k = D.sample_models(small, "train", hws, 1, D.serial_mapper, quiet=True)
    D.write_dataset(out, {"models": m, "model_kernels": k}, 0, "train")
    return out


def test_dataset_tables_and_metadata(tiny_dataset):
    import pyarrow.parquet as pq

    from ndpsim.estimator.dataset import read_table

    k = read_table(tiny_dataset / "kernels")
    assert set(k["hw_config_id"]) == {NE.config_id()}
    assert {"cycles", "energy_pj", "padded_macs"} - set(k) == {"padded_macs"}  # raw outputs
    files = list((tiny_dataset / "kernels").rglob("*.parquet"))
    meta = pq.read_schema(files[0]).metadata
    assert meta[b"ndpsim.schema_version"] == b"1" and b"ndpsim.version" in meta
    models = read_table(tiny_dataset / "models")
    assert len(models["cycles"]) == 6 and set(models["family"]) == {"ibn", "fused"}


def test_estimator_trains_saves_and_predicts(tiny_dataset, tmp_path):
    from ndpsim.estimator.model import Estimator, fit_from_dataset

    est = fit_from_dataset(tiny_dataset, log=lambda *_: None)
    path = tmp_path / "est.npz"
    est.save(path)
    again = Estimator.load(path)
    g = sample_genome(np.random.default_rng(11), "ibn")
    a, b = est.predict_genomes([g], NE), again.predict_genomes([g], NE)
    assert a[0][0] == b[0][0] and a[1][0] == b[1][0] and a[0][0] > 0
    onnx_path = tmp_path / "g.onnx"
    onnx_path.write_bytes(build_onnx(g).SerializeToString())
    c, _ = again.predict_onnx(onnx_path, NE)
    assert c[0] == pytest.approx(a[0][0], rel=1e-12)  # same kernels either way


def test_estimator_file_is_not_a_pickle(tmp_path):
    from ndpsim.errors import UserError
    from ndpsim.estimator.model import Estimator

    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError):
        Estimator.load(bad)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["estimator", "predict", "none.json"], "not found"),
        (["estimator", "predict", "{genome}", "-e", "none.npz"], "estimator file not found"),
        (["estimator", "predict", "{bad_genome}", "-e", "{est}"], "not a genome"),
        (["estimator", "train", "{tmp}"], "no model_kernels"),
        (["dataset", "{tmp}/d", "--kernels", "-1"], "--kernels"),
    ],
)
def test_cli_user_errors_exit_2(tmp_path, args, needle):
    import subprocess
    import sys

    (tmp_path / "g.json").write_text(SMALL.model_dump_json())
    (tmp_path / "bad.json").write_text('{"resolution": 3}')
    (tmp_path / "e.npz").write_bytes(b"")
    sub = {"{genome}": "g.json", "{bad_genome}": "bad.json", "{est}": "e.npz", "{tmp}": "."}
    argv = [
        a.replace(k, v)
        for a in args
        for k, v in [next(((k, v) for k, v in sub.items() if k in a), ("", ""))]
    ]
    p = subprocess.run(
        [sys.executable, "-m", "ndpsim", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
