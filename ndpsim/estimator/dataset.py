"""`ndpsim dataset`: per-kernel and whole-model measurements as Hive-partitioned Parquet.

Tables (docs/estimator.md has every column):
- ``hw_configs``: one row per hardware configuration (every field, its JSON, the version);
- ``kernels``: sampled kernels (prior, dense around multiples of the parallelism factor,
  adaptive neighbours of badly predicted ones), each simulated on every configuration;
- ``models`` / ``model_kernels``: search-space architectures and the kernels the lowering
  reported for them, with the simulator's per-kernel outputs.

The work is a list of independent tasks run through a *mapper* (`map(fn, items)`-like):
a local process pool by default, any other engine (a sweep engine, a Dask client's map)
by passing its own.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ndpsim import __version__
from ndpsim.config import HardwareConfig
from ndpsim.estimator import measure
from ndpsim.estimator.sampling import kernel_model, neighbours, sample_kernel
from ndpsim.zoo.search_space import FAMILIES, Genome, build_onnx, sample_genome

SCHEMA_VERSION = 1
Mapper = Callable[[Callable, Iterable], Iterable]
_HW_CACHE: dict[str, HardwareConfig] = {}


def _hw(blob: str) -> HardwareConfig:
    if blob not in _HW_CACHE:
        _HW_CACHE[blob] = HardwareConfig.model_validate_json(blob)
    return _HW_CACHE[blob]


def process_pool_mapper(workers: int | None = None, chunksize: int = 8) -> Mapper:
    """A mapper over a local process pool whose workers compile the numba core once."""

    def mapper(fn, items):
        with ProcessPoolExecutor(max_workers=workers, initializer=measure.warm_up) as pool:
            yield from pool.map(fn, items, chunksize=chunksize)

    return mapper


def serial_mapper(fn, items):
    """Run in this process (tests, debugging)."""
    return map(fn, items)


def kernel_task(task: tuple) -> list[dict]:
    """Simulate one sampled kernel on every configuration; returns its kernel rows."""
    sample_id, spec, sampler, seed, hw_blobs = task
    model = kernel_model(spec, seed).SerializeToString()
    hws = [_hw(b) for b in hw_blobs]
    rows = []
    for hw, (krows, _) in zip(hws, measure.measure_onnx(model, hws), strict=True):
        for pos, r in enumerate(krows):
            r.update(
                sample_id=sample_id,
                position=pos,
                hw_config_id=hw.config_id(),
                sampler=sampler,
                seed=seed,
                spec=json.dumps(spec, sort_keys=True),
                in_context=False,
            )
            rows.append(r)
    return rows


def model_task(task: tuple) -> tuple[list[dict], list[dict]]:
    """Simulate one architecture on every configuration: (model rows, model-kernel rows)."""
    model_id, family, genome_json, split, seed, hw_blobs = task
    genome = Genome.model_validate_json(genome_json)
    hws = [_hw(b) for b in hw_blobs]
    data = build_onnx(genome, seed).SerializeToString()
    models, kernels = [], []
    for hw, (krows, mrow) in zip(hws, measure.measure_onnx(data, hws), strict=True):
        cid = hw.config_id()
        mrow.update(
            model_id=model_id,
            family=family,
            genome=genome_json,
            split=split,
            seed=seed,
            hw_config_id=cid,
        )
        models.append(mrow)
        for pos, r in enumerate(krows):
            r.update(
                model_id=model_id,
                position=pos,
                hw_config_id=cid,
                in_context=True,
                family=family,
                split=split,
            )
            kernels.append(r)
    return models, kernels


def _progress(it: Iterable, total: int, what: str, quiet: bool) -> Iterable:
    t0, last = time.perf_counter(), 0.0
    for i, x in enumerate(it, 1):
        now = time.perf_counter()
        if not quiet and (now - last > 2 or i == total):
            rate = i / max(now - t0, 1e-9)
            eta = (total - i) / max(rate, 1e-9)
            print(
                f"\r{what}: {i}/{total} ({rate:.1f}/s, eta {eta:.0f} s)   ", end="", file=sys.stderr
            )
            last = now
        yield x
    if not quiet:
        print(file=sys.stderr)


def sample_kernels(
    n: int,
    hws: list[HardwareConfig],
    seed: int,
    mapper: Mapper,
    dense_share: float = 0.3,
    quiet: bool = False,
    first_id: int = 0,
) -> list[dict]:
    """`n` kernels from the prior, `dense_share` of them near multiples of the macro width."""
    rng = np.random.default_rng(seed)
    blobs = [hw.model_dump_json() for hw in hws]
    cols = hws[0].macro_cols
    tasks = []
    for i in range(n):
        dense = rng.random() < dense_share
        tasks.append(
            (
                first_id + i,
                sample_kernel(rng, cols, dense),
                "dense" if dense else "prior",
                seed,
                blobs,
            )
        )
    rows: list[dict] = []
    for r in _progress(mapper(kernel_task, tasks), n, "kernels", quiet):
        rows += r
    return rows


def resample(
    rows: list[dict],
    bad_sample_ids: list[int],
    per_bad: int,
    hws,
    seed: int,
    mapper: Mapper,
    quiet: bool = False,
) -> list[dict]:
    """Neighbours of the kernels the estimator got wrong by more than 10% (nn-Meter's rule)."""
    rng = np.random.default_rng(seed)
    specs = {r["sample_id"]: json.loads(r["spec"]) for r in rows}
    blobs = [hw.model_dump_json() for hw in hws]
    first = max(specs) + 1
    tasks = []
    for sid in bad_sample_ids:
        for s in neighbours(specs[sid], rng, per_bad):
            tasks.append((first + len(tasks), s, "adaptive", seed, blobs))
    out: list[dict] = []
    for r in _progress(mapper(kernel_task, tasks), len(tasks), "adaptive", quiet):
        out += r
    return out


def sample_models(
    per_family: dict[str, int],
    split: str,
    hws,
    seed: int,
    mapper: Mapper,
    quiet: bool = False,
    first_id: int = 0,
) -> tuple[list[dict], list[dict]]:
    """Architectures of the search space, `per_family[f]` of family f, simulated on `hws`."""
    rng = np.random.default_rng(seed)
    blobs = [hw.model_dump_json() for hw in hws]
    tasks = []
    for family, n in per_family.items():
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}")
        for _ in range(n):
            g = sample_genome(rng, family)
            tasks.append((first_id + len(tasks), family, g.model_dump_json(), split, seed, blobs))
    models, kernels = [], []
    for m, k in _progress(mapper(model_task, tasks), len(tasks), f"models ({split})", quiet):
        models += m
        kernels += k
    return models, kernels


