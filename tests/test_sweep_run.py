"""Sweeps end to end: engines agree row for row, a SIGKILLed sweep resumes to every point
exactly once, failures are rows, the dataset carries its versions, reports are fully mapped."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ndpsim import __version__
from ndpsim.report.schema import SimulationReport
from ndpsim.sweep import LocalEngine, make_plan, parse_spec, read_points, run_points, run_sweep
from ndpsim.sweep import point as worker
from ndpsim.sweep.rows import POINT_SCHEMA, REPORT_MAPPED, REPORT_SKIPPED
from ndpsim.sweep.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
KWS = str(ROOT / "models" / "kws_dscnn.onnx")
AD = str(ROOT / "models" / "ad_fc_autoencoder.onnx")
SMALL = {
    "models": [KWS, AD],
    "per_layer": True,
    "parameters": {
        "macro_cols": [16, 64],
        "macro_rows": [64, 256],
        "clock_mhz": [50, 100],
    },
}


@pytest.fixture(scope="module", autouse=True)
def _compiled_core():
    """Compile the core here once, into the session's on-disk numba cache, so the worker
    processes of these tests load it instead of each compiling it."""
    worker.warm_up("full")


def sorted_rows(table):
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: (r["model_sha256"], r["config_id"], r.get("layer_index", 0)))


def test_every_report_field_is_a_column_or_deliberately_skipped():
    assert REPORT_MAPPED | REPORT_SKIPPED == set(SimulationReport.model_fields)
    assert not REPORT_MAPPED & REPORT_SKIPPED


def test_dask_local_cluster_equals_the_process_pool_row_for_row(tmp_path):
    pytest.importorskip("distributed")
    from ndpsim.sweep.dask_engine import DaskEngine

    spec = parse_spec(SMALL)
    plan = make_plan(spec, ROOT)
    pool = run_sweep(spec, plan, tmp_path / "pool", LocalEngine(2), quiet=True)
    dask = run_sweep(spec, plan, tmp_path / "dask", DaskEngine(local_workers=2), quiet=True)
    assert pool.ran == dask.ran == plan.total == 16 and pool.failed == dask.failed == 0
    for table in ("points", "layers"):
        a = pq.read_table(tmp_path / "pool" / table, partitioning="hive")
        b = pq.read_table(tmp_path / "dask" / table, partitioning="hive")
        assert a.schema.equals(b.schema)
        assert a.num_rows == b.num_rows > 0
        assert sorted_rows(a) == sorted_rows(b)  # every column, floats bit for bit


def test_program_reuse_gives_the_rows_of_a_fresh_lowering():
    spec = parse_spec({**SMALL, "parameters": {"clock_mhz": [50, 100], "voltage_v": [0.7, 0.9]}})
    points = list(make_plan(spec, ROOT).points(spec))
    cached = [worker.evaluate(p) for p in points]  # one lowering per model, then reuse
    fresh = []
    for p in points:
        worker._SESSIONS.clear()
        fresh.append(worker.evaluate(p))
    assert cached == fresh


def test_failed_points_are_rows_with_their_error_and_do_not_stop_the_sweep(tmp_path):
    # a Conv model on fully-connected-only hardware fails to lower; the FC model runs
    spec = parse_spec({"models": [KWS, AD], "parameters": {"supports_conv": [True, False]}})
    out = run_sweep(spec, make_plan(spec, ROOT), tmp_path, LocalEngine(1), quiet=True)
    assert out.ran == 4 and out.failed == 1
    rows = read_points(tmp_path).to_pylist()
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["model"] == "kws_dscnn"
    error = failed[0]["error"]
    assert error.startswith("UnsupportedOpError") and "fully-connected" in error
    assert failed[0]["latency_us"] is None and failed[0]["macro_cols"] is not None
    # a re-run does not redo it; --retry-failed does, and the point is still stored once
    again = run_sweep(spec, make_plan(spec, ROOT), tmp_path, LocalEngine(1), quiet=True)
    assert again.ran == 0 and again.skipped == 4
    retry = run_sweep(spec, make_plan(spec, ROOT), tmp_path, LocalEngine(1), quiet=True,
                      retry_failed=True)  # fmt: skip
    assert retry.ran == 1 and retry.failed == 1 and retry.skipped == 3
    rows = read_points(tmp_path).to_pylist()
    assert len(rows) == 4 and sum(r["status"] == "failed" for r in rows) == 1


def test_files_carry_versions_and_readers_see_the_hive_partition(tmp_path):
    spec = parse_spec(SMALL)
    run_sweep(spec, make_plan(spec, ROOT), tmp_path, LocalEngine(1), quiet=True)
    files = sorted((tmp_path / "points").rglob("*.parquet"))
    assert {f.parent.name for f in files} == {"model=kws_dscnn", "model=ad_fc_autoencoder"}
    meta = pq.read_schema(files[0]).metadata
    assert meta[b"ndpsim_version"] == __version__.encode()
    assert meta[b"ndpsim_dataset_schema_version"] == b"2"
    table = read_points(tmp_path)
    assert set(POINT_SCHEMA.names) <= set(table.column_names) and "model" in table.column_names
    assert not list(tmp_path.rglob("*.tmp"))
    kws = [r for r in table.to_pylist() if r["model"] == "kws_dscnn"]
    assert all(r["latency_us"] > 0 and r["energy_uj"] > 0 for r in kws)
    layers = pq.read_table(tmp_path / "layers", partitioning="hive")
    per_point = {(r["model_sha256"], r["config_id"]): r["layers"] for r in table.to_pylist()}
    assert layers.num_rows == sum(per_point.values())


def test_layer_files_of_an_unfinished_batch_are_removed_on_open(tmp_path):
    with ResultStore(tmp_path):  # a dataset directory, with its _dataset.json
        pass
    orphan = tmp_path / "layers" / "model=m" / "part-x.parquet"
    kept = tmp_path / "layers" / "model=m" / "part-y.parquet"
    for f in (orphan, kept, tmp_path / "points" / "model=m" / "part-y.parquet"):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"")
    (tmp_path / "points" / "model=m" / ".part-z.parquet.1.tmp").write_bytes(b"")
    with ResultStore(tmp_path):
        pass
    assert not orphan.exists() and kept.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_ctrl_c_inside_a_flush_does_not_store_the_batch_twice(tmp_path, monkeypatch):
    """Ctrl-C landing after a batch's point file is written but before the buffer is
    cleared: the flush on exit must replace that file, not add a second copy of it."""
    from ndpsim.sweep import store

    real_write = store.write_atomic
    interrupted = []

    def write_then_interrupt(table, path):
        real_write(table, path)
        if "points" in path.parts and not interrupted:
            interrupted.append(path)
            raise KeyboardInterrupt

    monkeypatch.setattr(store, "BATCH_POINTS", 3)
    monkeypatch.setattr(store, "write_atomic", write_then_interrupt)
    spec = parse_spec({**SMALL, "models": [KWS]})
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, make_plan(spec, ROOT), tmp_path, LocalEngine(1), quiet=True)
    rows = read_points(tmp_path).to_pylist()
    keys = [(r["model_sha256"], r["config_id"]) for r in rows]
    assert interrupted and len(keys) == len(set(keys)) >= 3
    layers = pq.read_table(tmp_path / "layers", partitioning="hive").num_rows
    assert layers == sum(r["layers"] for r in rows)
    rerun = run_sweep(spec, make_plan(spec, ROOT), tmp_path, LocalEngine(1), quiet=True)
    assert rerun.skipped == len(keys) and rerun.skipped + rerun.ran == 8


def test_one_writer_at_a_time(tmp_path):
    with ResultStore(tmp_path), pytest.raises(Exception, match="another sweep"):
        ResultStore(tmp_path).open()


def _warm_pid_signatures(_point) -> tuple[int, int]:
    from ndpsim.sim import core

    return os.getpid(), len(core.schedule.signatures)


def test_the_numba_core_is_compiled_once_per_worker_before_any_point():
    engine = LocalEngine(2)
    seen = list(run_points(_warm_pid_signatures, range(40), engine, initializer=worker.warm_up))
    assert all(err is None for _, _, err in seen)
    # warmed by the initializer: every point of every worker sees the one timing signature
    assert {value[1] for _, value, _ in seen} == {1}


def _boom(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)  # a worker dying (segfault, OOM kill)
    return x * x


def test_run_points_returns_errors_and_survives_a_dying_worker():
    out = {p: (v, e) for p, v, e in run_points(_boom, range(12), LocalEngine(2), chunk_size=3)}
    assert sorted(out) == list(range(12))
    assert out[3] == (None, "ValueError: three")
    assert out[5][0] is None and "died" in out[5][1]
    assert all(out[i] == (i * i, None) for i in range(12) if i not in (3, 5))


KILLED_SWEEP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ndpsim.sweep import LocalEngine, make_plan, parse_spec, run_sweep, store
    store.BATCH_POINTS = 4  # many small atomic batches, so the kill lands mid-sweep
    spec = parse_spec({spec!r})
    run_sweep(spec, make_plan(spec, Path({root!r})), sys.argv[1], LocalEngine(2), quiet=True,
              chunk_size=2)
    """
)


