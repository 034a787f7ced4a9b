"""The sweep specification: a validated pydantic model, loaded from YAML, TOML or JSON.

    name: arch-sweep
    models:                                # files or globs, relative to the spec file
      - ../models/*.onnx
      - {path: ../models/kws_gru.onnx, input_shapes: {input: [1, 49, 10]}}
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

Any `HardwareConfig` field can be a parameter. Every value is checked against its field's
type (no `true` for an integer, no `"16"` for a number) and bounds when the spec loads, a
range at both ends. Constraints are conditions over the fields and the derived quantities
(see `CONSTRAINT_NAMES`), checked safely (`expr.py`).
"""

from __future__ import annotations

import json
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ndpsim.config import HardwareConfig
from ndpsim.errors import ConfigError
from ndpsim.files import read_mapping
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
CONDITION_NAMES = frozenset(f for f, info in FIELDS.items() if info.annotation is bool)
MAX_POINTS = 1_000_000  # generated configurations: a typo must not plan for hours or GBs
MAX_INPUT_VALUES = 4096  # constants fixed for one input (the import takes at most 64)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Range(_Strict):
    """A numeric range: sampled uniformly (log-uniformly with `log`), or `steps` evenly spaced
    values (geometrically with `log`) for a grid. Integer fields are rounded."""

    min: StrictFloat
    max: StrictFloat
    log: StrictBool = False
    steps: StrictInt | None = Field(None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _order(self) -> Range:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("min and max must be finite numbers")
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        if self.log and self.min <= 0:
            raise ValueError("a log range needs min > 0")
        return self


class ModelEntry(_Strict):
    """A model file (or glob) with what its import needs: fixed input shapes for symbolic
    dims, inputs fixed to constants, and the dataset's name for it (default: the stem)."""

    path: str = Field(min_length=1)
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    input_shapes: dict[str, list[Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]]] = {}
    input_values: dict[str, Annotated[list[StrictFloat], Field(max_length=MAX_INPUT_VALUES)]] = {}

    @field_validator("input_values")
    @classmethod
    def _finite(cls, values: dict[str, list[float]]) -> dict[str, list[float]]:
        for name, items in values.items():
            if not all(math.isfinite(v) for v in items):
                raise ValueError(f"input_values.{name}: values must be finite numbers")
        return values

    def inputs_key(self) -> str:
        """The import settings as canonical JSON ('' when none): part of a point's key."""
        if not self.input_shapes and not self.input_values:
            return ""
        return json.dumps({"input_shapes": self.input_shapes, "input_values": self.input_values},
                          sort_keys=True, separators=(",", ":"))  # fmt: skip


class Base(_Strict):
    """The configuration every point starts from: a preset or a hardware file, then `set`."""

    preset: str | None = None
    config: str | None = None
    set: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one(self) -> Base:
        if self.preset and self.config:
            raise ValueError("give either preset or config, not both")
        for field, value in self.set.items():
            _check_value(f"set.{field}", field, value)
        return self


class Sampling(_Strict):
    method: Literal["grid", "random", "lhs"] = "grid"
    samples: StrictInt | None = Field(None, ge=1, le=MAX_POINTS, description="random / lhs")
    seed: StrictInt = 0

    @model_validator(mode="after")
    def _samples(self) -> Sampling:
        if self.method != "grid" and self.samples is None:
            raise ValueError(f"method {self.method} needs samples")
        if self.method == "grid" and self.samples is not None:
            raise ValueError("samples only applies to random and lhs sampling")
        return self


class SweepSpec(_Strict):
    """A validated sweep: models x configurations, and how to run and store them."""

    name: str = "sweep"
    models: list[ModelEntry] = Field(min_length=1, max_length=10_000)
    base: Base = Base()
    mode: Literal["timing-only", "full"] = "timing-only"
    per_layer: StrictBool = False
    seed: StrictInt = Field(0, description="seed of the random input in full mode")
    sampling: Sampling = Sampling()
    parameters: dict[str, list[Any] | Range] = {}
    constraints: list[str] = []

    @field_validator("models", mode="before")
    @classmethod
    def _model_forms(cls, value: Any) -> Any:
        """A path is the short form of {path: ...}."""
        if not isinstance(value, list):
            return value
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str | dict):
                raise ValueError(f"models.{i}: expected a path or {{path: ..., "
                                 f"input_shapes: ...}}, got {item!r}")  # fmt: skip
            out.append({"path": item} if isinstance(item, str) else item)
        return out

    @field_validator("parameters", mode="before")
    @classmethod
    def _forms(cls, value: Any) -> Any:
        """Each parameter is a list, {values: [...]} or a range; anything else is named."""
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, spec in value.items():
            if isinstance(spec, dict) and set(spec) == {"values"}:
                spec = spec["values"]  # the long form of a list
            if isinstance(spec, list):
                if not spec:
                    raise ValueError(f"{name}: an empty list of values")
                out[name] = spec
            elif isinstance(spec, dict) and set(spec) <= set(Range.model_fields):
                try:
                    out[name] = Range.model_validate(spec)
                except ValidationError as exc:
                    raise ValueError(f"{name}: {_first_error(exc)}") from None
            else:
                raise ValueError(
                    f"{name}: expected a list of values, {{values: [...]}} or a range "
                    f"{{min, max, steps}}, got {spec!r}"
                )
        return out

    @field_validator("parameters")
    @classmethod
    def _known(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, spec in params.items():
            if isinstance(spec, Range):
                _check_range(name, spec)
            elif all(isinstance(v, dict) for v in spec):
                for group in spec:
                    if not group:
                        raise ValueError(f"{name}: an empty group")
                    for field, value in group.items():
                        _check_value(f"{name}.{field}", field, value)
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
        return [Constraint(text, CONSTRAINT_NAMES, CONDITION_NAMES) for text in self.constraints]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if _readable(p))
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _readable(part: Any) -> bool:
    """A location part a user wrote (a key or an index), not a pydantic type tag such as
    `function-after[_order(), Range]` or `list[any]`."""
    return isinstance(part, int) or not any(c in str(part) for c in "[](),")


