"""The results store: the first batch goes out within a second, later ones every 10 s or
1,000 points; a directory written with another per_layer or schema is refused, never
mixed; other tables can be stored keyed the same way."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ndpsim.errors import UserError
from ndpsim.sweep import store as store_module
from ndpsim.sweep.store import ResultStore


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _row(i: int, model: str = "m") -> dict:
    return {"model": model, "model_sha256": "s", "model_inputs": "", "config_id": f"c{i}",
            "ndpsim_version": "v", "mode": "timing-only", "status": "ok"}  # fmt: skip


def _files(root: Path, table: str = "points") -> list[Path]:
    return sorted((root / table).rglob("part-*.parquet"))


def test_the_first_batch_is_written_after_a_second_later_ones_after_ten(tmp_path, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(store_module.time, "monotonic", clock)
    with ResultStore(tmp_path) as store:
        store.add(_row(0), [])
        clock.now += 0.9
        store.add(_row(1), [])
        assert _files(tmp_path) == []  # younger than FIRST_BATCH_SECONDS
        clock.now += 0.2
        store.add(_row(2), [])
        assert len(_files(tmp_path)) == 1  # the first batch, 1.1 s after its first row
        clock.now += 5
        store.add(_row(3), [])  # the second batch starts
        clock.now += 9.9
        store.add(_row(4), [])
        assert len(_files(tmp_path)) == 1  # later batches wait BATCH_SECONDS
        clock.now += 0.2
        store.add(_row(5), [])
        assert len(_files(tmp_path)) == 2
        for i in range(6, 6 + store_module.BATCH_POINTS):  # or BATCH_POINTS rows
            store.add(_row(i), [])
        assert len(_files(tmp_path)) == 3
    assert pq.read_table(tmp_path / "points").num_rows == 6 + store_module.BATCH_POINTS


def test_a_directory_written_with_other_settings_or_schema_is_refused(tmp_path):
    with ResultStore(tmp_path, settings={"per_layer": False}) as store:
        store.add(_row(0), [])
    with pytest.raises(UserError, match="written with per_layer: false, this run asks for true"):
        ResultStore(tmp_path, settings={"per_layer": True}).open()
    with pytest.raises(UserError, match="written with per_layer"):
        ResultStore(tmp_path, settings={"per_layer": True}).check()  # the dry run's check
    with ResultStore(tmp_path, settings={"per_layer": False}):  # the same settings resume
        pass
    (tmp_path / "_dataset.json").unlink()  # as a directory of dataset schema 1
    with pytest.raises(UserError, match="older dataset schema"):
        ResultStore(tmp_path).open()
    assert not (tmp_path / "_dataset.json").exists()  # nothing written by a refusal


def test_an_output_that_is_a_file_or_unwritable_is_one_line(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("")
    with pytest.raises(UserError, match="exists and is not a directory"):
        ResultStore(a_file).open()
    with pytest.raises(UserError, match="cannot write to output"):
        ResultStore(a_file / "below").open()


def test_other_tables_are_stored_keyed_and_resumed_the_same_way(tmp_path):
    kernels = pa.schema([("kernel_id", pa.string()), ("cycles", pa.int64())])
    samples = pa.schema([("kernel_id", pa.string()), ("sample", pa.int64())])
    tables = {"kernels": kernels, "samples": samples}
    with ResultStore(tmp_path, tables=tables, key=("kernel_id",), partition="family") as store:
        for i in range(3):
            rows = [{"kernel_id": f"k{i}", "sample": j} for j in range(2)]
            store.add({"family": "conv", "kernel_id": f"k{i}", "cycles": 10 * i}, {"samples": rows})
    assert {p.parent.name for p in _files(tmp_path, "kernels")} == {"family=conv"}
    assert pq.read_table(tmp_path / "samples").num_rows == 6
    again = ResultStore(tmp_path, tables=tables, key=("kernel_id",), partition="family")
    with again:
        assert again.stored_status() == {("k0",): "ok", ("k1",): "ok", ("k2",): "ok"}
    with pytest.raises(UserError, match="holds tables"):
        ResultStore(tmp_path).open()  # points/layers into a kernels directory
