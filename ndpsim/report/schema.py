"""The SimulationReport: a stable, versioned JSON schema (bump SCHEMA_VERSION on change)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

SCHEMA_VERSION = 6  # 2: always_on, budget; energy component "clock"; 3: layer in_bits;
# 4: branches (Ifs on run-time data); 5: agreement over samples (samples, top1_agreed),
# outputs as arrays (lists in JSON), stacked along a first axis for a batch of samples;
# 6: idle_branch_layers (the resident weights of data branches not run)

# An output in the report: an ndarray in Python, nested lists in JSON.
OutputArray = Annotated[
    np.ndarray,
    BeforeValidator(lambda v: np.asarray(v, np.float64)),
    PlainSerializer(lambda a: a.tolist(), when_used="json"),
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IdleLayer(_Model):
    """A MAC layer of a data branch the run did not take: resident, not run."""

    name: str
    tiles: int  # macro weight sets its weights occupy
    weight_bytes: int


class LayerReport(_Model):
    name: str
    op_type: str
    kind: str  # mac | vector | alias | io
    fused: list[str]
    start_cycle: int
    end_cycle: int
    cycles: int
    bound: str  # compute | memory | vector | none
    macs: int
    params: int
    weight_bytes: int
    tiles: int
    folds_k: int
    folds_cout: int
    weights_resident: bool
    macro_utilization: float  # useful weight-bit cells / (vectors x rows x cell columns used)
    macro_busy_cycles: int
    vector_busy_cycles: int
    dma_busy_cycles: int
    energy_uj: float
    energy_breakdown_uj: dict[str, float]
    sram_read_bytes: int
    sram_write_bytes: int
    ext_read_bytes: int
    ext_write_bytes: int
    peak_activation_bytes: int
    output_shape: list[int]
    w_bits: int  # weight bits (MAC layers; 0 otherwise)
    a_bits: int  # bits of the activations the layer writes
    in_bits: int = 0  # bits of its input (a MAC layer feeds them bit-serially)


class Agreement(_Model):
    reference: str  # "onnxruntime" or "ndpsim-float" (the float datapath) when ORT is absent
    output: str
    sqnr_db: float
    max_abs_error: float
    top1_agreement: bool | None  # None for outputs that are not class scores; else all agree
    samples: int = 1  # input samples compared
    top1_agreed: int | None = None  # of them, those whose top-1 agrees (class scores only)


class SimulationReport(_Model):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    schema_version: int = SCHEMA_VERSION
    ndpsim_version: str
    model: str
    model_sha256: str
    hardware: dict
    config_id: str
    mode: str  # "full" (functional + timing) or "timing-only"
    latency_cycles: int
    latency_us: float
    clock_mhz: float
    voltage_v: float
    energy_uj: float
    energy_breakdown_uj: dict[str, float]
    dynamic_energy_uj: float
    static_power_mw: float
    traffic_bytes: dict[str, int]
    utilization: dict[str, float]  # busy fraction per unit instance
    macro_utilization: float  # useful bit-cell cycles / (all macros' bit cells x latency)
    macs: int
    params: int
    weight_bytes: int
    weight_capacity_bytes: int
    weights_resident: bool
    peak_activation_bytes: int
    sram_bytes: int
    spilled_tensors: list[str]
    fits_on_chip: bool
    instructions: int
    layers: list[LayerReport]
    branches: dict[str, str] = {}  # If on run-time data -> "then" | "else": the branch run
    idle_branch_layers: list[IdleLayer] = []  # the other branches' MAC layers (resident)
    agreement: list[Agreement] = []
    outputs: dict[str, OutputArray] | None = None  # dequantized outputs, when asked for
    always_on: dict | None = None  # report/power.py AlwaysOn, with --rate
    budget: dict | None = None  # report/budget.py Budget, with --budget*
