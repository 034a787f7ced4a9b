"""What a worker does with one point: simulate it and return its rows.

Each worker process keeps one `Session` per model (and fixed inputs) it has seen: imported
once, checked against the planned content hash. A session keeps the last few lowered
programs keyed by structural fields, so points that differ only in timing or energy fields
re-run the core on the same program. The numba core is warmed once per worker (`warm_up`),
never per point.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ndpsim import __version__
from ndpsim.options import SimOptions
from ndpsim.session import Session
from ndpsim.sim.run import run
from ndpsim.sweep.plan import ModelRef, Point
from ndpsim.sweep.rows import config_row, layer_rows, metric_row

_SESSIONS: dict[tuple[str, str], Session] = {}


def session_of(model: ModelRef) -> Session:
    """The session of a model file with its fixed inputs, once per worker; refuses a file
    changed since the sweep was planned (its rows would be keyed by the wrong hash)."""
    session = _SESSIONS.get(model.key)
    if session is None:
        data = Path(model.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != model.sha256:
            raise RuntimeError(f"{model.path} changed since the sweep was planned")
        session = _SESSIONS[model.key] = Session(
            data,
            input_shapes=model.input_shapes or None,
            input_values=model.input_values or None,
            name=model.path,
        )
    return session


def key_row(point: Point) -> dict[str, Any]:
    return {
        "model_sha256": point.model.sha256,
        "model_inputs": point.model.inputs,
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
    key = key_row(point)
    row = _base_row(point, key)
    try:
        if point.hw.config_id() != point.config_id:  # the planner's ids are computed apart
            raise RuntimeError(f"planned config_id {point.config_id} is not the config's "
                               f"{point.hw.config_id()}")  # fmt: skip
        session = session_of(point.model)
        program = session.program(point.hw)
        if point.mode == "timing-only":
            # without the per-layer rows nobody asked for (most of a re-timed point's cost)
            report = session.report(program, run(program, point.hw), point.hw, point.mode,
                                    with_layers=point.per_layer)  # fmt: skip
        else:
            report = session.simulate(point.hw, SimOptions(seed=point.seed))
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
    from ndpsim.config import load_preset
    from ndpsim.zoo import ad_fc_autoencoder

    session, hw = Session(ad_fc_autoencoder(seed=0)), load_preset("generic")
    session.time(hw)
    if mode == "full":
        session.simulate(hw, SimOptions(compare_reference=False))
