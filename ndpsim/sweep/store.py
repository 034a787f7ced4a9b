"""The results dataset: Hive-partitioned Parquet, written atomically in batches, resumable.

    DIR/points/model=kws_dscnn/part-<batch>.parquet   one row per (model, configuration)
    DIR/layers/model=kws_dscnn/part-<batch>.parquet   one row per layer (with per_layer)
    DIR/_sweep.json                                   the spec and versions of the runs

Readers see only finished files: a batch is written to a hidden temporary file, synced and
renamed into place (`os.replace` is atomic on POSIX). A batch writes its layer files before
its point files, and a point is done when its point row exists, so a process killed at any
moment loses at most the batch in progress, which a re-run redoes; layer files left without
their point file are removed on resume. A batch's file name is fixed when its first row is
buffered, so writing a batch again (Ctrl-C arriving inside a flush, then the flush on exit)
replaces its files instead of storing its points twice. Each point is keyed by
(model_sha256, config_id, ndpsim_version, mode). The schema version and the simulator
version are in every file's metadata. pandas, polars, DuckDB and pyarrow read the
directories as they are.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ndpsim import __version__
from ndpsim.errors import UserError
from ndpsim.sweep.rows import LAYER_SCHEMA, POINT_SCHEMA

DATASET_SCHEMA_VERSION = 1
KEY = ("model_sha256", "config_id", "ndpsim_version", "mode")
BATCH_POINTS = 1000  # rows buffered before a write (bounds memory) ...
BATCH_SECONDS = 10.0  # ... or seconds, whichever comes first (bounds the work a kill loses)


def _metadata(table: str) -> dict[bytes, bytes]:
    return {
        b"ndpsim_version": __version__.encode(),
        b"ndpsim_dataset_schema_version": str(DATASET_SCHEMA_VERSION).encode(),
        b"ndpsim_table": table.encode(),
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file so that readers see all of it or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # hidden: readers skip it
    with open(tmp, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ResultStore:
    """One sweep's output directory: a lock, the done keys, and batched atomic writes."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.points_dir = self.root / "points"
        self.layers_dir = self.root / "layers"
        self._lock_handle = None
        self._rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._layers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._buffered = 0
        self._batch_name = ""
        self._last_flush = time.monotonic()
        self.files_written = 0

    # -- lifecycle --
    def open(self) -> ResultStore:
        """Take the directory's lock (one writer at a time) and clean what a kill left."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_handle = open(self.root / "_lock", "w")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another sweep is writing {self.root}") from None
        self._clean()
        return self

    def close(self) -> None:
        self.flush()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None or exc[0] is KeyboardInterrupt:
            self.close()  # keep finished points when interrupted (Ctrl-C)
        elif self._lock_handle is not None:
            self._lock_handle.close()

    def _clean(self) -> None:
        for tmp in self.root.rglob(".part-*.tmp"):  # a write a kill interrupted
            tmp.unlink()
        points = {p.relative_to(self.points_dir) for p in self.points_dir.rglob("part-*.parquet")}
        for layer in self.layers_dir.rglob("part-*.parquet"):
            if layer.relative_to(self.layers_dir) not in points:  # its batch never finished
                layer.unlink()

    # -- reading --
    def done_keys(self, version: str = __version__, mode: str | None = None) -> set[tuple]:
        """(model_sha256, config_id) of every point already stored for this version and mode,
        failed ones included (a deterministic failure would fail again)."""
        done: set[tuple] = set()
        for path in self.points_dir.rglob("part-*.parquet"):
            table = pq.read_table(path, columns=list(KEY))
            for sha, cid, ver, md in zip(*(table[c].to_pylist() for c in KEY), strict=True):
                if ver == version and (mode is None or md == mode):
                    done.add((sha, cid))
        return done

    def drop_failed(self) -> int:
        """Remove the rows of failed points (each file rewritten atomically), so that a
        re-run retries them; returns how many were removed."""
        removed = 0
        for path in self.points_dir.rglob("part-*.parquet"):
            table = pq.read_table(path)
            ok = pc.equal(table["status"], "ok")
            kept = table.filter(ok)
            if kept.num_rows < table.num_rows:
                removed += table.num_rows - kept.num_rows
                if kept.num_rows:
                    write_atomic(kept, path)
                else:
                    path.unlink()
        return removed

    # -- writing --
    def add(self, row: dict[str, Any], layers: list[dict[str, Any]]) -> None:
        if not self._buffered:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            self._batch_name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        model = row.pop("model")
        self._rows[model].append(row)
        if layers:
            self._layers[model].extend(layers)
        self._buffered += 1
        if self._buffered >= BATCH_POINTS or time.monotonic() - self._last_flush >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows: layer files first, then point files (see the module doc)."""
        if self._buffered:
            name = self._batch_name
            for model, rows in self._layers.items():
                table = pa.Table.from_pylist(rows, LAYER_SCHEMA.with_metadata(_metadata("layers")))
                write_atomic(table, self.layers_dir / f"model={model}" / name)
                self.files_written += 1
            for model, rows in self._rows.items():
                table = pa.Table.from_pylist(rows, POINT_SCHEMA.with_metadata(_metadata("points")))
                write_atomic(table, self.points_dir / f"model={model}" / name)
                self.files_written += 1
        self._rows.clear()
        self._layers.clear()
        self._buffered = 0
        self._last_flush = time.monotonic()

    def record_run(self, spec: dict[str, Any], summary: dict[str, Any]) -> None:
        """Append this run to _sweep.json (the spec used, versions, counts)."""
        path = self.root / "_sweep.json"
        runs = json.loads(path.read_text()) if path.is_file() else []
        runs.append({"ndpsim_version": __version__, "spec": spec, **summary})
        tmp = self.root / "._sweep.json.tmp"
        tmp.write_text(json.dumps(runs, indent=1, default=str))
        os.replace(tmp, path)


def read_points(path: str | Path) -> pa.Table:
    """The points table of a results directory (or of its points/ directory, or one file)."""
    path = Path(path)
    if (path / "points").is_dir():
        path = path / "points"
    if not path.exists():
        raise UserError(f"results not found: {path}")
    if path.is_file():
        return pq.read_table(path)
    if not any(path.rglob("part-*.parquet")):
        raise UserError(f"no result files under {path}")
    return pq.read_table(path, partitioning="hive")
