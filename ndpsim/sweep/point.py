"""What a worker does with one point: simulate it and return its rows.

Each worker process keeps the imported graph of every model it has seen (checked against
the planned content hash), and the last few lowered programs keyed by (model, structural
fields): points that differ only in timing or energy fields re-run the core on the same
program. The numba core is warmed once per worker (`warm_up`), never per point.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ndpsim import __version__
from ndpsim.config import STRUCTURAL_FIELDS, HardwareConfig
from ndpsim.frontend import load_model
from ndpsim.ir import Graph
from ndpsim.lower import Program, lower
from ndpsim.lower.passes import run_passes
from ndpsim.report.build import build_report
from ndpsim.sim.run import run
from ndpsim.sweep.plan import Point
from ndpsim.sweep.rows import config_row, layer_rows, metric_row

PROGRAM_CACHE_SIZE = 32  # lowered programs kept per worker (a few MB at most)
_GRAPHS: dict[str, Graph] = {}
_PROGRAMS: OrderedDict[tuple, Program] = OrderedDict()


def graph_of(path: str, sha256: str) -> Graph:
    """The imported graph of a model file, once per worker; refuses a file changed since
    the sweep was planned (its rows would be keyed by the wrong hash)."""
    graph = _GRAPHS.get(sha256)
    if graph is None:
        data = Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"{path} changed since the sweep was planned")
        # the graph passes depend on the graph only: run them once here, not at every
        # lowering (lower() runs them again; on a passed graph they change nothing)
        graph = _GRAPHS[sha256] = run_passes(load_model(data))
    return graph


def program_of(graph: Graph, sha256: str, hw: HardwareConfig) -> Program:
    """The lowered program, reused across points with the same structural fields."""
    key = (sha256, tuple(repr(getattr(hw, f)) for f in sorted(STRUCTURAL_FIELDS)))
    program = _PROGRAMS.get(key)
    if program is None:
        program = lower(graph, hw)
        _PROGRAMS[key] = program
        if len(_PROGRAMS) > PROGRAM_CACHE_SIZE:
            _PROGRAMS.popitem(last=False)
    else:
        _PROGRAMS.move_to_end(key)
    return program


def key_row(point: Point) -> dict[str, Any]:
    return {
        "model_sha256": point.model.sha256,
        "config_id": point.config_id,
        "ndpsim_version": __version__,
        "mode": point.mode,
    }


def _base_row(point: Point, key: dict[str, Any]) -> dict[str, Any]:
    row = {**key, "model": point.model.name, "model_path": point.model.path}
    row.update(config_row(point.hw))
    return row


def failed_row(point: Point, error: str) -> dict[str, Any]:
    """The row of a point whose worker failed outside `evaluate` (e.g. the process died)."""
    row = _base_row(point, key_row(point))
    row.update(status="failed", error=error)
    return row


def evaluate(point: Point) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The point's dataset row and its layer rows. A failure is a row with its error, so
    one bad point never stops a sweep."""
    from ndpsim.api import SimOptions, simulate

    key = key_row(point)
    row = _base_row(point, key)
    try:
        graph = graph_of(point.model.path, point.model.sha256)
        program = program_of(graph, point.model.sha256, point.hw)
        if point.mode == "timing-only" and not point.per_layer:
            # simulate()'s timing-only path, without the per-layer rows nobody asked for
            # (building them is most of a re-timed point's cost)
            res = run(program, point.hw)
            report = build_report(program, res, point.hw, model=point.model.path,
                                  model_sha256=point.model.sha256, mode=point.mode,
                                  with_layers=False)  # fmt: skip
        else:
            opts = SimOptions(timing_only=point.mode == "timing-only", seed=point.seed)
            report = simulate(graph, point.hw, opts, program=program)
    except Exception as exc:  # recorded, not raised: see the docstring
        message = " ".join(str(exc).split())[:2000]
        row.update(status="failed", error=f"{type(exc).__name__}: {message}")
        return row, []
    row.update(status="ok", error=None)
    row.update(metric_row(report))
    row["layers"] = len(program.layers)
    return row, (layer_rows(report, key) if point.per_layer else [])


def warm_up(mode: str = "timing-only") -> None:
    """Load (or compile) the numba core in this process on a tiny model, for the kernel
    signatures `mode` uses, so no point pays for it. Called once per worker by the engines."""
    from ndpsim.api import SimOptions, simulate
    from ndpsim.zoo import ad_fc_autoencoder

    model = ad_fc_autoencoder(seed=0)
    simulate(model, "generic", SimOptions(timing_only=True))
    if mode == "full":
        simulate(model, "generic", SimOptions(compare_reference=False))
