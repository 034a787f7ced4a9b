"""The `ndpsim` command. Exit codes: 0 ok, 1 failure (a bug of ours), 2 bad input or usage.
User errors print one line on stderr; `--debug` shows the traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ndpsim.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Cycle-approximate simulator of a neural decision processor (NDP).",
)

_DEBUG = {"on": False}

Preset = Annotated[str | None, typer.Option("--preset", "-p", help="named hardware preset")]
Config = Annotated[
    Path | None, typer.Option("--config", "-c", help="hardware file (.yaml/.toml/.json)")
]
Sets = Annotated[list[str] | None, typer.Option("--set", "-s", help="override a field: key=value")]
Shapes = Annotated[
    list[str] | None, typer.Option("--input-shape", help="name=1x3x96x96 for symbolic dims")
]
Debug = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


def _parse_shapes(items: list[str] | None) -> dict[str, tuple[int, ...]] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise UserError(f"--input-shape expects name=1x3x96x96, got {item!r}")
        out[name] = shape
    return out


def _hardware(preset, config, sets):
    from ndpsim.config import resolve_hardware

    return resolve_hardware(preset, config, sets)


def _simulate(model: Path, preset, config, sets, timing_only, inputs, seed, shapes, outputs=False):
    from ndpsim.api import SimOptions, simulate

    if not model.exists():
        raise UserError(f"model file not found: {model}")
    hw = _hardware(preset, config, sets)
    opts = SimOptions(
        timing_only=timing_only,
        inputs=str(inputs) if inputs else None,
        seed=seed,
        input_shapes=_parse_shapes(shapes),
        include_outputs=outputs,
    )
    return simulate(model, hw, opts)


@app.command()
def simulate(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the report as JSON")
    ] = None,
    timing_only: Annotated[bool, typer.Option("--timing-only", help="skip the arithmetic")] = False,
    inputs: Annotated[Path | None, typer.Option("--inputs", help=".npz of input arrays")] = None,
    seed: Annotated[int, typer.Option(help="seed of the random input")] = 0,
    input_shape: Shapes = None,
    debug: Debug = False,
) -> None:
    """Simulate MODEL: latency, energy, memory traffic and agreement with onnxruntime."""
    _DEBUG["on"] = debug
    from ndpsim.report.text import summary

    report = _simulate(model, preset, config, set_, timing_only, inputs, seed, input_shape)
    typer.echo(summary(report))
    if json_out:
        json_out.write_text(report.model_dump_json(indent=2))
        typer.echo(f"report written to {json_out}")


@app.command()
def profile(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    preset: Preset = None,
    config: Config = None,
    set_: Sets = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the report as JSON")
    ] = None,
    timing_only: Annotated[bool, typer.Option("--timing-only")] = True,
    input_shape: Shapes = None,
    debug: Debug = False,
) -> None:
    """Per-layer table: cycles, bound, MACs, utilization, energy and traffic."""
    _DEBUG["on"] = debug
    from ndpsim.report.text import layer_table, summary

    report = _simulate(model, preset, config, set_, timing_only, None, 0, input_shape)
    typer.echo(layer_table(report))
    typer.echo("")
    typer.echo(summary(report))
    if json_out:
        json_out.write_text(report.model_dump_json(indent=2))


@app.command()
def presets(debug: Debug = False) -> None:
    """List the hardware presets with their main parameters."""
    _DEBUG["on"] = debug
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

    app.command(help="Sample kernels and architectures, simulate them, write Parquet tables.")(
        dataset
    )
    app.add_typer(estimator_app, name="estimator")


_wire_estimator()


def main() -> None:
    """Console entry point: map errors to exit codes and one-line messages."""
    try:
        app(standalone_mode=False)
    except UserError as exc:
        if _DEBUG["on"]:
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
        if _DEBUG["on"]:
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for a "
            "traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
