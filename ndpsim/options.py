"""`SimOptions`: how to simulate (timing only or full, inputs, calibration, precision)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ndpsim.quant.ptq import PTQOptions


def _as_array(value: Any) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _as_inputs(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


# A model input: anything numpy turns into an array (arrays, nested lists, tensors).
Array = Annotated[np.ndarray, BeforeValidator(_as_array)]


class SimOptions(BaseModel):
    """How to simulate: timing only or full (functional), inputs, calibration, reference."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    timing_only: bool = False
    inputs: Annotated[
        str | dict[str, Array] | list[dict[str, Array]] | None, BeforeValidator(_as_inputs)
    ] = Field(
        None,
        description="model inputs: an .npz path, {input name: array}, or a list of such "
        "dicts (a batch); an array may also carry a leading sample axis (default: one seeded "
        "random sample)",
    )
    calibration: str | None = Field(
        None, description=".npz of calibration inputs (default: the inputs)"
    )
    calibration_samples: int = Field(
        0, ge=0, le=10_000, description="N seeded random calibration inputs (0: the inputs)"
    )
    seed: int = 0
    compare_reference: bool = True
    include_outputs: bool | None = Field(
        None, description="put the outputs in the report (None: when inputs are arrays)"
    )
    input_shapes: dict[str, tuple[int, ...]] | None = None
    input_values: dict[str, tuple[float, ...]] | None = Field(
        None, description="inputs fixed to constant values (resolves If on them)"
    )
    branches: dict[str, bool] | None = Field(
        None,
        description="If on run-time data -> True for its then-branch (timing only; a "
        "full run takes the branch the data picks, starting from these)",
    )
    float_datapath: bool = Field(
        False,
        description="run the arithmetic on the float datapath (the model's float32 values, "
        "no quantization: the branches a float model's data picks), not the integer one",
    )
    precision: tuple[str, ...] = Field(
        (), description="per-layer precision rules PATTERN=BITS over the hardware's own"
    )
    ptq: PTQOptions = PTQOptions()
