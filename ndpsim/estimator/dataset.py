"""`ndpsim dataset`: the estimator's training and evaluation data, as one resumable sweep.

Stages, in order (each shows the sweep engine's progress line):
  1. networks   every zoo family (ndpsim.zoo.families), `models_per_family` sampled specs
                each, half `train` and half `test`, written as ONNX files (skipped when
                already written: the same seed gives the same bytes); real networks nobody
                here generated (the onnx wheel's light_* networks, the trained MLPerf Tiny
                models when found) are used where they are
  2. hardware   `train` configurations and `eval` configurations (the presets and sampled
                ones), half of each with small weight and activation memories
                (estimator/hardware.py)
  3. simulate   train networks x train hardware, every network x eval hardware: timing-only
                simulations with per-layer rows, run by the sweep engine (`run_points`: a
                local process pool or Dask) into a `ResultStore`, which keeps finished points
                when killed and skips them when the command runs again

DIR/networks.json, DIR/hardware.json   what the run is made of
DIR/networks/<family>/<name>.onnx      the zoo networks
DIR/sim/points, DIR/sim/layers         the sweep store (docs/sweeps.md), one row per point
                                       and one per layer
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ndpsim import __version__
from ndpsim.config import HardwareConfig
from ndpsim.estimator.hardware import evaluation_configs, sample_configs
from ndpsim.session import Session
from ndpsim.sweep.engine import run_points
from ndpsim.sweep.plan import ModelRef, Point
from ndpsim.sweep.point import failed_row, key_row, warm_up
from ndpsim.sweep.progress import Progress
from ndpsim.sweep.rows import config_row, layer_rows, metric_row
from ndpsim.sweep.store import ResultStore

MODE = "timing-only"
# Real networks up to this many weights (ResNet-50 has 25.6 M): the import materializes the
# weights (VGG-19's 143 M take a worker past 4 GB), and the run keeps to 2 GiB.
REAL_MAX_PARAMS = 30_000_000
# Layer rows buffered before the store writes them (besides its own point and time bounds):
# a few tens of MB in the main process.
FLUSH_LAYER_ROWS = 20_000


@dataclass(frozen=True)
class DatasetSpec:
    """What `ndpsim dataset` builds (its options)."""

    models_per_family: int = 6
    train_configs: int = 8
    eval_configs: int = 20
    families: tuple[str, ...] = ()  # empty: every zoo family
    real: bool = True
    seed: int = 0


def real_network_files(max_params: int = REAL_MAX_PARAMS) -> list[Path]:
    """ONNX files of real networks nobody here generated, up to `max_params` weights: the
    onnx wheel's light_* networks, and the trained MLPerf Tiny models of the
    `mlperf_tiny_onnx` folder in $NDPSIM_SHARED, or in a `shared` folder above the working
    directory."""
    import onnx.backend.test

    light = Path(onnx.backend.test.__file__).parent / "data" / "light"
    files = sorted(light.glob("light_*.onnx"))
    env = os.environ.get("NDPSIM_SHARED")
    for base in [Path(env)] if env else [p / "shared" for p in (Path.cwd(), *Path.cwd().parents)]:
        if (base / "mlperf_tiny_onnx").is_dir():
            files += sorted((base / "mlperf_tiny_onnx").glob("*.onnx"))
            break
    return [f for f in files if onnx_params(f) <= max_params]


def onnx_params(path: Path) -> int:
    """Weight elements of an ONNX file, without materializing them: its initializers and the
    tensors its ConstantOfShape nodes make (the light_* networks' weights)."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name: t for t in g.initializer}
    n = sum(int(np.prod(t.dims)) for t in g.initializer)
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in inits:
            n += int(np.prod(numpy_helper.to_array(inits[node.input[0]])))
    return n


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_network_file(task: tuple) -> dict:
    """A worker's task of stage 1: one zoo network, written once (atomically); its manifest
    entry."""
    from ndpsim.zoo.families import NETWORK_FAMILIES, build_network, sample_spec

    out, family, i, seed = task
    # a family's specs do not depend on which other families are asked for
    net = sample_spec(family, np.random.default_rng([seed, NETWORK_FAMILIES.index(family), i]))
    name = f"{family}-{i:03d}"
    path = Path(out) / "networks" / family / f"{name}.onnx"
    if not path.is_file():
        _write_atomic(path, build_network(net, seed=seed).SerializeToString())
    return {"name": name, "family": family, "split": "train" if i % 2 == 0 else "test",
            "spec": net, "path": str(path.resolve()), "sha256": _sha256(path)}  # fmt: skip


def build_networks(out: Path, spec: DatasetSpec, engine, quiet: bool = False) -> list[dict]:
    """Stage 1: the zoo networks (built on the engine's workers) and the real ones; returns
    the manifest."""
    from ndpsim.errors import UserError
    from ndpsim.zoo.families import NETWORK_FAMILIES

    families = spec.families or NETWORK_FAMILIES
    unknown = sorted(set(families) - set(NETWORK_FAMILIES))
    if unknown:
        raise UserError(f"unknown family {unknown[0]!r}; one of {', '.join(NETWORK_FAMILIES)}")
    tasks = [(str(out), f, i, spec.seed) for f in families for i in range(spec.models_per_family)]
    progress = Progress(len(tasks), quiet)
    built: dict[tuple, dict] = {}
    try:
        for task, entry, error in run_points(build_network_file, tasks, engine, chunk_size=2):
            if error is not None:
                raise RuntimeError(f"building {task[1]} network {task[2]}: {error}")
            built[task] = entry
            progress.update()
    finally:
        progress.close()
    manifest = [built[t] for t in tasks]
    if spec.real:
        for path in real_network_files():
            manifest.append({"name": path.stem, "family": "real", "split": "real", "spec": None,
                             "path": str(path.resolve()), "sha256": _sha256(path)})  # fmt: skip
    return manifest


def hardware(spec: DatasetSpec) -> dict[str, list[HardwareConfig]]:
    """Stage 2: training and evaluation hardware (disjoint draws)."""
    return {
        "train": sample_configs(spec.train_configs, spec.seed * 1000 + 1, "train"),
        "eval": evaluation_configs(spec.eval_configs, spec.seed * 1000 + 2),
    }


def plan_points(networks: list[dict], hws: dict[str, list[HardwareConfig]]) -> list[Point]:
    """Train networks on train hardware; every network on eval hardware; model-major."""
    points = []
    for net in networks:
        ref = ModelRef(net["path"], net["sha256"], net["name"])
        roles = ("train", "eval") if net["split"] == "train" else ("eval",)
        for role in roles:
            for hw in hws[role]:
                points.append(Point(ref, hw, hw.config_id(), MODE, True, 0))
    return points


_IMPORTED: dict[str, Session] = {}  # the last model a worker imported


def simulate_point(point: Point) -> tuple[dict, list[dict]]:
    """A timing-only simulation of one point: the sweep's point row and layer rows (a failure
    is a row with its error). A worker imports a model once (points arrive model by model)
    and runs each point in a Session of its own over the imported graph, so no lowered
    program outlives its point (a model's configurations are all different structures)."""
    key = key_row(point)
    row = {**key, "model": point.model.name, "model_path": point.model.path,
           **config_row(point.hw)}  # fmt: skip
    try:
        imported = _IMPORTED.get(point.model.sha256)
        if imported is None:
            _IMPORTED.clear()
            data = Path(point.model.path).read_bytes()
            if hashlib.sha256(data).hexdigest() != point.model.sha256:
                raise RuntimeError(f"{point.model.path} changed since the run was planned")
            imported = _IMPORTED[point.model.sha256] = Session(data, name=point.model.path)
        report = Session(imported.graph).simulate(point.hw, _timing_only())
    except Exception as exc:  # recorded, not raised: one bad point never stops the run
        row.update(status="failed", error=f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        return row, []
    row.update(status="ok", error=None, **metric_row(report))
    return row, layer_rows(report, key)


def _timing_only():
    from ndpsim.options import SimOptions

    return SimOptions(timing_only=True)


@dataclass
class Outcome:
    planned: int
    skipped: int
    ran: int = 0
    failed: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0


def simulate(out: Path, points: list[Point], engine, quiet: bool = False) -> Outcome:
    """Stage 3: every point not yet stored, on `engine`, into DIR/sim."""
    with ResultStore(out / "sim") as store:
        done = store.done_keys(mode=MODE)
        todo = [p for p in points if p.key not in done]
        outcome = Outcome(len(points), len(points) - len(todo))
        progress = Progress(len(todo), quiet)
        buffered = 0  # layer rows the store holds: a recurrent network has thousands a point
        try:
            for point, value, error in run_points(simulate_point, todo, engine, chunk_size=4,
                                                  initializer=warm_up):  # fmt: skip
                row, layers = value if error is None else (failed_row(point, error), [])
                failed = row["status"] != "ok"
                if failed and outcome.first_error is None:
                    outcome.first_error = row["error"]
                store.add(row, layers)
                buffered += len(layers)
                if buffered >= FLUSH_LAYER_ROWS:
                    store.flush()
                    buffered = 0
                outcome.ran += 1
                outcome.failed += failed
                progress.update(1, int(failed))
        finally:
            progress.close()
            outcome.elapsed_s = progress.elapsed_s
    return outcome


def write_manifest(out: Path, spec: DatasetSpec, networks: list[dict],
                   hws: dict[str, list[HardwareConfig]]) -> None:  # fmt: skip
    """DIR/networks.json and DIR/hardware.json (each replaced atomically)."""
    info = {"ndpsim_version": __version__, "spec": spec.__dict__, "networks": networks}
    _write_atomic(out / "networks.json", json.dumps(info, indent=1, default=list).encode())
    hw = {role: [{"config_id": h.config_id(), "config": h.model_dump(mode="json")} for h in lst]
          for role, lst in hws.items()}  # fmt: skip
    _write_atomic(out / "hardware.json", json.dumps(hw, indent=1).encode())


def read_manifest(data: Path) -> tuple[list[dict], dict[str, list[HardwareConfig]]]:
    """The networks and hardware of a dataset directory."""
    from ndpsim.errors import UserError

    if not (data / "networks.json").is_file() or not (data / "hardware.json").is_file():
        raise UserError(f"{data} is not an estimator dataset (run `ndpsim dataset {data}`)")
    networks = json.loads((data / "networks.json").read_text())["networks"]
    hw = json.loads((data / "hardware.json").read_text())
    return networks, {r: [HardwareConfig.model_validate(h["config"]) for h in lst]
                      for r, lst in hw.items()}  # fmt: skip
