"""The hardware description: a frozen, validated pydantic model with units in field names.

Primary fields are set by presets, files and `--set`; derived quantities (peak MACs per
cycle, macro capacity) are properties computed here and nowhere else. Every default's source
is in docs/machine_model.md. Structural fields (what changes the lowered program) and timing
/ energy fields (what only prices it) are listed apart so a sweep can reuse lowered programs.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ndpsim.errors import ConfigError
from ndpsim.files import read_mapping
from ndpsim.precision_rules import check_precision_rules

_PRESET_DIR = Path(__file__).parent / "presets"


class OperatingPoint(BaseModel):
    """A named (supply voltage, clock) pair the part is specified at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    voltage_v: float = Field(gt=0, le=5)
    clock_mhz: float = Field(gt=0, le=10_000)


class HardwareConfig(BaseModel):
    """One NDP: cores of compute-in-memory macros, a vector unit, activation SRAM, external
    memory, an operating point and per-event energies at a reference voltage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "generic"
    # -- compute (structural) --
    cores: int = Field(1, ge=1, le=64)
    macros_per_core: int = Field(4, ge=1, le=1024)
    macro_rows: int = Field(256, ge=1, le=8192, description="inputs per MVM step")
    macro_cols: int = Field(64, ge=1, le=8192, description="the parallelism factor")
    macro_weight_sets: int = Field(
        64, ge=1, le=65536, description="weight tiles a macro stores (one active at a time)"
    )
    weight_bits: int = Field(8, ge=1, le=16, description="default weight precision of a layer")
    activation_bits: int = Field(8, ge=2, le=16, description="default activation precision")
    accumulator_bits: int = Field(32, ge=16, le=48)
    preactivation_bits: int = Field(
        0,
        ge=0,
        le=32,
        description="requantize MAC sums to this many bits before the "
        "activation function (0: straight to the output bits; NDP120: 16)",
    )
    macro_column_bits: int = Field(
        8, ge=1, le=16, description="bit-cell columns per output column (macro_cols counts those)"
    )
    precision: dict[str, str] = Field(
        {}, description="per-layer precision: layer-name glob, op type or `default` -> `w4a8`"
    )
    supported_weight_bits: tuple[int, ...] = (1, 2, 4, 8)
    supported_activation_bits: tuple[int, ...] = (4, 8, 16)
    supports_conv: bool = True
    accumulator_entries_per_macro: int = Field(
        4096, ge=16, description="partial-sum words per macro; bounds the pixels of one MVM"
    )
    vector_lanes: int = Field(16, ge=1, le=4096)
    sram_bytes: int = Field(262_144, ge=1024)
    # -- timing (does not change the program) --
    input_bits_per_cycle: int = Field(1, ge=1, le=16, description="bit-serial input width")
    readout: Literal["digital", "adc"] = "digital"
    adc_bits: int = Field(8, ge=1, le=16)
    readout_columns_per_cycle: int = Field(
        64, ge=1, description="columns read out per cycle (adder trees or ADCs per macro)"
    )
    macro_pipeline_cycles: int = Field(4, ge=0, description="MVM fill latency, per instruction")
    vector_pipeline_cycles: int = Field(2, ge=0)
    softmax_cycles_per_element: int = Field(4, ge=1, description="LUT exp + divide, per lane")
    sram_bytes_per_cycle: float = Field(32.0, gt=0)
    sram_banks: int = Field(8, ge=1)
    ext_mem_bytes_per_cycle: float = Field(4.0, gt=0)
    ext_mem_latency_cycles: int = Field(40, ge=0)
    instruction_issue_cycles: int = Field(1, ge=0)
    layer_setup_cycles: int = Field(0, ge=0, description="per-layer configuration, core clock")
    layer_setup_us: float = Field(
        0.0, ge=0, description="per-layer configuration on a clock that ignores clock_mhz"
    )
    position_cycles: int = Field(
        0,
        ge=0,
        description="per output position of a layer: window gather and array "
        "launch/drain by the layer sequencer, not overlapped with the layer's work",
    )
    clock_mhz: float = Field(100.0, gt=0, le=10_000)
    voltage_v: float = Field(0.9, gt=0, le=5)
    operating_points: tuple[OperatingPoint, ...] = Field(
        (), description="named (voltage_v, clock_mhz) pairs; select one with at_operating_point"
    )
    # -- energy per event at energy_reference_voltage_v (dynamic; scales with V^2) --
    energy_reference_voltage_v: float = Field(0.9, gt=0, le=5)
    macro_bit_op_energy_fj: float = Field(
        0.5, ge=0, description="per weight-bit x input-bit cell op"
    )
    macro_row_drive_energy_fj: float = Field(20.0, ge=0, description="per row per input cycle")
    readout_energy_pj: float = Field(0.05, ge=0, description="per column per input cycle (digital)")
    adc_energy_pj: float = Field(0.68, ge=0, description="per conversion at adc_bits")
    accumulator_add_energy_pj: float = Field(0.03, ge=0, description="per partial-sum add")
    vector_op_energy_pj: float = Field(0.5, ge=0, description="per vector element op")
    vector_lut_energy_pj: float = Field(0.5, ge=0, description="per LUT evaluation")
    sram_read_energy_pj_per_byte: float = Field(0.5, ge=0)
    sram_write_energy_pj_per_byte: float = Field(0.6, ge=0)
    ext_mem_read_energy_pj_per_byte: float = Field(64.0, ge=0)
    ext_mem_write_energy_pj_per_byte: float = Field(80.0, ge=0)
    weight_write_energy_pj_per_byte: float = Field(2.0, ge=0)
    host_transfer_energy_pj_per_byte: float = Field(1.0, ge=0)
    instruction_energy_pj: float = Field(2.0, ge=0)
    clock_energy_pj_per_cycle: float = Field(
        0.0, ge=0, description="per active cycle: clock tree and control processor"
    )
    macro_active_energy_pj_per_cycle: float = Field(
        0.0,
        ge=0,
        description="per busy cycle of one macro (clock-gated when idle): its clock, input "
        "registers, adder trees and weight-row reads, beyond the per-event cell energies",
    )
    # -- static power --
    leakage_mw: float = Field(0.1, ge=0, description="at energy_reference_voltage_v; scales with V")
    fixed_power_mw: float = Field(0.0, ge=0, description="power while active, independent of V")
    idle_power_mw: float | None = Field(
        None, ge=0, description="power between inferences (None: leakage + fixed power)"
    )
    # -- model updates: writing new weights into the cells (`ndpsim update`) --
    weight_cell_technology: Literal["sram", "rram", "mram", "flash"] = Field(
        "sram", description="what the weight cells are (documents the write constants)"
    )
    weight_write_word_bits: int = Field(64, ge=1, le=4096, description="cells one write programs")
    weight_write_ns_per_word: float = Field(10.0, gt=0, description="one word write, per macro")
    weight_cell_endurance_writes: float | None = Field(
        None, gt=0, description="writes a cell survives (None: unlimited, as SRAM)"
    )
    host_link_mbit_per_s: float = Field(
        50.0, gt=0, description="host interface carrying model updates (SPI-class)"
    )

    @model_validator(mode="after")
    def _check(self) -> HardwareConfig:
        if self.weight_bits not in self.supported_weight_bits:
            raise ValueError(f"weight_bits={self.weight_bits} not in supported_weight_bits")
        if self.activation_bits not in self.supported_activation_bits:
            raise ValueError(
                f"activation_bits={self.activation_bits} not in supported_activation_bits"
            )
        check_precision_rules(self.precision, self)
        if self.accumulator_entries_per_macro < self.macro_cols:
            raise ValueError("accumulator_entries_per_macro must hold at least one output vector")
        names = [p.name for p in self.operating_points]
        if len(set(names)) != len(names):
            raise ValueError(f"operating point names must be unique: {names}")
        return self

    # -- derived quantities: computed here only --
    @property
    def parallelism_factor(self) -> int:
        return self.macro_cols

    @property
    def total_macros(self) -> int:
        return self.cores * self.macros_per_core

    @property
    def input_cycles_per_vector(self) -> int:
        """Cycles to feed one input vector at the configured activation precision."""
        return math.ceil(self.activation_bits / self.input_bits_per_cycle)

    @property
    def peak_macs_per_cycle(self) -> float:
        return self.total_macros * self.macro_rows * self.macro_cols / self.input_cycles_per_vector

    @property
    def cell_columns(self) -> int:
        """Bit-cell columns of one macro: each output column of macro_column_bits-bit weights
        is that many bit cells wide (bit-sliced weights)."""
        return self.macro_cols * self.macro_column_bits

    def outputs_per_pass(self, weight_bits: int) -> int:
        """Output columns one MVM pass produces with `weight_bits`-bit weights: one output
        takes weight_bits bit-cell columns, so fewer bits give more outputs per pass."""
        return self.cell_columns // weight_bits

    @property
    def weight_capacity_bytes(self) -> int:
        """Bytes of weight bit cells (at macro_column_bits-bit weights: cells x bits / 8)."""
        cells = self.total_macros * self.macro_rows * self.cell_columns * self.macro_weight_sets
        return cells // 8

    @property
    def layer_setup_total_cycles(self) -> int:
        """Core-clock cycles of one layer setup: its own cycles plus its fixed time at clock_mhz."""
        return self.layer_setup_cycles + math.ceil(self.layer_setup_us * self.clock_mhz - 1e-9)

    @property
    def idle_power_total_mw(self) -> float:
        """Power between inferences: idle_power_mw, or when unset leakage + fixed power."""
        if self.idle_power_mw is not None:
            return self.idle_power_mw
        leak = self.leakage_mw * self.voltage_v / self.energy_reference_voltage_v
        return leak + self.fixed_power_mw

    def at_operating_point(self, name: str) -> HardwareConfig:
        """A copy running at the named operating point (its voltage_v and clock_mhz)."""
        for p in self.operating_points:
            if p.name == name:
                return self.with_(voltage_v=p.voltage_v, clock_mhz=p.clock_mhz)
        known = ", ".join(p.name for p in self.operating_points) or "none defined"
        raise ConfigError(f"unknown operating point {name!r} for {self.name!r} ({known})")

    def config_id(self) -> str:
        """A short, stable key of every field: equal configs have equal ids."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return f"{self.name}-{hashlib.sha256(blob).hexdigest()[:12]}"

    def with_(self, **changes: Any) -> HardwareConfig:
        """A validated copy with `changes` applied (ConfigError names a bad field)."""
        return _validate({**self.model_dump(), **changes})


