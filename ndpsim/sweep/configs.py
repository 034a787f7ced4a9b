"""Configurations as rows of value codes: how a plan holds a million of them in tens of MB.

Every field a parameter sets gets a code per distinct validated value (code 0 is the base
configuration's value); a configuration is a row of codes, one column per such field. The
JSON fragment of each (field, value) is rendered once, so `config_id` of a row is the
`HardwareConfig.config_id()` of that configuration (the same JSON, hashed the same way)
without building it; tests/test_sweep_plan.py compares the two.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from ndpsim.config import STRUCTURAL_FIELDS, HardwareConfig
from ndpsim.errors import ConfigError
from ndpsim.sweep.spec import FIELDS, MAX_POINTS, Range, SweepSpec, field_adapter

Progress = Callable[[str, int, int], None]
PROGRESS_EVERY = 50_000  # rows between progress calls of a long loop


@dataclass
class Axis:
    """One parameter: its distinct settings (field -> raw value), and for random and lhs
    sampling which setting each configuration drew."""

    name: str
    settings: list[dict[str, Any]]
    draws: np.ndarray | None = None


def _is_int(name: str) -> bool:
    return FIELDS[name].annotation is int


def _from_unit(name: str, spec: Range, u: np.ndarray) -> list[Any]:
    """Map uniform [0, 1) draws onto a range (log-uniform with `log`); ints rounded."""
    if spec.log:
        values = np.exp(np.log(spec.min) + u * (np.log(spec.max) - np.log(spec.min)))
    else:
        values = spec.min + u * (spec.max - spec.min)
    values = np.where(u == 0, spec.min, np.where(u == 1, spec.max, values))  # the ends exactly
    if _is_int(name):
        return [int(v) for v in np.clip(np.rint(values), math.ceil(spec.min), spec.max)]
    return [float(v) for v in values]


def _grid_values(name: str, spec: list[Any] | Range) -> list[Any]:
    if isinstance(spec, list):
        return spec
    u = np.linspace(0.0, 1.0, spec.steps) if spec.steps > 1 else np.zeros(1)
    return list(dict.fromkeys(_from_unit(name, spec, u)))  # rounding may merge steps


def _setting(name: str, value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {name: value}  # a group sets several


def axes_of(spec: SweepSpec) -> list[Axis]:
    """The parameters as axes, in spec order (the seed fixes random and lhs draws)."""
    params = spec.parameters
    if spec.sampling.method == "grid":
        axes = [Axis(n, [_setting(n, v) for v in _grid_values(n, p)]) for n, p in params.items()]
        size = math.prod(len(a.settings) for a in axes)
        if size > MAX_POINTS:
            raise ConfigError(f"the grid has {size:,} configurations, more than {MAX_POINTS:,}")
        return axes
    n = spec.sampling.samples
    rng = np.random.default_rng(spec.sampling.seed)
    axes = []
    for name, p in params.items():
        if spec.sampling.method == "lhs":  # one draw in each of n equal strata, shuffled
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        if isinstance(p, list):
            draws = np.minimum((u * len(p)).astype(np.int64), len(p) - 1)
            axes.append(Axis(name, [_setting(name, v) for v in p], draws))
        else:
            values = _from_unit(name, p, u)
            distinct = list(dict.fromkeys(values))
            index = {v: i for i, v in enumerate(distinct)}
            draws = np.fromiter((index[v] for v in values), np.int64, n)
            axes.append(Axis(name, [{name: v} for v in distinct], draws))
    return axes


def _fragment(name: str, json_value: Any) -> str:
    """`"name": value` exactly as in json.dumps(hw.model_dump(mode="json"), sort_keys=True)."""
    return f"{json.dumps(name)}: {json.dumps(json_value, sort_keys=True)}"


@dataclass
class ConfigTable:
    """Configurations of one base as rows of value codes (module doc)."""

    base: HardwareConfig
    fields: list[str]  # the columns: fields some parameter sets, sorted
    values: list[list[Any]]  # per column: validated value of each code
    fragments: list[list[str]]  # per column: JSON fragment of each code
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    _ids: list[str | None] = field(default_factory=list)  # config_id of each row, once known

    def __post_init__(self) -> None:
        dump = self.base.model_dump(mode="json")
        order = sorted(dump)
        where = {f: order.index(f) for f in self.fields}
        parts = [_fragment(f, dump[f]) for f in order]
        # the JSON is segment[0] + fragment of column 0 + segment[1] + ... + segment[-1]
        self._segments, start = [], 0
        for col in self.fields:
            head = ", ".join(parts[start : where[col]])
            lead = "{" if start == 0 else ", "
            self._segments.append(lead + head + (", " if head else ""))
            start = where[col] + 1
        tail = ", ".join(parts[start:])
        lead = "{" if start == 0 else ", "
        self._segments.append((lead + tail if tail else ("{" if start == 0 else "")) + "}")
        self._name_col = self.fields.index("name") if "name" in self.fields else None
        self.structural = [j for j, f in enumerate(self.fields) if f in STRUCTURAL_FIELDS]

    @property
    def rows(self) -> int:
        return len(self.codes)

    def with_rows(self, codes: np.ndarray) -> ConfigTable:
        return ConfigTable(self.base, self.fields, self.values, self.fragments, codes)

    def changes_of(self, row: np.ndarray) -> dict[str, Any]:
        return {f: self.values[j][row[j]] for j, f in enumerate(self.fields)}

    def changes(self, i: int) -> dict[str, Any]:
        return self.changes_of(self.codes[i])

    def _id_of(self, row: np.ndarray) -> str:
        pieces = [self._segments[0]]
        for j, code in enumerate(row.tolist()):
            pieces.append(self.fragments[j][code])
            pieces.append(self._segments[j + 1])
        digest = hashlib.sha256("".join(pieces).encode()).hexdigest()[:12]
        name = self.base.name if self._name_col is None else self.values[self._name_col][
            row[self._name_col]]  # fmt: skip
        return f"{name}-{digest}"

    def config_id(self, i: int) -> str:
        if not self._ids:
            self._ids = [None] * self.rows
        cid = self._ids[i]
        if cid is None:
            cid = self._ids[i] = self._id_of(self.codes[i])
        return cid

    def config_ids(self, progress: Progress | None = None) -> list[str]:
        """Every row's config_id (kept: a resume matches them against stored keys)."""
        out = []
        for i in range(self.rows):
            out.append(self.config_id(i))
            if progress and (i + 1) % PROGRESS_EVERY == 0:
                progress("hashing configurations", i + 1, self.rows)
        if progress:
            progress("hashing configurations", self.rows, self.rows)
        return out

    def keys(self, codes: np.ndarray, columns: list[int]) -> np.ndarray:
        """One int64 per row, equal exactly when the rows agree on `columns`."""
        if not columns:
            return np.zeros(len(codes), np.int64)
        radix = [len(self.values[j]) for j in columns]
        if math.prod(radix) < 2**62:  # mixed radix: one exact integer per combination
            key = np.zeros(len(codes), np.int64)
            for j, r in zip(columns, radix, strict=True):
                key = key * r + codes[:, j]
            return key
        _, inverse = np.unique(codes[:, columns], axis=0, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64)

    def unique_first(self, codes: np.ndarray) -> np.ndarray:
        """The rows of `codes` without repeats, each kept where it first appears."""
        _, first = np.unique(self.keys(codes, list(range(len(self.fields)))), return_index=True)
        return codes[np.sort(first)]

    def in_structural_order(self, codes: np.ndarray) -> np.ndarray:
        """Rows grouped by their structural fields (stable: generation order within one)."""
        if not self.structural or not len(codes):
            return codes
        order = np.lexsort([codes[:, j] for j in reversed(self.structural)])
        return codes[order]


