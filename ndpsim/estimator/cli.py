"""`ndpsim dataset` and `ndpsim estimator train | eval | predict` (wired into ndpsim/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ndpsim.cli_options import (
    DEBUG,
    Debug,
    JsonOut,
    OpPoint,
    Precision,
    Sets,
    Shapes,
    Values,
    parse_shapes,
    parse_values,
)
from ndpsim.errors import UserError

estimator_app = typer.Typer(
    no_args_is_help=True, help="Train, evaluate and run the NAS latency / energy estimator."
)
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress line")]


def _debug(on: bool) -> None:
    DEBUG["on"] = on


def dataset(
    out: Annotated[Path, typer.Argument(help="output directory")],
    models_per_family: Annotated[int, typer.Option(help="networks per zoo family")] = 6,
    train_configs: Annotated[int, typer.Option(help="sampled training configurations")] = 8,
    eval_configs: Annotated[
        int, typer.Option(help="sampled evaluation configurations (besides the presets)")
    ] = 20,  # fmt: skip
    family: Annotated[list[str] | None, typer.Option(help="only this family (repeatable)")] = None,
    real: Annotated[
        bool, typer.Option(help="also the real networks (light_*, MLPerf Tiny)")
    ] = True,
    seed: Annotated[int, typer.Option()] = 0,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="local processes")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler tcp://HOST:PORT")] = None,
    dask_local: Annotated[int | None, typer.Option(help="start a Dask LocalCluster of N")] = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Simulate zoo and real networks on training and evaluation hardware (resumable)."""
    _debug(debug)
    from ndpsim.estimator import dataset as D
    from ndpsim.sweep.engine import make_engine

    for name, v in (("models-per-family", models_per_family), ("train-configs", train_configs),
                    ("eval-configs", eval_configs)):  # fmt: skip
        if v < 0:
            raise UserError(f"--{name} must be >= 0, got {v}")
    engine = make_engine(jobs, scheduler, dask_local)
    spec = D.DatasetSpec(models_per_family, train_configs, eval_configs, tuple(family or ()),
                         real, seed)  # fmt: skip
    say = (lambda *_: None) if quiet else (lambda m: typer.echo(m, err=True))
    say(f"1/3 networks: {models_per_family} per family")
    networks = D.build_networks(out, spec, engine, quiet)
    hws = D.hardware(spec)
    D.write_manifest(out, spec, networks, hws)
    say(f"2/3 hardware: {len(hws['train'])} training, {len(hws['eval'])} evaluation configurations")
    points = D.plan_points(networks, hws)
    say(f"3/3 simulate: {len(points)} points ({len(networks)} networks) on {engine.describe()}")
    try:
        outcome = D.simulate(out, points, engine, quiet)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: finished points are stored in {out}; the same command resumes",
                   err=True)  # fmt: skip
        raise
    typer.echo(f"{outcome.ran} points simulated in {outcome.elapsed_s:.1f} s, {outcome.failed} "
               f"failed, {outcome.skipped} already done; dataset in {out}")  # fmt: skip
    if outcome.failed:
        typer.echo(f"first failure: {outcome.first_error}", err=True)