# Fields that change the lowered program; all others only price or time it.
STRUCTURAL_FIELDS = frozenset(
    {
        "cores", "macros_per_core", "macro_rows", "macro_cols", "macro_weight_sets",
        "weight_bits", "activation_bits", "accumulator_bits", "supports_conv",
        "accumulator_entries_per_macro", "sram_bytes", "macro_column_bits", "precision",
    }
)  # fmt: skip


def _validate(data: dict[str, Any]) -> HardwareConfig:
    try:
        return HardwareConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return "invalid hardware config: " + "; ".join(parts)


def preset_names() -> list[str]:
    return sorted(p.stem for p in _PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> HardwareConfig:
    path = _PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(preset_names())}")
    return load_config(path)


def load_config(path: str | Path) -> HardwareConfig:
    """Load a hardware description from YAML, TOML or JSON. A file may name a `preset` to
    start from; its other keys override that preset's fields."""
    path = Path(path)
    data = read_mapping(path, "config")
    base = data.pop("preset", None)
    if base is not None:
        return load_preset(str(base)).with_(**data)
    return _validate(data)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["macro_cols=128", "readout=adc"]` -> typed values (YAML scalars), field names checked."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        if key not in HardwareConfig.model_fields:
            raise ConfigError(f"--set {key}: no such hardware field (see `ndpsim presets`)")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot parse value {value!r}") from None
    return out


def resolve_hardware(
    preset: str | None = None,
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    operating_point: str | None = None,
) -> HardwareConfig:
    """The CLI's rule: a config file or a preset (default `generic`), then its named operating
    point, then `--set` overrides."""
    if preset and config:
        raise ConfigError("give either --preset or --config, not both")
    hw = load_config(config) if config else load_preset(preset or "generic")
    if operating_point:
        hw = hw.at_operating_point(operating_point)
    changes = parse_overrides(overrides or [])
    return hw.with_(**changes) if changes else hw
