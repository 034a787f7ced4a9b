"""The `ndpsim` command. Exit codes: 0 ok, 1 failure (a bug of ours, or a failed --budget),
2 bad input or usage.
User errors print one line on stderr; `--debug` shows the traceback."""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from ndpsim.cli_options import (
    DEBUG,
    Branch,
    Calib,
    CalibN,
    Config,
    Debug,
    JsonOut,
    OpPoint,
    Precision,
    Preset,
    Quant,
    Sets,
    Shapes,
    Threads,
    Values,
    hardware,
    parse_shapes,
    parse_values,
    ptq_options,
    set_threads,
)
from ndpsim.errors import InputShapesError, InputShapeWarning, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Cycle-approximate simulator of a neural decision processor (NDP).",
)

_EXTRAS = {"pyarrow": "sweep", "distributed": "sweep", "matplotlib": "plot", "sklearn": "estimator",
           "scipy": "estimator"}  # optional deps  # fmt: skip

def _simulate(model: Path, preset, config, sets, timing_only, inputs, seed, shapes, outputs=False,
              op=None, values=None, precision=None, calibration=None, calib_n=0,
              quant=None, threads=None, branch=None):  # fmt: skip
    """[(branch label, report)]: one run, or one per branch `--branch` asks for (timing only,
    a model with Ifs on run-time data; ndpsim/branching.py)."""
    from ndpsim.api import SimOptions, simulate
    from ndpsim.branching import check_full_run, timing_runs
    from ndpsim.precision_rules import expand_rule_args
    from ndpsim.sim.numba_setup import numba_target_without_scipy

    if not model.exists():
        raise UserError(f"model file not found: {model}")
    set_threads(threads)
    numba_target_without_scipy()
    hw = hardware(preset, config, sets, op)
    opts = SimOptions(
        timing_only=timing_only,
        inputs=str(inputs) if inputs else None,
        calibration=str(calibration) if calibration else None,
        calibration_samples=max(0, calib_n),
        seed=seed,
        input_shapes=parse_shapes(shapes),
        input_values=parse_values(values),
        include_outputs=outputs,
        precision=tuple(expand_rule_args(precision)),
        ptq=ptq_options(quant),
    )
    check_full_run(branch, timing_only)
    try:
        return timing_runs(model, hw, opts, branch) if timing_only else [
            ("", simulate(model, hw, opts))]  # fmt: skip
    except InputShapesError as exc:  # the same command with the flags, ready to paste
        command = shlex.join(["ndpsim", *sys.argv[1:]])
        raise UserError(f"{exc}; run: {command} {exc.flags}") from None


@app.command()
def simulate(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    json_out: JsonOut = None,
    timing_only: Annotated[bool, typer.Option("--timing-only", help="skip the arithmetic")] = False,
    inputs: Annotated[Path | None, typer.Option("--inputs", help=".npz of input arrays")] = None,
    seed: Annotated[int, typer.Option(help="seed of the random input")] = 0,
    input_shape: Shapes = None,
    operating_point: OpPoint = None,
    rate: Annotated[str | None, typer.Option(help="always-on: 50Hz, or a hop: 20ms")] = None,
    battery_mah: Annotated[float | None, typer.Option(help="battery mAh (with --rate)")] = None,
    battery_v: Annotated[float | None, typer.Option(help="battery voltage (default 3)")] = None,
    budget: Annotated[bool, typer.Option(help="check the part's memory (exit 1: over)")] = False,
    budget_weights: Annotated[str | None, typer.Option(help="weight budget: 64KiB, 1MB")] = None,
    budget_activations: Annotated[str | None, typer.Option(help="activation budget")] = None,
    input_value: Values = None,
    precision: Precision = None,
    calibration: Calib = None,
    calibration_samples: CalibN = 0,
    quant: Quant = None,
    threads: Threads = None,
    branch: Branch = None,
    debug: Debug = False,
) -> None:
    """Simulate MODEL: latency, energy, memory traffic and agreement with onnxruntime;
    always-on power (--rate), memory budgets (--budget*), per-layer precision (--precision)."""
    DEBUG["on"] = debug
    from ndpsim.report.extras import extras
    from ndpsim.report.text import summary

    runs = _simulate(model, preset, config, set_, timing_only, inputs, seed, input_shape,
                     op=operating_point, values=input_value, precision=precision,
                     calibration=calibration, calib_n=calibration_samples,
                     quant=quant, threads=threads, branch=branch)  # fmt: skip
    done, ok = {}, True
    for label, report in runs:
        report, text, fits = extras(report, rate, battery_mah, battery_v, budget, budget_weights,
                                    budget_activations)  # fmt: skip
        ok &= fits
        head = f"== every If on run-time data on its {label}-branch ==\n" if len(runs) > 1 else ""
        typer.echo(head + summary(report) + text + ("\n" if len(runs) > 1 else ""))
        done[label] = report
    if json_out:  # one report, or {"then": report, "else": report} for --branch both
        data = {k: r.model_dump(mode="json") for k, r in done.items()}
        json_out.write_text(next(iter(done.values())).model_dump_json(indent=2)
                            if len(done) == 1 else json.dumps(data, indent=2))  # fmt: skip
        typer.echo(f"report written to {json_out}")
    if not ok:
        sys.exit(1)


