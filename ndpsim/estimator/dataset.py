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
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ndpsim import __version__
from ndpsim.config import HardwareConfig, load_preset
from ndpsim.estimator.hardware import evaluation_configs, sample_configs
from ndpsim.session import Session
from ndpsim.sweep.engine import run_points
from ndpsim.sweep.plan import ModelRef, Point
from ndpsim.sweep.point import failed_row, key_row, warm_up
from ndpsim.sweep.progress import Progress
from ndpsim.sweep.rows import config_row, layer_rows, metric_row
from ndpsim.sweep.store import ResultStore

MODE = "timing-only"
SESSIONS_KEPT = 2  # per worker: points arrive model by model, and a session holds weights


@dataclass(frozen=True)
class DatasetSpec:
    """What `ndpsim dataset` builds (its options)."""

    models_per_family: int = 12
    train_configs: int = 8
    eval_configs: int = 20
    families: tuple[str, ...] = ()  # empty: every zoo family
    real: bool = True
    seed: int = 0


def real_network_files() -> list[Path]:
    """ONNX files of real networks nobody here generated: the onnx wheel's light_* networks,
    and the trained MLPerf Tiny models of a `mlperf_tiny_onnx` folder named by NDPSIM_SHARED
    (its parent) when set."""
    import onnx.backend.test

    light = Path(onnx.backend.test.__file__).parent / "data" / "light"
    files = sorted(light.glob("light_*.onnx"))
    shared = os.environ.get("NDPSIM_SHARED")
    if shared and (Path(shared) / "mlperf_tiny_onnx").is_dir():
        files += sorted((Path(shared) / "mlperf_tiny_onnx").glob("*.onnx"))
    return files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_networks(out: Path, spec: DatasetSpec, quiet: bool = False) -> list[dict]:
    """Stage 1: the zoo networks (written once) and the real ones; returns the manifest."""
    from ndpsim.zoo.families import NETWORK_FAMILIES, build_network, sample_spec

    families = spec.families or NETWORK_FAMILIES
    unknown = sorted(set(families) - set(NETWORK_FAMILIES))
    if unknown:
        from ndpsim.errors import UserError

        raise UserError(f"unknown family {unknown[0]!r}; one of {', '.join(NETWORK_FAMILIES)}")
    todo = [(f, i) for f in families for i in range(spec.models_per_family)]
    progress = Progress(len(todo), quiet)
    manifest = []
    try:
        for family, i in todo:
            # a family's specs do not depend on which other families are asked for
            rng = np.random.default_rng([spec.seed, NETWORK_FAMILIES.index(family), i])
            net = sample_spec(family, rng)
            name = f"{family}-{i:03d}"
            path = out / "networks" / family / f"{name}.onnx"
            if not path.is_file():
                _write_atomic(path, build_network(net, seed=spec.seed).SerializeToString())
            manifest.append({"name": name, "family": family,
                             "split": "train" if i % 2 == 0 else "test", "spec": net,
                             "path": str(path.resolve()), "sha256": _sha256(path)})  # fmt: skip
            progress.update()
    finally:
        progress.close()
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


_SESSIONS: OrderedDict[str, Session] = OrderedDict()


def simulate_point(point: Point) -> tuple[dict, list[dict]]:
    """A timing-only simulation of one point through its model's Session: the sweep's point
    row and layer rows. A failure is a row with its error."""
    key = key_row(point)
    row = {**key, "model": point.model.name, "model_path": point.model.path,
           **_config_columns(point.hw)}  # fmt: skip
    try:
        session = _SESSIONS.get(point.model.sha256)
        if session is None:
            session = _SESSIONS[point.model.sha256] = Session(point.model.path)
            while len(_SESSIONS) > SESSIONS_KEPT:
                _SESSIONS.popitem(last=False)
        report = session.simulate(point.hw, _timing_only())
    except Exception as exc:  # recorded, not raised: one bad point never stops the run
        row.update(status="failed", error=f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        return row, []
    row.update(status="ok", error=None, **metric_row(report))
    return row, layer_rows(report, key)


def _config_columns(hw: HardwareConfig) -> dict:
    """sweep.rows.config_row in the types of the points schema: config_row passes operating
    points as objects and `idle_power_mw` as a float where the schema has strings, which
    Arrow refuses (any preset with operating points, e.g. ndp120)."""
    row = config_row(hw)
    row["operating_points"] = [p.model_dump_json() for p in hw.operating_points]
    if row.get("idle_power_mw") is not None:
        row["idle_power_mw"] = json.dumps(row["idle_power_mw"])
    return row


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
        try:
            for point, value, error in run_points(simulate_point, todo, engine, chunk_size=4,
                                                  initializer=warm_up):  # fmt: skip
                row, layers = value if error is None else (failed_row(point, error), [])
                failed = row["status"] != "ok"
                if failed and outcome.first_error is None:
                    outcome.first_error = row["error"]
                store.add(row, layers)
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


__all__ = ["DatasetSpec", "build_networks", "hardware", "load_preset", "plan_points",
           "simulate", "simulate_point", "write_manifest", "read_manifest"]  # fmt: skip
