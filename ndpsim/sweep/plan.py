"""From a spec to the points to run: models x configurations, constrained and de-duplicated.

Configurations are generated (grid, random or Latin hypercube), validated as
`HardwareConfig`s, filtered by the constraints and de-duplicated by `config_id()`. They are
ordered by their structural fields, so consecutive points of a model share a lowered
program (a worker lowers each (model, structure) once and re-times it).
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ndpsim.config import STRUCTURAL_FIELDS, HardwareConfig, load_config, load_preset
from ndpsim.errors import ConfigError, UserError
from ndpsim.sweep.spec import DERIVED, FIELDS, MAX_POINTS, Range, SweepSpec


@dataclass(frozen=True)
class ModelRef:
    """A model file of the sweep: its path, content hash and dataset partition name."""

    path: str
    sha256: str
    name: str


@dataclass(frozen=True)
class Point:
    """One (model, configuration) to simulate: what a worker receives."""

    model: ModelRef
    hw: HardwareConfig
    config_id: str
    mode: str
    per_layer: bool
    seed: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.model.sha256, self.config_id)


@dataclass
class Plan:
    """The configurations and models of a sweep, and what was left out and why."""

    models: list[ModelRef]
    base: HardwareConfig
    # (config_id, changed fields with their validated values), in structural order: a few
    # hundred bytes each, where a HardwareConfig object is several KB
    configs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    generated: int = 0
    excluded: int = 0  # by a constraint
    invalid: int = 0  # not a valid HardwareConfig (e.g. bits outside the supported set)
    duplicates: int = 0
    invalid_examples: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.models) * len(self.configs)

    def hardware(self) -> Iterator[tuple[str, HardwareConfig]]:
        """(config_id, HardwareConfig) of every configuration, rebuilt on the fly."""
        for cid, changes in self.configs:
            yield cid, self.base.with_(**changes)

    def points(self, spec: SweepSpec, done: set[tuple[str, str]] | None = None) -> Iterator[Point]:
        """Model-major, configurations in structural order; `done` keys are skipped."""
        for model in self.models:
            for cid, changes in self.configs:
                if done and (model.sha256, cid) in done:
                    continue
                hw = self.base.with_(**changes)
                yield Point(model, hw, cid, spec.mode, spec.per_layer, spec.seed)

    def summary(self) -> str:
        parts = [f"{self.generated} generated"]
        for label, n in (
            ("excluded by constraints", self.excluded),
            ("invalid", self.invalid),
            ("duplicates", self.duplicates),
        ):
            if n:
                parts.append(f"{n} {label}")
        text = (
            f"{self.total} points = {len(self.models)} models x {len(self.configs)} "
            f"configurations ({', '.join(parts)})"
        )
        if self.invalid_examples:
            text += f"\n  first invalid configuration: {self.invalid_examples[0]}"
        return text


def partition_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem) or "model"


def resolve_models(patterns: list[str], root: Path) -> list[ModelRef]:
    """Files and globs (relative to `root`), each hashed; a pattern matching nothing is an error."""
    paths: list[Path] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(root / pattern)
        matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
        if not matches:
            raise UserError(f"sweep models: {pattern!r} matches no file")
        paths.extend(matches)
    refs, seen = [], set()
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
        refs.append(ModelRef(str(resolved), digest, partition_name(resolved)))
    return refs


def base_config(spec: SweepSpec, root: Path) -> HardwareConfig:
    base = spec.base
    if base.config:
        path = Path(base.config)
        hw = load_config(path if path.is_absolute() else root / path)
    else:
        hw = load_preset(base.preset or "generic")
    return hw.with_(**base.set) if base.set else hw


def _is_int(name: str) -> bool:
    return FIELDS[name].annotation is int


def _from_unit(name: str, spec: Range, u: np.ndarray) -> list[Any]:
    """Map uniform [0, 1) draws onto a range (log-uniform with `log`); ints rounded."""
    if spec.log:
        values = np.exp(np.log(spec.min) + u * (np.log(spec.max) - np.log(spec.min)))
    else:
        values = spec.min + u * (spec.max - spec.min)
    if _is_int(name):
        return [int(v) for v in np.clip(np.rint(values), math.ceil(spec.min), spec.max)]
    return [float(v) for v in values]


def _grid_values(name: str, spec: list[Any] | Range) -> list[Any]:
    if isinstance(spec, list):
        return spec
    u = np.linspace(0.0, 1.0, spec.steps) if spec.steps > 1 else np.zeros(1)
    return list(dict.fromkeys(_from_unit(name, spec, u)))  # rounding may merge steps


def _draws(name: str, spec: list[Any] | Range, u: np.ndarray) -> list[Any]:
    if isinstance(spec, list):
        return [spec[i] for i in np.minimum((u * len(spec)).astype(np.int64), len(spec) - 1)]
    return _from_unit(name, spec, u)


def _assignments(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    """Parameter assignments in a deterministic order (the seed fixes random and lhs)."""
    params = spec.parameters
    names = list(params)
    if spec.sampling.method == "grid":
        axes = [_grid_values(n, params[n]) for n in names]
        if math.prod(len(a) for a in axes) > MAX_POINTS:
            raise ConfigError(f"the grid has more than {MAX_POINTS:,} configurations")
        for combo in itertools.product(*axes):
            yield dict(zip(names, combo, strict=True))
        return
    n = spec.sampling.samples
    rng = np.random.default_rng(spec.sampling.seed)
    columns = []
    for name in names:
        if spec.sampling.method == "lhs":  # one draw in each of n equal strata, shuffled
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        columns.append(_draws(name, params[name], u))
    for i in range(n):
        yield {name: col[i] for name, col in zip(names, columns, strict=True)}


def _changes(assignment: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in assignment.items():
        if isinstance(value, dict):  # a group sets several fields at once
            out.update(value)
        else:
            out[name] = value
    return out


def constraint_env(hw: HardwareConfig) -> dict[str, Any]:
    env = dict(hw)
    env.update({name: getattr(hw, name) for name in DERIVED})
    return env


def _structure(hw: HardwareConfig) -> tuple[str, ...]:
    return tuple(repr(getattr(hw, f)) for f in sorted(STRUCTURAL_FIELDS))


def make_plan(spec: SweepSpec, root: Path) -> Plan:
    """Resolve models and base, generate, validate, constrain and de-duplicate configurations."""
    models = resolve_models(spec.models, root)
    base = base_config(spec, root)
    constraints = spec.compiled_constraints()
    plan = Plan(models, base)
    seen: set[str] = set()
    keyed: list[tuple[tuple[str, ...], str, dict[str, Any]]] = []
    for assignment in _assignments(spec):
        plan.generated += 1
        changes = _changes(assignment)
        try:
            hw = base.with_(**changes)
        except ConfigError as exc:
            plan.invalid += 1
            if len(plan.invalid_examples) < 3:
                plan.invalid_examples.append(f"{assignment}: {exc}")
            continue
        if constraints:
            env = constraint_env(hw)
            if not all(c(env) for c in constraints):
                plan.excluded += 1
                continue
        cid = hw.config_id()
        if cid in seen:
            plan.duplicates += 1
            continue
        seen.add(cid)
        keyed.append((_structure(hw), cid, {k: getattr(hw, k) for k in changes}))
    keyed.sort(key=lambda item: item[0])
    plan.configs = [(cid, changes) for _, cid, changes in keyed]
    if plan.generated and not plan.configs:
        why = plan.invalid_examples[0] if plan.invalid_examples else "all excluded by constraints"
        raise ConfigError(f"the sweep has no valid configuration ({why})")
    return plan
