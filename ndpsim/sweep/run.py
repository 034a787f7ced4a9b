"""A sweep from start to end: plan, skip what is done, run on an engine, store, report.

1. `load_spec` — validate the spec file;
2. `make_plan` — models x configurations, constrained and de-duplicated;
3. `ResultStore.stored_status` — points this simulator version already stored (resume);
4. `run_points(evaluate, ...)` — simulate the rest on the chosen engine;
5. `ResultStore.add` — batched atomic Parquet writes, as results arrive.

A run that stops early (Ctrl-C, SIGTERM, an InfrastructureError) stores what finished and
records itself in _sweep.json with the reason before the exception goes on.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ndpsim.sweep.engine import LocalEngine, run_points
from ndpsim.sweep.plan import Plan, Progress, make_plan
from ndpsim.sweep.point import evaluate, failed_row, warm_up
from ndpsim.sweep.progress import Progress as ProgressLine
from ndpsim.sweep.spec import SweepSpec, load_spec
from ndpsim.sweep.store import ResultStore

CHUNK_POINTS = {"timing-only": 16, "full": 2}  # points per task: milliseconds vs ~10s of ms


@dataclass
class SweepOutcome:
    planned: int
    skipped: int  # already stored by an earlier run
    skipped_failed: int = 0  # ... of which failed then (--retry-failed runs them again)
    ran: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    first_error: str | None = None
    # per model partition: points stored (before this run or by it), and of those ok
    stored_by_model: Counter = field(default_factory=Counter)
    ok_by_model: Counter = field(default_factory=Counter)
    first_error_by_model: dict[str, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ran / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def dead_models(self) -> list[str]:
        """Models with stored points, none of them ok (nothing about them was learnt)."""
        return [m for m, n in self.stored_by_model.items() if n and not self.ok_by_model[m]]


def prepare(spec_path: str | Path, progress: Progress | None = None) -> tuple[SweepSpec, Plan]:
    spec, root = load_spec(spec_path)
    return spec, make_plan(spec, root, progress)


def stored_counts(plan: Plan, stored: dict, progress: Progress | None = None,
                  outcome: SweepOutcome | None = None) -> tuple[int, int]:  # fmt: skip
    """(points of the plan already stored, of which failed); per model into `outcome`."""
    if not stored:
        return 0, 0
    ids = plan.config_ids(progress)
    done = failed = 0
    for model in plan.models:
        for cid in ids:
            status = stored.get((model.sha256, model.inputs, cid))
            if status is not None:
                done += 1
                failed += status != "ok"
                if outcome is not None:
                    outcome.stored_by_model[model.name] += 1
                    outcome.ok_by_model[model.name] += status == "ok"
    return done, failed


def count_done(plan: Plan, done: set | dict) -> int:
    """Points of the plan among `done` keys."""
    return stored_counts(plan, dict.fromkeys(done, "ok"))[0]


def store_for(spec: SweepSpec, output: str | Path) -> ResultStore:
    """The store of a sweep's output: per_layer changes what is written, so it is checked."""
    return ResultStore(output, settings={"per_layer": spec.per_layer})


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
    progress: Progress | None = None,
) -> SweepOutcome:
    """Run the plan's points not yet in `output` on `engine` (default: local pool).
    `on_start` sees the counts before the first point, `on_point` after each point,
    `progress` the matching of stored points on a resume.
    `retry_failed` first removes stored failed points, so they run again."""
    engine = engine or LocalEngine()
    with store_for(spec, output) as store:
        if retry_failed:
            store.drop_failed()
        stored = store.stored_status(mode=spec.mode)
        outcome = SweepOutcome(plan.total, 0)
        outcome.skipped, outcome.skipped_failed = stored_counts(plan, stored, progress, outcome)
        if on_start:
            on_start(outcome)
        line = ProgressLine(plan.total - outcome.skipped, quiet)
        results = run_points(
            evaluate,
            plan.points(spec, stored),
            engine,
            chunk_size=chunk_size or CHUNK_POINTS[spec.mode],
            initializer=functools.partial(warm_up, spec.mode),
        )
        stopped = None
        try:
            for point, value, error in results:
                # evaluate() returns a failure as a row; an error here is the engine's
                # verdict on the point (it killed its worker, alone, twice)
                row, layers = value if error is None else (failed_row(point, error), [])
                _count(outcome, point.model.name, row)
                store.add(row, layers)
                line.update(1, int(row["status"] != "ok"))
                if on_point:
                    on_point(outcome)
        except BaseException as exc:
            stopped = f"{type(exc).__name__}: {exc}"[:500]
            raise
        finally:
            line.close()
            outcome.elapsed_s = line.elapsed_s
            store.flush()
            store.record_run(
                spec.model_dump(mode="json"),
                {"engine": engine.describe(), "planned": outcome.planned,
                 "skipped": outcome.skipped, "ran": outcome.ran, "failed": outcome.failed,
                 "elapsed_s": round(outcome.elapsed_s, 3), "stopped": stopped},
            )  # fmt: skip
    return outcome


def _count(outcome: SweepOutcome, model: str, row: dict) -> None:
    failed = row["status"] != "ok"
    outcome.ran += 1
    outcome.failed += failed
    outcome.stored_by_model[model] += 1
    outcome.ok_by_model[model] += not failed
    if failed:
        outcome.first_error = outcome.first_error or row["error"]
        outcome.first_error_by_model.setdefault(model, row["error"])
