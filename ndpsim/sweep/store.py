"""The results dataset: Hive-partitioned Parquet, written atomically in batches, resumable.

    DIR/points/model=kws_dscnn/part-<batch>.parquet   one row per (model, configuration)
    DIR/layers/model=kws_dscnn/part-<batch>.parquet   one row per layer (with per_layer)
    DIR/_dataset.json                                 schema version, tables, settings
    DIR/_sweep.json                                   the spec and counts of each run

Readers see only finished files: a batch is written to a hidden temporary file, synced and
renamed into place (`os.replace` is atomic on POSIX). A batch writes its other tables'
files before its primary (points) file, and a point is done when its primary row exists, so
a process killed at any moment loses at most the batch in progress, which a re-run redoes;
files left without their primary file are removed on resume. A batch's file name is fixed
when its first row is buffered, so writing a batch again (a signal arriving inside a flush,
then the flush on exit) replaces its files instead of storing its points twice.

`_dataset.json` is written when a directory is first opened. A later run whose schema
version or settings (e.g. `per_layer`) differ is refused: its rows could not be read
together with the stored ones, or would silently lack a table.

The tables are points and layers by default; another caller can give its own
(`tables={"kernels": schema, ...}`, the first one primary) keyed the same way.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ndpsim import __version__
from ndpsim.errors import UserError
from ndpsim.sweep.rows import LAYER_SCHEMA, POINT_SCHEMA

DATASET_SCHEMA_VERSION = 2  # 2: the model_inputs key column, _dataset.json
KEY = ("model_sha256", "model_inputs", "config_id", "ndpsim_version", "mode")
DONE_KEY = ("model_sha256", "model_inputs", "config_id")  # a done point, per version and mode
BATCH_POINTS = 1000  # rows buffered before a write (bounds memory) ...
BATCH_SECONDS = 10.0  # ... or seconds since the batch's first row (bounds what a kill loses)
FIRST_BATCH_SECONDS = 1.0  # the first batch goes out early: a user sees the first results
DEFAULT_TABLES: dict[str, pa.Schema] = {"points": POINT_SCHEMA, "layers": LAYER_SCHEMA}


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


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


class ResultStore:
    """One output directory: a lock, the done keys, and batched atomic writes.

    `tables` maps table names to Arrow schemas (the first is primary: its rows mark points
    done); `settings` are what the rows depend on beyond their key (a directory written
    with other settings is refused); `key` names the primary table's key columns;
    `partition` the row field that names a row's Hive partition (`model=<value>`)."""

    def __init__(
        self,
        root: str | Path,
        tables: Mapping[str, pa.Schema] | None = None,
        settings: Mapping[str, Any] | None = None,
        key: Sequence[str] = KEY,
        partition: str = "model",
    ):
        self.root = Path(root)
        self.tables = dict(tables or DEFAULT_TABLES)
        self.primary = next(iter(self.tables))
        self.settings = dict(settings or {})
        self.key = tuple(key)
        self.partition = partition
        self._lock_handle = None
        self._rows: dict[str, dict[str, list[dict[str, Any]]]] = {
            t: defaultdict(list) for t in self.tables
        }
        self._buffered = 0
        self._batch_name = ""
        self._batch_started = 0.0
        self._batch_limit_s = FIRST_BATCH_SECONDS
        self.files_written = 0

    @property
    def points_dir(self) -> Path:
        return self.root / self.primary

    @property
    def layers_dir(self) -> Path:
        return self.root / "layers"

    # -- lifecycle --
    def open(self) -> ResultStore:
        """Take the directory's lock (one writer at a time), check that its schema and
        settings match, and clean what a kill left."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"output {self.root} exists and is not a directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_handle = open(self.root / "_lock", "w")  # noqa: SIM115 (held until close)
        except OSError as exc:
            raise UserError(f"cannot write to output {self.root}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._release()
            raise UserError(f"another sweep is writing {self.root}") from None
        try:
            if self._check_descriptor() is None:
                _write_json(self.root / "_dataset.json", self._descriptor())
        except UserError:
            self._release()
            raise
        self._clean()
        return self

    def check(self) -> bool:
        """Without writing anything: False when there is no directory yet, True when it can
        take this store's rows; a UserError says why not (schema, tables or settings)."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"output {self.root} exists and is not a directory")
        if not self.root.is_dir():
            return False
        self._check_descriptor()
        return True

    def descriptor(self) -> dict[str, Any] | None:
        """What `_dataset.json` says (None for a new or a schema-1 directory)."""
        path = self.root / "_dataset.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            raise UserError(f"{path} is unreadable; write to a new directory") from None

    def _check_descriptor(self) -> dict[str, Any] | None:
        """The stored descriptor if it matches this store (None if there is none yet)."""
        found = self.descriptor()
        if found is None:
            if any(self.points_dir.rglob("part-*.parquet")):
                raise UserError(
                    f"{self.root} holds results of an older dataset schema (1, now "
                    f"{DATASET_SCHEMA_VERSION}); write to a new directory"
                )
            return None
        version = found.get("ndpsim_dataset_schema_version")
        if version != DATASET_SCHEMA_VERSION:
            raise UserError(
                f"{self.root} holds dataset schema {version}, this ndpsim writes "
                f"{DATASET_SCHEMA_VERSION}; write to a new directory"
            )
        if list(found.get("tables", [])) != list(self.tables):
            raise UserError(f"{self.root} holds tables {found.get('tables')}, not "
                            f"{list(self.tables)}; write to a new directory")  # fmt: skip
        stored = found.get("settings", {})
        for name in sorted(set(stored) | set(self.settings)):
            if stored.get(name) != self.settings.get(name):
                raise UserError(
                    f"{self.root} was written with {name}: {json.dumps(stored.get(name))}, "
                    f"this run asks for {json.dumps(self.settings.get(name))}; write to a "
                    "new directory or keep the setting"
                )
        return found

    def _descriptor(self) -> dict[str, Any]:
        return {
            "ndpsim_dataset_schema_version": DATASET_SCHEMA_VERSION,
            "tables": list(self.tables),
            "key": list(self.key),
            "settings": self.settings,
        }

    def _release(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def close(self) -> None:
        self.flush()
        self._release()

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        try:  # interrupted, or the engine failed: the buffered rows are finished points
            self.flush()
        finally:
            self._release()

    def _clean(self) -> None:
        for tmp in self.root.rglob(".part-*.tmp"):  # a write a kill interrupted
            tmp.unlink()
        primary = {p.relative_to(self.points_dir) for p in self.points_dir.rglob("part-*.parquet")}
        for table in self.tables:
            if table == self.primary:
                continue
            folder = self.root / table
            for part in folder.rglob("part-*.parquet"):
                if part.relative_to(folder) not in primary:  # its batch never finished
                    part.unlink()

    # -- reading --
    def stored_status(self, version: str = __version__, mode: str | None = None) -> dict:
        """{done key: status} of every row already stored in the primary table for this
        version and mode (the key columns but those two; status 'ok' or 'failed', 'ok'
        for a table without a status column)."""
        done: dict[tuple, str] = {}
        names = [c for c in self.key if c not in ("ndpsim_version", "mode")]
        with_status = "status" in self.tables[self.primary].names
        columns = [*self.key, *(["status"] if with_status else [])]
        for path in self.points_dir.rglob("part-*.parquet"):
            table = pq.read_table(path, columns=columns)
            if "ndpsim_version" in self.key:
                table = table.filter(pc.equal(table["ndpsim_version"], version))
            if mode is not None and "mode" in self.key:
                table = table.filter(pc.equal(table["mode"], mode))
            keys = zip(*(table[c].to_pylist() for c in names), strict=True)
            statuses = table["status"].to_pylist() if with_status else ["ok"] * table.num_rows
            done.update(zip(keys, statuses, strict=True))
        return done

    def done_keys(self, version: str = __version__, mode: str | None = None) -> set[tuple]:
        """Keys of every point already stored for this version and mode, failed ones
        included (a deterministic failure would fail again; --retry-failed runs them)."""
        return set(self.stored_status(version, mode))

    def drop_failed(self) -> int:
        """Remove the rows of failed points (each file rewritten atomically), so that a
        re-run retries them; returns how many were removed."""
        removed = 0
        for path in self.points_dir.rglob("part-*.parquet"):
            table = pq.read_table(path)
            kept = table.filter(pc.equal(table["status"], "ok"))
            if kept.num_rows < table.num_rows:
                removed += table.num_rows - kept.num_rows
                if kept.num_rows:
                    write_atomic(kept, path)
                else:
                    path.unlink()
        return removed

    # -- writing --
    def add(
        self,
        row: dict[str, Any],
        extra: list[dict[str, Any]] | Mapping[str, list[dict[str, Any]]] = (),
    ) -> None:
        """Buffer a primary row (its `partition` field, popped, names its partition) and its
        rows of the other tables (a list: the second table, e.g. layers; or {table: rows})."""
        if not self._buffered:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            self._batch_name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
            self._batch_started = time.monotonic()
        model = row.pop(self.partition)
        self._rows[self.primary][model].append(row)
        if not isinstance(extra, Mapping):
            extra = {list(self.tables)[1]: extra} if extra else {}
        for table, rows in extra.items():
            if rows:
                self._rows[table][model].extend(rows)
        self._buffered += 1
        if (
            self._buffered >= BATCH_POINTS
            or time.monotonic() - self._batch_started >= self._batch_limit_s
        ):
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows: the other tables first, the primary last (module doc)."""
        if self._buffered:
            name = self._batch_name
            order = [t for t in self.tables if t != self.primary] + [self.primary]
            for table in order:
                schema = self.tables[table].with_metadata(_metadata(table))
                for model, rows in self._rows[table].items():
                    data = pa.Table.from_pylist(rows, schema)
                    write_atomic(data, self.root / table / f"{self.partition}={model}" / name)
                    self.files_written += 1
            self._batch_limit_s = BATCH_SECONDS
        for rows in self._rows.values():
            rows.clear()
        self._buffered = 0

    def record_run(self, spec: dict[str, Any], summary: dict[str, Any]) -> None:
        """Append this run to _sweep.json (the spec used, versions, counts)."""
        path = self.root / "_sweep.json"
        runs = json.loads(path.read_text()) if path.is_file() else []
        runs.append({"ndpsim_version": __version__, "spec": spec, **summary})
        _write_json(path, runs)


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
