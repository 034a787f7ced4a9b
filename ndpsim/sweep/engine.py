"""Engines that apply a function to many points: a local process pool or a Dask cluster.

    for point, value, error in run_points(fn, points, LocalEngine(jobs=2)):
        ...

`fn` must be a module-level (picklable) function of one point. Points travel in chunks (one
task per chunk keeps IPC and scheduler overhead per point small), at most a few chunks per
worker in flight (memory stays flat however many points there are), and results come back
in completion order. An exception raised by `fn` is returned as that point's error.
Everything else that goes wrong (a lost scheduler, workers that keep dying, a cancelled
task, a failed initializer) raises `InfrastructureError` and reports no point: the points
in flight are not lost, a resume runs them (tasks.py). `initializer` runs once per worker
process before its first point (numba warm-up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ndpsim.errors import ConfigError
from ndpsim.sweep.pool import LocalEngine
from ndpsim.sweep.tasks import (
    Fn,
    InfrastructureError,
    Result,
    apply_chunk,
    apply_chunk_one_thread,
    chunks_of,
)

__all__ = [
    "InfrastructureError",
    "LocalEngine",
    "Result",
    "apply_chunk",
    "apply_chunk_one_thread",
    "make_engine",
    "run_points",
]


def make_engine(jobs: int | None = None, scheduler: str | None = None,
                dask_local: int | None = None):  # fmt: skip
    """The CLI's rule: at most one of --jobs, --scheduler, --dask-local; default a local pool."""
    given = [o for o, v in (("--jobs", jobs), ("--scheduler", scheduler),
                            ("--dask-local", dask_local)) if v is not None]  # fmt: skip
    if len(given) > 1:
        raise ConfigError(f"give one of {', '.join(given)}, not several")
    if scheduler is not None or dask_local is not None:
        from ndpsim.sweep.dask_engine import DaskEngine

        return DaskEngine(scheduler, dask_local)
    return LocalEngine(jobs)


def run_points(
    fn: Fn,
    points: Iterable[Any],
    engine: Any = None,
    *,
    chunk_size: int = 16,
    initializer: Callable[[], None] | None = None,
) -> Iterator[tuple[Any, Any, str | None]]:
    """Apply `fn` to every point on `engine` (a LocalEngine or a DaskEngine; default a local
    pool over all cores); yields (point, value, error) in completion order, error being
    None on success. Raises InfrastructureError when the engine, not a point, fails."""
    engine = engine or LocalEngine()
    for chunk, results in engine.run(fn, chunks_of(points, chunk_size), initializer):
        for point, (value, error) in zip(chunk, results, strict=True):
            yield point, value, error
