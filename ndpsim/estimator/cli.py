"""`ndpsim dataset` and `ndpsim estimator train | eval | predict` (wired into ndpsim/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ndpsim.errors import UserError

estimator_app = typer.Typer(
    no_args_is_help=True, help="Train, evaluate and run the NAS latency / energy estimator."
)

Debug = Annotated[bool, typer.Option("--debug", help="show tracebacks")]
Presets = Annotated[
    list[str] | None, typer.Option("--preset", "-p", help="hardware preset (repeatable)")
]


def _debug(on: bool) -> None:
    from ndpsim.cli import _DEBUG

    _DEBUG["on"] = on


def _hws(presets: list[str] | None):
    from ndpsim.config import load_preset

    return [load_preset(p) for p in (presets or ["neural-engine", "generic", "ndp120"])]


def _mapper(workers: int, scheduler: str | None):
    from ndpsim.estimator.dataset import process_pool_mapper, serial_mapper

    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise UserError(
                "--scheduler needs the 'distributed' package (pip install ndpsim[sweep])"
            ) from None
        client = Client(scheduler)
        return lambda fn, items: client.gather(client.map(fn, list(items)))
    return serial_mapper if workers == 1 else process_pool_mapper(workers)


def dataset(
    out: Annotated[Path, typer.Argument(help="output directory (Parquet tables)")],
    preset: Presets = None,
    kernels: Annotated[int, typer.Option(help="kernels sampled from the prior")] = 3000,
    models_per_family: Annotated[int, typer.Option(help="training architectures per family")] = 200,
    model_presets: Annotated[
        list[str] | None, typer.Option("--model-preset", help="configs the models run on")
    ] = None,
    test_models: Annotated[int, typer.Option(help="held-out random architectures")] = 2000,
    adaptive_rounds: Annotated[int, typer.Option(help="re-sampling rounds (error > 10%)")] = 1,
    per_bad: Annotated[int, typer.Option(help="neighbours per badly predicted kernel")] = 20,
    max_bad: Annotated[int, typer.Option(help="bad kernels re-sampled per round at most")] = 40,
    workers: Annotated[int, typer.Option(help="local worker processes (1: in process)")] = 2,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    debug: Debug = False,
) -> None:
    """Sample kernels and architectures, simulate them, write the Parquet tables."""
    _debug(debug)
    from ndpsim.estimator import dataset as D
    from ndpsim.zoo.search_space import FAMILIES

    for name, v in (
        ("kernels", kernels),
        ("models-per-family", models_per_family),
        ("test-models", test_models),
        ("adaptive-rounds", adaptive_rounds),
    ):
        if v < 0:
            raise UserError(f"--{name} must be >= 0, got {v}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    hws = _hws(preset)
    mhws = _hws(model_presets or ["neural-engine"])
    mapper = _mapper(workers, scheduler)
    D.write_dataset(
        out,
        {"hw_configs": D.hw_rows(list({h.config_id(): h for h in hws + mhws}.values()))},
        seed,
        "hw",
    )
    if kernels:
        rows = D.sample_kernels(kernels, hws, seed, mapper, quiet=quiet)
        D.write_dataset(out, {"kernels": rows}, seed, f"kernels-s{seed}")
    if models_per_family:
        m, k = D.sample_models(
            {f: models_per_family for f in FAMILIES}, "train", mhws, seed + 1, mapper, quiet=quiet
        )
        D.write_dataset(out, {"models": m, "model_kernels": k}, seed, f"train-s{seed}")
    if test_models:
        m, k = D.sample_models(
            {"random": test_models},
            "test",
            mhws,
            seed + 2,
            mapper,
            quiet=quiet,
            first_id=10_000_000,
        )
        D.write_dataset(out, {"models": m, "model_kernels": k}, seed, f"test-s{seed}")
    for r in range(adaptive_rounds):
        from ndpsim.estimator.adaptive import adaptive_round

        n = adaptive_round(out, hws, per_bad, max_bad, seed + 100 + r, mapper, quiet)
        if not quiet:
            typer.echo(f"adaptive round {r + 1}: {n} kernels added")
    typer.echo(f"dataset written to {out}")


@estimator_app.command()
def train(
    data: Annotated[Path, typer.Argument(help="dataset directory (ndpsim dataset)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="estimator file (.npz)")] = Path(
        "estimator.npz"
    ),
    exclude_family: Annotated[str | None, typer.Option(help="leave this family out")] = None,
    debug: Debug = False,
) -> None:
    """Fit one regressor per kernel type (log latency and log energy) and the model-level sum."""
    _debug(debug)
    from ndpsim.estimator.model import fit_from_dataset

    est = fit_from_dataset(data, exclude_family=exclude_family)
    est.save(out)
    typer.echo(f"estimator written to {out} ({len(est.forests)} regressors)")


@estimator_app.command("eval")
def eval_(
    data: Annotated[Path, typer.Argument(help="dataset directory (ndpsim dataset)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the metrics")] = None,
    lofo: Annotated[bool, typer.Option(help="also leave-one-family-out")] = True,
    debug: Debug = False,
) -> None:
    """The evaluation report of the protocol: kernel and model level, baselines beside."""
    _debug(debug)
    from ndpsim.estimator.evaluate import evaluate, render

    result = evaluate(data, lofo=lofo)
    typer.echo(render(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))


@estimator_app.command()
def predict(
    target: Annotated[Path, typer.Argument(help="an ONNX model or a genome .json")],
    estimator: Annotated[Path, typer.Option("--estimator", "-e")] = Path("estimator.npz"),
    preset: Annotated[str | None, typer.Option("--preset", "-p")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s")] = None,
    debug: Debug = False,
) -> None:
    """Predicted latency and energy of a model (no simulation)."""
    _debug(debug)
    from ndpsim.config import resolve_hardware
    from ndpsim.estimator.model import Estimator

    if not target.exists():
        raise UserError(f"file not found: {target}")
    hw = resolve_hardware(preset or "neural-engine", config, set_)
    genome = None
    if target.suffix == ".json":
        from pydantic import ValidationError

        from ndpsim.zoo.search_space import Genome

        try:
            genome = Genome.model_validate_json(target.read_text())
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"]) or "genome"
            raise UserError(f"{target}: not a genome: {loc}: {err['msg']}") from None
    est = Estimator.load(estimator)
    if genome is not None:
        cycles, energy = est.predict_genomes([genome], hw)
    else:
        cycles, energy = est.predict_onnx(target, hw)
    typer.echo(f"latency   {cycles[0] / hw.clock_mhz:.2f} us ({cycles[0]:,.0f} cycles, predicted)")
    typer.echo(f"energy    {energy[0] / 1e6:.4f} uJ (predicted)")