def hw_rows(hws: list[HardwareConfig]) -> list[dict]:
    rows = []
    for hw in hws:
        row = {
            "hw_config_id": hw.config_id(),
            "config_json": hw.model_dump_json(),
            "simulator_version": __version__,
        }
        for k, v in hw.model_dump(mode="json").items():
            # lists and mappings (e.g. precision rules) as JSON: Parquet has no empty struct
            row[k] = json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v
        rows.append(row)
    return rows


def write_table(
    rows: list[dict], path: Path, seed: int, partition: bool = True, tag: str = "part"
) -> None:
    """Rows to a Hive-partitioned (by hw_config_id) Parquet dataset with version metadata;
    files are named by `tag`, so a later batch (another tag) adds to the table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.table({k: [r.get(k) for r in rows] for k in keys})
    meta = {
        "ndpsim.schema_version": str(SCHEMA_VERSION),
        "ndpsim.version": __version__,
        "ndpsim.seed": str(seed),
    }
    table = table.replace_schema_metadata(meta)
    if partition:
        pq.write_to_dataset(
            table,
            str(path),
            partition_cols=["hw_config_id"],
            basename_template=f"{tag}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
        )
    else:
        path.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, str(path / f"{tag}-0.parquet"))


def read_table(path: Path) -> dict[str, np.ndarray]:
    """A table of the dataset as numpy columns."""
    import pyarrow.dataset as ds

    table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
    return {
        name: np.asarray(
            table.column(name).to_pylist()
            if table.column(name).type == "string"
            else table.column(name).to_numpy(zero_copy_only=False)
        )
        for name in table.column_names
    }  # noqa: E501


def write_dataset(out: Path, tables: dict[str, list[dict]], seed: int, tag: str) -> None:
    """Write (or add a batch `tag` to) the dataset's tables; dataset.json logs the batches."""
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        write_table(rows, out / name, seed, partition=name != "hw_configs", tag=tag)
    log = out / "dataset.json"
    info = json.loads(log.read_text()) if log.exists() else {"schema_version": SCHEMA_VERSION}
    info.setdefault("batches", []).append(
        {
            "tag": tag,
            "ndpsim_version": __version__,
            "seed": seed,
            "rows": {k: len(v) for k, v in tables.items()},
        }
    )
    log.write_text(json.dumps(info, indent=2))