@app.command()
def profile(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    json_out: JsonOut = None,
    timing_only: Annotated[bool, typer.Option("--timing-only")] = True,
    input_shape: Shapes = None,
    operating_point: OpPoint = None,
    input_value: Values = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="per-layer bar chart (.png)")] = None,
    precision: Precision = None,
    threads: Threads = None,
    debug: Debug = False,
) -> None:
    """Per-layer table: cycles, bound, bits, MACs, utilization, energy and traffic."""
    DEBUG["on"] = debug
    from ndpsim.report.text import layer_table, summary

    report = _simulate(model, preset, config, set_, timing_only, None, 0, input_shape,
                       op=operating_point, values=input_value, precision=precision,
                       threads=threads, branch="then" if timing_only else None)[0][1]  # fmt: skip
    typer.echo(layer_table(report))
    typer.echo("")
    typer.echo(summary(report))
    if json_out:
        json_out.write_text(report.model_dump_json(indent=2))
    if plot:
        from ndpsim.plot import layers_plot

        layers_plot(report, plot)
        typer.echo(f"plot written to {plot}")


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="sweep spec (.yaml/.toml/.json)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the point count")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="local processes")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler tcp://HOST:PORT")] = None,
    dask_local: Annotated[int | None, typer.Option(help="start a Dask LocalCluster of N")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="results dir")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress line")] = False,
    retry_failed: Annotated[bool, typer.Option(help="run stored failed points again")] = False,
    debug: Debug = False,
) -> None:
    """Simulate every (model, configuration) of SPEC into a resumable Parquet dataset."""
    DEBUG["on"] = debug
    from ndpsim.sweep.command import sweep_command

    sweep_command(spec, dry_run=dry_run, jobs=jobs, scheduler=scheduler, dask_local=dask_local,
                  output=output, quiet=quiet, retry_failed=retry_failed)  # fmt: skip


@app.command()
def plot(
    results: Annotated[Path, typer.Argument(help="sweep results dir (or a Parquet file)")],
    x: Annotated[str, typer.Option(help="column on the x axis")] = "energy_uj",
    y: Annotated[str, typer.Option(help="column on the y axis")] = "latency_us",
    color: Annotated[str | None, typer.Option(help="column that colors the points")] = None,
    pareto: Annotated[bool, typer.Option("--pareto", help="draw the Pareto front")] = False,
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("sweep.png"),
    debug: Debug = False,
) -> None:
    """Scatter two result columns (one panel per model), optionally with the Pareto front."""
    DEBUG["on"] = debug
    from ndpsim.plot import pareto_plot

    info = pareto_plot(results, x, y, output, color=color, pareto=pareto, model=model)
    front = f", Pareto front sizes {info['pareto']}" if pareto else ""
    typer.echo(f"plot of {info['points']} points written to {output}{front}")


@app.command()
def trace(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    out: Annotated[Path, typer.Option("--out", "-o", help="trace .json")] = Path("trace.json"),
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    operating_point: OpPoint = None,
    input_shape: Shapes = None,
    debug: Debug = False,
) -> None:
    """Write a Chrome / Perfetto trace of the run (open in ui.perfetto.dev)."""
    DEBUG["on"] = debug
    from ndpsim.api import trace_model
    from ndpsim.report.trace import write_trace

    if not model.exists():
        raise UserError(f"model file not found: {model}")
    hw = hardware(preset, config, set_, operating_point)
    data, report = trace_model(model, hw, parse_shapes(input_shape))
    write_trace(data, out)
    spans = sum(1 for e in data["traceEvents"] if e["ph"] == "X")
    typer.echo(f"trace of {report.latency_us:,.2f} us ({spans} spans) written to {out}; "
               "open it in ui.perfetto.dev or chrome://tracing")  # fmt: skip


