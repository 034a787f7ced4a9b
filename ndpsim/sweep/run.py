"""A sweep from start to end: plan, skip what is done, run on an engine, store, report.

1. `load_spec` — validate the spec file;
2. `make_plan` — models x configurations, constrained and de-duplicated;
3. `ResultStore.done_keys` — points this simulator version already stored (resume);
4. `run_points(evaluate, ...)` — simulate the rest on the chosen engine;
5. `ResultStore.add` — batched atomic Parquet writes, as results arrive.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ndpsim.sweep.engine import LocalEngine, run_points
from ndpsim.sweep.plan import Plan, make_plan
from ndpsim.sweep.point import evaluate, failed_row, warm_up
from ndpsim.sweep.progress import Progress
from ndpsim.sweep.spec import SweepSpec, load_spec
from ndpsim.sweep.store import ResultStore

CHUNK_POINTS = {"timing-only": 16, "full": 2}  # points per task: milliseconds vs ~10s of ms


@dataclass
class SweepOutcome:
    planned: int
    skipped: int  # already stored by an earlier run
    ran: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.ran / self.elapsed_s if self.elapsed_s > 0 else 0.0


def prepare(spec_path: str | Path) -> tuple[SweepSpec, Plan]:
    spec, root = load_spec(spec_path)
    return spec, make_plan(spec, root)


def count_done(plan: Plan, done: set[tuple[str, str]]) -> int:
    return sum((m.sha256, cid) in done for m in plan.models for cid, _ in plan.configs)


def run_sweep(
    spec: SweepSpec,
    plan: Plan,
    output: str | Path,
    engine=None,
    *,
    quiet: bool = False,
    chunk_size: int | None = None,
    on_start: Callable[[SweepOutcome], None] | None = None,
    on_point: Callable[[SweepOutcome], None] | None = None,
    retry_failed: bool = False,
) -> SweepOutcome:
    """Run the plan's points not yet in `output` on `engine` (default: local pool).
    `on_start` sees the counts before the first point, `on_point` after each point.
    `retry_failed` first removes stored failed points, so they run again."""
    engine = engine or LocalEngine()
    with ResultStore(output) as store:
        if retry_failed:
            store.drop_failed()
        done = store.done_keys(mode=spec.mode)
        outcome = SweepOutcome(plan.total, count_done(plan, done))
        if on_start:
            on_start(outcome)
        progress = Progress(plan.total - outcome.skipped, quiet)
        results = run_points(
            evaluate,
            plan.points(spec, done),
            engine,
            chunk_size=chunk_size or CHUNK_POINTS[spec.mode],
            initializer=functools.partial(warm_up, spec.mode),
        )
        try:
            for point, value, error in results:
                row, layers = value if error is None else (failed_row(point, error), [])
                failed = row["status"] != "ok"
                if failed and outcome.first_error is None:
                    outcome.first_error = row["error"]
                store.add(row, layers)
                outcome.ran += 1
                outcome.failed += failed
                progress.update(1, int(failed))
                if on_point:
                    on_point(outcome)
        finally:
            progress.close()
            outcome.elapsed_s = progress.elapsed_s
        store.flush()
        store.record_run(
            spec.model_dump(mode="json"),
            {
                "engine": engine.describe(),
                "planned": outcome.planned,
                "skipped": outcome.skipped,
                "ran": outcome.ran,
                "failed": outcome.failed,
                "elapsed_s": round(outcome.elapsed_s, 3),
            },
        )
    return outcome
