"""The sweep specification: a validated pydantic model, loaded from YAML, TOML or JSON.

    name: arch-sweep
    models: [../models/*.onnx]            # files or globs, relative to the spec file
    base: {preset: generic, set: {clock_mhz: 50}}   # or {config: my_chip.yaml}
    mode: timing-only                      # or full (functional run + agreement)
    per_layer: false                       # also write one row per layer
    sampling: {method: grid}               # grid | random | lhs, with samples and seed
    parameters:
      macro_cols: [16, 32, 64, 128]        # a list of values
      clock_mhz: {min: 20, max: 200, log: true, steps: 4}   # a range (steps for grids)
      precision:                           # a group: each value sets several fields
        - {weight_bits: 8, activation_bits: 8}
        - {weight_bits: 4, activation_bits: 8}
    constraints:
      - macro_rows * macro_cols * macros_per_core <= 65536

Any `HardwareConfig` field can be a parameter. Constraints are expressions over the fields
and the derived quantities (see `CONSTRAINT_NAMES`), checked safely (`expr.py`).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ndpsim.config import HardwareConfig
from ndpsim.errors import ConfigError
from ndpsim.sweep.expr import Constraint

FIELDS = HardwareConfig.model_fields
DERIVED = (
    "parallelism_factor",
    "total_macros",
    "input_cycles_per_vector",
    "peak_macs_per_cycle",
    "weight_capacity_bytes",
)
CONSTRAINT_NAMES = frozenset(FIELDS) | frozenset(DERIVED)
MAX_POINTS = 1_000_000  # generated configurations: a typo must not plan for hours or GBs


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Range(_Strict):
    """A numeric range: sampled uniformly (log-uniformly with `log`), or `steps` evenly spaced
    values (geometrically with `log`) for a grid. Integer fields are rounded."""

    min: float
    max: float
    log: bool = False
    steps: int | None = Field(None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _order(self) -> Range:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        if self.log and self.min <= 0:
            raise ValueError("a log range needs min > 0")
        return self


class Base(_Strict):
    """The configuration every point starts from: a preset or a hardware file, then `set`."""

    preset: str | None = None
    config: str | None = None
    set: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one(self) -> Base:
        if self.preset and self.config:
            raise ValueError("give either preset or config, not both")
        return self


class Sampling(_Strict):
    method: Literal["grid", "random", "lhs"] = "grid"
    samples: int | None = Field(None, ge=1, le=MAX_POINTS, description="random / lhs points")
    seed: int = 0

    @model_validator(mode="after")
    def _samples(self) -> Sampling:
        if self.method != "grid" and self.samples is None:
            raise ValueError(f"method {self.method} needs samples")
        if self.method == "grid" and self.samples is not None:
            raise ValueError("samples only applies to random and lhs sampling")
        return self


Values = Annotated[list[Any], Field(min_length=1)]


class SweepSpec(_Strict):
    """A validated sweep: models x configurations, and how to run and store them."""

    name: str = "sweep"
    models: list[str] = Field(min_length=1)
    base: Base = Base()
    mode: Literal["timing-only", "full"] = "timing-only"
    per_layer: bool = False
    seed: int = Field(0, description="seed of the random input in full mode")
    sampling: Sampling = Sampling()
    parameters: dict[str, Values | Range] = {}
    constraints: list[str] = []

    @field_validator("parameters", mode="before")
    @classmethod
    def _values_form(cls, value: Any) -> Any:
        if isinstance(value, dict):  # {values: [...]} is the long form of a list
            return {
                k: v["values"] if isinstance(v, dict) and set(v) == {"values"} else v
                for k, v in value.items()
            }
        return value

    @field_validator("parameters")
    @classmethod
    def _known(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, spec in params.items():
            if isinstance(spec, list) and all(isinstance(v, dict) for v in spec):
                for group in spec:
                    for field, value in group.items():
                        _check_value(f"{name}.{field}", field, value)
            elif isinstance(spec, Range):
                if name not in FIELDS:
                    raise ValueError(_unknown(name))
                if FIELDS[name].annotation not in (int, float):
                    raise ValueError(f"{name}: a range needs a numeric field")
            else:
                for value in spec:
                    _check_value(name, name, value)
        return params

    @model_validator(mode="after")
    def _grid_steps(self) -> SweepSpec:
        if self.sampling.method == "grid":
            for name, spec in self.parameters.items():
                if isinstance(spec, Range) and spec.steps is None:
                    raise ValueError(f"parameters.{name}: a range in a grid needs steps")
        return self

    def compiled_constraints(self) -> list[Constraint]:
        return [Constraint(text, CONSTRAINT_NAMES) for text in self.constraints]


def _unknown(name: str) -> str:
    if name in DERIVED:
        return f"{name} is derived, not a field (parallelism_factor is macro_cols)"
    import difflib

    close = difflib.get_close_matches(name, list(FIELDS), n=1)
    return f"{name}: no such hardware field" + (f" (did you mean {close[0]!r}?)" if close else "")


_ADAPTERS: dict[str, TypeAdapter] = {}


def _check_value(where: str, field: str, value: Any) -> None:
    """Type and bounds of one value against its HardwareConfig field."""
    if field not in FIELDS:
        raise ValueError(_unknown(field))
    info = FIELDS[field]
    if field not in _ADAPTERS:
        metadata = tuple(info.metadata)
        annotated = Annotated[info.annotation, *metadata] if metadata else info.annotation
        _ADAPTERS[field] = TypeAdapter(annotated)
    try:
        _ADAPTERS[field].validate_python(value, strict=False)
    except ValidationError as exc:
        raise ValueError(f"{where}={value!r}: {exc.errors()[0]['msg']}") from None


def _read(path: Path) -> dict[str, Any]:
    if path.suffix not in (".yaml", ".yml", ".toml", ".json"):
        raise ConfigError(f"sweep spec {path}: use a .yaml, .toml or .json file")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read sweep spec {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"sweep spec {path} is not valid {path.suffix[1:]}: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"sweep spec {path}: expected a mapping (models, parameters, ...)")
    return data


def parse_spec(data: dict[str, Any], where: str = "sweep spec") -> SweepSpec:
    """Validate a mapping; errors become one ConfigError line naming the field."""
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("list[", "Range")))
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        raise ConfigError(f"invalid {where}: " + "; ".join(dict.fromkeys(parts))) from None
    spec.compiled_constraints()  # names and syntax checked now, not at the first point
    return spec


def load_spec(path: str | Path) -> tuple[SweepSpec, Path]:
    """The spec and the directory its relative paths resolve against."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec not found: {path}")
    return parse_spec(_read(path), f"sweep spec {path}"), path.resolve().parent