def test_a_sigkilled_sweep_rerun_has_every_point_exactly_once(tmp_path):
    spec = {**SMALL, "parameters": {**SMALL["parameters"], "macros_per_core": [1, 2, 4]}}
    script = KILLED_SWEEP.format(spec=spec, root=str(ROOT))
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)], env=env, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((out / "points").rglob("part-*.parquet")):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: sweep, pool, workers
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = read_points(out).num_rows
    total = len(spec["models"]) * 24
    assert 0 < before < total, "the kill must land mid-sweep"

    parsed = parse_spec(spec)
    rerun = run_sweep(parsed, make_plan(parsed, ROOT), out, LocalEngine(2), quiet=True)
    assert rerun.skipped == before and rerun.ran == total - before
    rows = read_points(out).to_pylist()
    keys = [(r["model_sha256"], r["config_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == total
    layers = pq.read_table(out / "layers", partitioning="hive").to_pylist()
    layer_keys = [(r["model_sha256"], r["config_id"], r["layer_index"]) for r in layers]
    assert len(layer_keys) == len(set(layer_keys)) == sum(r["layers"] for r in rows)


def test_the_totals_only_report_gives_the_rows_of_the_full_report():
    spec = parse_spec({**SMALL, "models": [KWS, AD, str(ROOT / "models" / "ic_resnet8.onnx")]})
    for p in make_plan(spec, ROOT).points(spec):
        fast, no_layers = worker.evaluate(dataclasses.replace(p, per_layer=False))
        full, layers = worker.evaluate(p)  # through simulate() and the whole report
        assert fast == full and not no_layers and len(layers) == full["layers"]
