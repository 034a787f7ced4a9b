"""The body of `ndpsim sweep` (ndpsim/cli.py only declares its options).

Exit codes: 0 when the sweep ran (some points may have failed: they are data); 1 when the
engine failed (a lost scheduler, workers that keep dying: what finished is stored, the same
command resumes) or when every point of some model failed (nothing was learnt about it);
2 for bad input; 128 + the signal on Ctrl-C (130), SIGTERM (143) or SIGHUP (129), after
storing what finished.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer

from ndpsim.sweep.engine import InfrastructureError, make_engine
from ndpsim.sweep.progress import StageLine
from ndpsim.sweep.run import SweepOutcome, prepare, run_sweep, store_for, stored_counts
from ndpsim.sweep.tasks import HELD_SIGNALS


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be: the same path stores what finished."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def _say(text: str) -> None:
    """A line on stderr that cannot fail the exit (a closed SSH session's terminal)."""
    try:
        typer.echo(text, err=True)
    except OSError:
        pass


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
    previous = {s: signal.signal(s, _raise_interrupted) for s in HELD_SIGNALS
                if s != signal.SIGINT}  # fmt: skip
    output = output or default_output(spec_path)
    try:
        _sweep(spec_path, dry_run, jobs, scheduler, dask_local, output, quiet, retry_failed)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        _say(f"interrupted: finished points are stored in {output}; the same command resumes")
        sys.exit(128 + signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sweep(spec_path, dry_run, jobs, scheduler, dask_local, output, quiet, retry_failed) -> None:
    engine = make_engine(jobs, scheduler, dask_local)  # usage errors before any work
    if hasattr(engine, "on_status"):  # a Dask engine: connected before planning
        from ndpsim.sweep.dask_engine import silence_logs

        silence_logs()
        engine.on_status = None if quiet else _say
        if not dry_run:
            engine.start()
    try:
        _plan_and_run(engine, spec_path, dry_run, output, quiet, retry_failed)
    finally:
        if hasattr(engine, "close"):
            engine.close()


def _plan_and_run(engine, spec_path, dry_run, output, quiet, retry_failed) -> None:
    stages = StageLine(quiet)
    try:
        spec, plan = prepare(spec_path, stages)
        if dry_run:
            store = store_for(spec, output)
            stored = store.stored_status(mode=spec.mode) if store.check() else {}
            done, failed = stored_counts(plan, stored, stages)
            stages.close()
            typer.echo(plan.summary())
            retry = f" ({failed} failed; --retry-failed runs them again)" if failed else ""
            typer.echo(f"{done} already in {output}{retry}; {plan.total - done} to run")
            return
    finally:
        stages.close()

    def started(outcome: SweepOutcome) -> None:
        stages.close()
        if not quiet:
            _say(plan.summary())
            failed = f", {outcome.skipped_failed} of them failed" if outcome.skipped_failed else ""
            _say(f"running {outcome.planned - outcome.skipped} points on {engine.describe()} "
                 f"({outcome.skipped} already in {output}{failed})")  # fmt: skip

    try:
        outcome = run_sweep(spec, plan, output, engine, quiet=quiet, on_start=started,
                            retry_failed=retry_failed, progress=stages)  # fmt: skip
    except InfrastructureError as exc:
        _say(f"error: {exc}; finished points are stored in {output}, the same command "
             "resumes (no point was marked failed for this)")  # fmt: skip
        sys.exit(1)
    typer.echo(
        f"{outcome.ran} points in {outcome.elapsed_s:.1f} s ({outcome.rate:.0f} points/s), "
        f"{outcome.failed} failed, {outcome.skipped} skipped (already done); "
        f"results in {output}"
    )
    dead = outcome.dead_models()
    if dead:
        for model in dead:
            why = outcome.first_error_by_model.get(model, "stored as failed by an earlier run")
            _say(f"error: every point of {model} failed: {why}")
        sys.stdout.flush()
        sys.exit(1)
    if outcome.failed:
        _say(f"first failure: {outcome.first_error}")
    sys.stdout.flush()