@app.command()
def precision(
    model: Annotated[Path, typer.Argument(help="float ONNX model file")],
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    bits: Annotated[str, typer.Option(help="bit widths to try, e.g. 8,4,2")] = "8,4,2",
    target_sqnr: Annotated[float | None, typer.Option("--target-sqnr", help="dB")] = None,
    energy_budget_uj: Annotated[float | None, typer.Option("--energy-budget-uj")] = None,
    save: Annotated[Path | None, typer.Option(help="write the suggestion (.yaml)")] = None,
    inputs: Annotated[Path | None, typer.Option("--inputs", help=".npz of eval inputs")] = None,
    eval_samples: Annotated[int, typer.Option(help="seeded random eval inputs")] = 4,
    seed: Annotated[int, typer.Option(help="seed of the random inputs")] = 0,
    calibration: Calib = None,
    calibration_samples: CalibN = 8,
    quant: Quant = None,
    operating_point: OpPoint = None,
    input_shape: Shapes = None,
    debug: Debug = False,
) -> None:
    """Per-layer precision sensitivity (output SQNR, latency and energy for each layer and
    bit width) and a suggested assignment under --target-sqnr or --energy-budget-uj."""
    DEBUG["on"] = debug
    from ndpsim.api import SimOptions
    from ndpsim.precision import sensitivity as S
    from ndpsim.precision_rules import rules_text

    if not model.exists():
        raise UserError(f"model file not found: {model}")
    if target_sqnr is not None and energy_budget_uj is not None:
        raise UserError("give either --target-sqnr or --energy-budget-uj, not both")
    try:
        widths = sorted({int(b) for b in bits.split(",")}, reverse=True)
    except ValueError:
        raise UserError(f"--bits expects a list like 8,4,2, got {bits!r}") from None
    if eval_samples < 1:
        raise UserError("--eval-samples must be at least 1")
    hw = hardware(preset, config, set_, operating_point)
    opts = SimOptions(inputs=str(inputs) if inputs else None, seed=seed,
                      calibration=str(calibration) if calibration else None,
                      calibration_samples=max(0, calibration_samples),
                      input_shapes=parse_shapes(input_shape), ptq=ptq_options(quant))  # fmt: skip
    ev = S.Evaluator(model, hw, opts, eval_samples)
    n = len(S.candidates(ev, widths))
    with typer.progressbar(length=n, label="layers x bits", file=sys.stderr) as bar:
        base, rows = S.sensitivity(ev, widths, bar.update)
    with typer.progressbar(length=len(rows), label="suggestion  ", file=sys.stderr) as bar:
        sug = S.suggest(ev, base, rows, target_sqnr, energy_budget_uj, bar.update)
    typer.echo(S.render(str(model), hw, base, rows, sug))
    if save:
        save.write_text(rules_text(sug.rules))
        typer.echo(f"precision spec written to {save} (ndpsim simulate MODEL --precision {save})")


@app.command()
def stream(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    hop: Annotated[str, typer.Option(help="the audio hop: 32ms, or a rate: 31.25Hz")],
    inputs: Annotated[
        Path | None, typer.Option("--inputs", help=".npz, one sample per hop (a leading axis)")
    ] = None,
    hops: Annotated[
        int | None, typer.Option(help="hops (default: all of --inputs; else seeded random)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the random inputs")] = 0,
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    operating_point: OpPoint = None,
    battery_mah: Annotated[float | None, typer.Option(help="battery mAh")] = None,
    battery_v: Annotated[float | None, typer.Option(help="battery voltage (default 3)")] = None,
    json_out: JsonOut = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="power over time (.png)")] = None,
    input_shape: Shapes = None,
    input_value: Values = None,
    precision: Precision = None,
    timing_only: Annotated[
        bool, typer.Option("--timing-only", help="no arithmetic: every hop on --branch")
    ] = False,
    branch: Branch = None,
    float_datapath: Annotated[
        bool, typer.Option("--float-datapath", help="float32 arithmetic, no quantization")
    ] = False,
    debug: Debug = False,
) -> None:
    """Run MODEL once per hop of an audio stream: per-hop latency and energy, duty cycle,
    average power (active + idle), deadline misses, the branches the data picked."""
    DEBUG["on"] = debug
    from ndpsim.precision_rules import expand_rule_args
    from ndpsim.report.power import parse_rate_hz
    from ndpsim.stream import stream_command

    if not model.exists():
        raise UserError(f"model file not found: {model}")
    if hops is not None and hops < 1:
        raise UserError(f"--hops must be at least 1, got {hops}")
    hop_ms = 1e3 / parse_rate_hz(hop, "--hop")
    hw = hardware(preset, config, set_, operating_point)
    stream_command(model, hw, hop_ms, inputs=str(inputs) if inputs else None, hops=hops,
                   seed=seed, shapes=parse_shapes(input_shape), values=parse_values(input_value),
                   precision=tuple(expand_rule_args(precision)), timing_only=timing_only,
                   branch=branch, float_datapath=float_datapath,
                   battery=(battery_mah, battery_v), json_out=json_out,
                   plot=plot, echo=typer.echo)  # fmt: skip