def _validated(field_name: str, raw: Any) -> tuple[Any, Any]:
    adapter = field_adapter(field_name)
    try:
        value = adapter.validate_python(raw)
    except ValidationError as exc:
        raise ConfigError(f"{field_name}={raw!r}: {exc.errors()[0]['msg']}") from None
    return value, adapter.dump_python(value, mode="json")


def _axis_codes(axes: list[Axis], rows: int) -> Iterator[tuple[Axis, np.ndarray]]:
    """Each axis with the setting index of every row (grids in itertools.product order)."""
    if axes and axes[0].draws is not None:
        for axis in axes:
            yield axis, axis.draws
        return
    stride = rows
    for axis in axes:
        stride //= len(axis.settings)
        yield axis, (np.arange(rows, dtype=np.int64) // stride) % len(axis.settings)


def encode(base: HardwareConfig, axes: list[Axis], spec: SweepSpec,
           progress: Progress | None = None) -> tuple[ConfigTable, np.ndarray]:  # fmt: skip
    """The table of value codes of `axes` over `base`, and the code rows of every
    generated configuration (in generation order)."""
    columns = sorted({f for axis in axes for s in axis.settings for f in s})
    col = {f: j for j, f in enumerate(columns)}
    dump = base.model_dump(mode="json")
    values = [[getattr(base, f)] for f in columns]
    fragments = [[_fragment(f, dump[f])] for f in columns]
    lookup = [{frag[0]: 0} for frag in fragments]
    matrices = []
    for axis in axes:  # per axis: (settings x columns) codes, -1 where a setting is silent
        matrix = np.full((len(axis.settings), len(columns)), -1, np.int32)
        for i, setting in enumerate(axis.settings):
            for name, raw in setting.items():
                value, json_value = _validated(name, raw)
                j = col[name]
                frag = _fragment(name, json_value)
                code = lookup[j].get(frag)
                if code is None:
                    code = lookup[j][frag] = len(values[j])
                    values[j].append(value)
                    fragments[j].append(frag)
                matrix[i, j] = code
        matrices.append(matrix)
    if spec.sampling.method == "grid":
        rows = math.prod(len(a.settings) for a in axes)
    else:
        rows = spec.sampling.samples
    if progress:
        progress("generating configurations", 0, rows)
    codes = np.zeros((rows, len(columns)), np.int32)
    for (_, index), matrix in zip(_axis_codes(axes, rows), matrices, strict=True):
        picked = matrix[index]  # later parameters override earlier ones, as in a dict
        np.copyto(codes, picked, where=picked >= 0)
    if progress:
        progress("generating configurations", rows, rows)
    table = ConfigTable(base, columns, values, fragments)
    return table, codes
