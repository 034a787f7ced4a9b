"""What the `ndpsim` commands share: the options they take, their parsers, the --debug switch
(ndpsim/cli.py and ndpsim/estimator/cli.py both build on it; it imports neither)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndpsim.errors import UserError

DEBUG = {"on": False}  # set by each command's --debug; read by the error handler
Preset = Annotated[str | None, typer.Option("--preset", "-p", help="named hardware preset")]
Config = Annotated[
    Path | None, typer.Option("--config", "-c", help="hardware file (.yaml/.toml/.json)")
]
Sets = Annotated[list[str] | None, typer.Option("--set", "-s", help="override a field: key=value")]
Shapes = Annotated[
    list[str] | None, typer.Option("--input-shape", help="name=1x3x96x96 for symbolic dims")
]
Values = Annotated[
    list[str] | None,
    typer.Option("--input-value", help="name=16000 or name=1,2,3: fix an input to constants"),
]
Debug = Annotated[bool, typer.Option("--debug", help="show tracebacks")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="write the report as JSON")]
Branch = Annotated[
    str | None,
    typer.Option("--branch", help="timing only: the branch of Ifs on run-time data: then, "
                 "else, or both (default: a report for each)"),
]  # fmt: skip
OpPoint = Annotated[
    str | None, typer.Option("--operating-point", "-O", help="named (V, MHz) of the preset")
]


def parse_shapes(items: list[str] | None) -> dict[str, tuple[int, ...]] | None:
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


def parse_values(items: list[str] | None) -> dict[str, tuple[float, ...]] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            values = ()
        if not sep or not name or not values:
            raise UserError(f"--input-value expects name=16000 or name=1,2,3, got {item!r}")
        out[name] = values
    return out


def hardware(preset, config, sets, op=None):
    from ndpsim.config import resolve_hardware

    return resolve_hardware(preset, config, sets, op)


Precision = Annotated[
    list[str] | None,
    typer.Option("--precision", "-P", help="per-layer bits PATTERN=BITS ('conv*=w4a8', "
                 "'Gemm=w8', 'default=w8a8') or a precision .yaml file"),
]  # fmt: skip
Calib = Annotated[Path | None, typer.Option("--calibration", help=".npz of calibration inputs")]
CalibN = Annotated[int, typer.Option("--calibration-samples", help="N seeded random ones")]
Quant = Annotated[
    list[str] | None,
    typer.Option("--quant", "-q", help="PTQ option: method=minmax|percentile, percentile=99.99, "
                 "weights=per-channel|per-tensor, activations=symmetric|asymmetric"),
]  # fmt: skip

Threads = Annotated[
    int | None,
    typer.Option("--threads", help="threads for a large model's arithmetic (default: every "
                 "core; 1 when the machine's cores are already busy)"),
]  # fmt: skip


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    if not 1 <= threads <= most:
        raise UserError(f"--threads must be between 1 and {most} (NUMBA_NUM_THREADS), "
                        f"got {threads}")  # fmt: skip
    numba.set_num_threads(threads)


def ptq_options(items: list[str] | None):
    from pydantic import ValidationError

    from ndpsim.quant.ptq import PTQOptions

    fields = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or key not in PTQOptions.model_fields:
            raise UserError(f"--quant expects one of {', '.join(PTQOptions.model_fields)}=VALUE, "
                            f"got {item!r}")  # fmt: skip
        fields[key] = value
    try:
        return PTQOptions(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"--quant {err['loc'][0]}: {err['msg']}") from None
