"""The body of `ndpsim sweep` (ndpsim/cli.py only declares its options)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ndpsim.sweep.engine import make_engine
from ndpsim.sweep.run import SweepOutcome, count_done, prepare, run_sweep
from ndpsim.sweep.store import ResultStore


def default_output(spec_path: Path) -> Path:
    return Path(f"{spec_path.stem}-results")


def sweep_command(
    spec_path: Path,
    *,
    dry_run: bool,
    jobs: int | None,
    scheduler: str | None,
    dask_local: int | None,
    output: Path | None,
    quiet: bool,
    retry_failed: bool = False,
) -> None:
    engine = make_engine(jobs, scheduler, dask_local)  # usage errors before any work
    spec, plan = prepare(spec_path)
    output = output or default_output(spec_path)
    if dry_run:
        store = ResultStore(output)
        done = count_done(plan, store.done_keys(mode=spec.mode)) if output.is_dir() else 0
        typer.echo(plan.summary())
        typer.echo(f"{done} already in {output}; {plan.total - done} to run")
        return

    def started(outcome: SweepOutcome) -> None:
        if not quiet:
            typer.echo(plan.summary(), err=True)
            typer.echo(
                f"running {outcome.planned - outcome.skipped} points on {engine.describe()} "
                f"({outcome.skipped} already in {output})",
                err=True,
            )

    try:
        outcome = run_sweep(spec, plan, output, engine, quiet=quiet, on_start=started,
                            retry_failed=retry_failed)  # fmt: skip
    except KeyboardInterrupt:
        typer.echo(f"interrupted: finished points are stored in {output}; the same command "
                   "resumes", err=True)  # fmt: skip
        raise
    typer.echo(
        f"{outcome.ran} points in {outcome.elapsed_s:.1f} s ({outcome.rate:.0f} points/s), "
        f"{outcome.failed} failed, {outcome.skipped} skipped (already done); "
        f"results in {output}"
    )
    if outcome.failed:
        typer.echo(f"first failure: {outcome.first_error}", err=True)
    sys.stdout.flush()