@app.command()
def update(
    old: Annotated[Path, typer.Argument(help="the model the part runs (ONNX)")],
    new: Annotated[Path, typer.Argument(help="the updated model, same structure (ONNX)")],
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    json_out: JsonOut = None,
    input_shape: Shapes = None,
    debug: Debug = False,
) -> None:
    """What an in-place model update costs: changed weights per layer and tile, the payload
    over the host link, cell write time and energy, against a full reload."""
    DEBUG["on"] = debug
    from ndpsim.update import render, update_cost

    for path in (old, new):
        if not path.exists():
            raise UserError(f"model file not found: {path}")
    hw = hardware(preset, config, set_)
    report = update_cost(old, new, hw, input_shapes=parse_shapes(input_shape))
    typer.echo(render(report))
    if json_out:
        json_out.write_text(report.model_dump_json(indent=2))
        typer.echo(f"report written to {json_out}")


@app.command()
def presets(debug: Debug = False) -> None:
    """List the hardware presets with their main parameters."""
    DEBUG["on"] = debug
    from ndpsim.config import load_preset, preset_names

    typer.echo(
        f"{'preset':<14} {'cores':>5} {'macros':>6} {'rows x cols':>12} {'w/a bits':>8} "
        f"{'MHz':>7} {'V':>5} {'SRAM KiB':>9} {'peak MAC/cyc':>12}"
    )
    for name in preset_names():
        h = load_preset(name)
        typer.echo(
            f"{name:<14} {h.cores:>5} {h.macros_per_core:>6} "
            f"{f'{h.macro_rows}x{h.macro_cols}':>12} "
            f"{f'{h.weight_bits}/{h.activation_bits}':>8} {h.clock_mhz:>7g} {h.voltage_v:>5g} "
            f"{h.sram_bytes // 1024:>9} {h.peak_macs_per_cycle:>12g}"
        )


@app.command()
def isa() -> None:
    """Print the instruction set (generated from isa/isa.toml)."""
    from ndpsim.isa import render_table

    typer.echo(render_table())


def _wire_estimator() -> None:
    from ndpsim.estimator.cli import dataset, estimator_app

    app.command(help="Simulate zoo and real networks on sampled hardware: the estimator's "
                "training and evaluation data (resumable).")(dataset)
    app.add_typer(estimator_app, name="estimator")


_wire_estimator()


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings of ndpsim's own (an assumed input dim) as one line on stderr."""
    if issubclass(category, InputShapeWarning):
        typer.echo(f"note: {message}", err=True)
    else:
        _show_warning(message, category, filename, lineno, file, line)


_show_warning = warnings.showwarning


def main() -> None:
    """Console entry point: map errors to exit codes and one-line messages."""
    warnings.showwarning = _note
    try:
        code = app(standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into this return value when not standalone
            raise KeyboardInterrupt
    except UserError as exc:
        if DEBUG["on"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors
            exc.show()
            sys.exit(2 if exc.exit_code == 2 else 1)
        package = (getattr(exc, "name", None) or "").split(".")[0]
        if isinstance(exc, ModuleNotFoundError) and package in _EXTRAS and not DEBUG["on"]:
            typer.echo(f"error: this needs {package}: pip install 'ndpsim[{_EXTRAS[package]}]'",
                       err=True)  # fmt: skip
            sys.exit(2)
        if DEBUG["on"]:
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for a "
            "traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