@estimator_app.command()
def train(
    data: Annotated[Path, typer.Argument(help="dataset directory (ndpsim dataset)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="estimator file (.npz)")] = Path(
        "estimator.npz"
    ),
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Fit the residual regressors on the dataset's training networks and hardware."""
    _debug(debug)
    from ndpsim.estimator.train import train as fit

    est = fit(data, quiet, log=(lambda *_: None) if quiet else (lambda m: typer.echo(m, err=True)))
    est.save(out)
    typer.echo(f"estimator written to {out} ({len(est.forests)} residual regressors, "
               f"{est.info['rows']} training kernels)")  # fmt: skip


@estimator_app.command("eval")
def eval_(
    data: Annotated[Path, typer.Argument(help="dataset directory (ndpsim dataset)")],
    json_out: JsonOut = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """The evaluation protocol: per configuration and family, leave-one-family-out, real
    networks, kernel level, baselines."""
    _debug(debug)
    from ndpsim.estimator.evaluate import evaluate, render

    result = evaluate(data, quiet, log=(lambda *_: None) if quiet else (
        lambda m: typer.echo(m, err=True)))  # fmt: skip
    typer.echo(render(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=1))


@estimator_app.command()
def predict(
    models: Annotated[list[Path], typer.Argument(help="ONNX models (one or more)")],
    estimator: Annotated[Path, typer.Option("--estimator", "-e", help="estimator file")] = Path(
        "estimator.npz"
    ),
    preset: Annotated[
        list[str] | None,
        typer.Option("--preset", "-p", help="hardware preset (repeatable; default generic)"),
    ] = None,  # fmt: skip
    config: Annotated[
        list[Path] | None, typer.Option("--config", "-c", help="hardware file (repeatable)")
    ] = None,  # fmt: skip
    sweep: Annotated[
        Path | None, typer.Option(help="a sweep spec: every configuration it generates")
    ] = None,  # fmt: skip
    set_: Sets = None,
    operating_point: OpPoint = None,
    input_shape: Shapes = None,
    input_value: Values = None,
    precision: Precision = None,
    json_out: JsonOut = None,
    debug: Debug = False,
) -> None:
    """Predicted latency and energy of models on hardware, without simulating them."""
    _debug(debug)
    from ndpsim.sim.numba_setup import numba_target_without_scipy

    numba_target_without_scipy()  # as `simulate`: no estimator kernel uses np.dot or linalg
    from ndpsim.estimator.model import Estimator
    from ndpsim.estimator.predict import Predictor
    from ndpsim.precision_rules import expand_rule_args
    from ndpsim.program_cache import ProgramCache

    for m in models:
        if not m.is_file():
            raise UserError(f"model file not found: {m}")
    est = Estimator.load(estimator)
    hws = _hardware_list(preset, config, sweep, set_, operating_point, models[0])
    shapes, values = parse_shapes(input_shape), parse_values(input_value)
    rules = expand_rule_args(precision)
    results = []
    for m in models:
        p = Predictor(m, input_shapes=shapes, input_values=values, precision=rules,
                      cache=ProgramCache.default())  # a repeat run imports no onnx
        for pr in est.predict(p, hws):
            results.append((m, pr))
    warned = set()
    for _, pr in results:
        if pr.warnings and pr.config_id not in warned:
            warned.add(pr.config_id)
            why = ("the analytic model holds there; the residual regressors extrapolate"
                   if est.forests else "the prediction is the analytic model's (no regressor)")
            typer.echo(f"warning: {pr.hardware} lies outside the training hardware "
                       f"({'; '.join(pr.warnings)}): {why}", err=True)  # fmt: skip
    if len(results) == 1:
        pr = results[0][1]
        typer.echo(f"latency   {pr.latency_us:,.2f} us ({pr.latency_cycles:,.0f} cycles, "
                   "predicted)")  # fmt: skip
        typer.echo(f"energy    {_sig4(pr.energy_uj)} uJ (predicted)")
        typer.echo(f"weights   {'resident' if pr.weights_resident else 'streamed'}; "
                   f"spilled activations: {pr.spilled_values}")  # fmt: skip
    else:
        typer.echo(f"{'model':28s} {'hardware':16s} {'latency us':>14s} {'energy uJ':>11s}")
        for m, pr in results:
            typer.echo(f"{m.name[:28]:28s} {pr.hardware[:16]:16s} {pr.latency_us:14,.2f} "
                       f"{_sig4(pr.energy_uj):>11s}")  # fmt: skip
    if json_out:
        json_out.write_text(json.dumps([{"model": str(m), **pr.as_dict()} for m, pr in results],
                                       indent=1))  # fmt: skip


def _sig4(x: float) -> str:
    """Four significant figures."""
    return f"{x:#.4g}".rstrip(".")


def _hardware_list(presets, configs, sweep, sets, op, model: Path):
    from ndpsim.config import resolve_hardware

    hws = [resolve_hardware(p, None, sets, op) for p in presets or ()]
    hws += [resolve_hardware(None, c, sets, op) for c in configs or ()]
    if sweep is not None:
        from ndpsim.sweep.plan import make_plan
        from ndpsim.sweep.spec import load_spec

        spec, root = load_spec(sweep)
        plan = make_plan(spec.model_copy(update={"models": [str(model.resolve())]}), root)
        hws += [hw for _, hw in plan.hardware()]
    return hws or [resolve_hardware(None, None, sets, op)]