def _unknown(name: str) -> str:
    if name in DERIVED:
        return f"{name} is derived, not a field (parallelism_factor is macro_cols)"
    import difflib

    close = difflib.get_close_matches(name, list(FIELDS), n=1)
    return f"{name}: no such hardware field" + (f" (did you mean {close[0]!r}?)" if close else "")


def _kind_error(annotation: Any, value: Any) -> str | None:
    """What is wrong with the JSON type of `value` for `annotation` (pydantic's lax mode
    would take `true` as 1 and `"16"` as 16), or None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        errors = [_kind_error(a, value) for a in typing.get_args(annotation)]
        return None if None in errors else errors[0]
    if annotation is type(None):
        return None if value is None else "expected null"
    if annotation is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else (
            "expected an integer")  # fmt: skip
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "expected a number"
        return None if math.isfinite(value) else "expected a finite number"
    if annotation is str or origin is Literal:
        return None if isinstance(value, str) else "expected a string"
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return "expected a list"
        inner = typing.get_args(annotation)[0]
        return next((e for v in value if (e := _kind_error(inner, v))), None)
    if origin is dict:
        return None if isinstance(value, dict) else "expected a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(value, dict):
            return "expected a mapping"
        fields = annotation.model_fields
        return next((e for k, v in value.items() if k in fields
                     and (e := _kind_error(fields[k].annotation, v))), None)  # fmt: skip
    return None


_ADAPTERS: dict[str, TypeAdapter] = {}


def field_adapter(field: str) -> TypeAdapter:
    """A validator of one HardwareConfig field's value (its type and bounds)."""
    if field not in _ADAPTERS:
        info = FIELDS[field]
        metadata = tuple(info.metadata)
        annotated = Annotated[info.annotation, *metadata] if metadata else info.annotation
        _ADAPTERS[field] = TypeAdapter(annotated)
    return _ADAPTERS[field]


def _check_value(where: str, field: str, value: Any) -> None:
    """Type and bounds of one value against its HardwareConfig field."""
    if field not in FIELDS:
        raise ValueError(_unknown(field))
    kind = _kind_error(FIELDS[field].annotation, value)
    if kind:
        raise ValueError(f"{where}={value!r}: {kind}")
    try:
        field_adapter(field).validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"{where}={value!r}: {exc.errors()[0]['msg']}") from None


def _check_range(name: str, spec: Range) -> None:
    """A range's field is numeric and both ends (rounded inwards for integers) are valid."""
    if name not in FIELDS:
        raise ValueError(_unknown(name))
    annotation = FIELDS[name].annotation
    if annotation not in (int, float):
        raise ValueError(f"{name}: a range needs a numeric field")
    ends = (spec.min, spec.max)
    if annotation is int:
        ends = (math.ceil(spec.min), math.floor(spec.max))
        if ends[0] > ends[1]:
            raise ValueError(f"{name}: no integer between min {spec.min} and max {spec.max}")
    for label, value in zip(("min", "max"), ends, strict=True):
        _check_value(f"{name}.{label}", name, value)


def parse_spec(data: dict[str, Any], where: str = "sweep spec") -> SweepSpec:
    """Validate a mapping; errors become one ConfigError line naming the field."""
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if _readable(p))
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        raise ConfigError(f"invalid {where}: " + "; ".join(dict.fromkeys(parts))) from None
    spec.compiled_constraints()  # names, syntax and static bounds checked now
    return spec


def load_spec(path: str | Path) -> tuple[SweepSpec, Path]:
    """The spec and the directory its relative paths resolve against."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec not found: {path}")
    return parse_spec(read_mapping(path, "sweep spec"), f"sweep spec {path}"), path.resolve().parent
