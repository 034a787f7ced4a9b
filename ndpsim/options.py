"""`SimOptions`: how to simulate (timing only or full, inputs, calibration, precision)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ndpsim.quant.ptq import PTQOptions


class SimOptions(BaseModel):
    """How to simulate: timing only or full (functional), inputs, calibration, reference."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    timing_only: bool = False
    inputs: str | None = Field(None, description=".npz of model inputs (default: seeded random)")
    calibration: str | None = Field(
        None, description=".npz of calibration inputs (default: the inputs)"
    )
    calibration_samples: int = Field(
        0, ge=0, le=10_000, description="N seeded random calibration inputs (0: the inputs)"
    )
    seed: int = 0
    compare_reference: bool = True
    include_outputs: bool = False
    input_shapes: dict[str, tuple[int, ...]] | None = None
    input_values: dict[str, tuple[float, ...]] | None = Field(
        None, description="inputs fixed to constant values (resolves If on them)"
    )
    branches: dict[str, bool] | None = Field(
        None, description="If on run-time data -> True for its then-branch (timing only; a "
        "full run takes the branch the data picks, starting from these)"
    )
    precision: tuple[str, ...] = Field(
        (), description="per-layer precision rules PATTERN=BITS over the hardware's own"
    )
    ptq: PTQOptions = PTQOptions()
