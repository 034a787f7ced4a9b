"""From a spec to the points to run: models x configurations, constrained and de-duplicated.

Configurations are generated (grid, random or Latin hypercube), validated as
`HardwareConfig`s, filtered by the constraints and de-duplicated. They are ordered by their
structural fields, so consecutive points of a model share a lowered program (a worker
lowers each (model, structure) once and re-times it).

Planning a million configurations one `HardwareConfig` at a time takes a minute, so a plan
works on value codes instead (`configs.py`): every field a parameter sets gets one code per
distinct validated value, a configuration is a row of codes, and the generation,
de-duplication and ordering are numpy operations on those rows. Each parameter value was
validated alone when the spec loaded; what remains per configuration, the cross-field
checks of `HardwareConfig` and the constraints, is evaluated once per group of rows that
agree on every field those checks read (`outcomes.py`).
"""

from __future__ import annotations

import glob
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ndpsim.config import HardwareConfig, load_config, load_preset
from ndpsim.errors import ConfigError, UserError
from ndpsim.sweep.configs import ConfigTable, axes_of, encode
from ndpsim.sweep.outcomes import EXCLUDED, INVALID, OK, evaluate_outcomes
from ndpsim.sweep.spec import DERIVED, ModelEntry, SweepSpec

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class ModelRef:
    """A model file of the sweep: its path, content hash, dataset partition name and what
    its import needs (fixed input shapes and values; `inputs` is their canonical JSON)."""

    path: str
    sha256: str
    name: str
    inputs: str = ""
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    input_values: dict[str, list[float]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.sha256, self.inputs)


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
    def key(self) -> tuple[str, str, str]:
        return (self.model.sha256, self.model.inputs, self.config_id)


class _Configs(Sequence):
    """plan.configs: (config_id, changed fields) of each configuration, built on demand."""

    def __init__(self, plan: Plan):
        self.plan = plan

    def __len__(self) -> int:
        return self.plan.table.rows

    def __getitem__(self, i: int) -> tuple[str, dict[str, Any]]:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.plan.config_id(i % len(self)), self.plan.table.changes(i % len(self))


@dataclass
class Plan:
    """The configurations and models of a sweep, and what was left out and why."""

    models: list[ModelRef]
    base: HardwareConfig
    table: ConfigTable
    generated: int = 0
    excluded: int = 0  # by a constraint
    invalid: int = 0  # not a valid HardwareConfig (e.g. bits outside the supported set)
    duplicates: int = 0
    invalid_examples: list[str] = field(default_factory=list)

    @property
    def configs(self) -> _Configs:
        return _Configs(self)

    @property
    def total(self) -> int:
        return len(self.models) * self.table.rows

    def config_id(self, i: int) -> str:
        """HardwareConfig.config_id() of configuration i, without building it."""
        return self.table.config_id(i)

    def config_ids(self, progress: Progress | None = None) -> list[str]:
        return self.table.config_ids(progress)

    def hardware(self) -> Iterator[tuple[str, HardwareConfig]]:
        """(config_id, HardwareConfig) of every configuration, rebuilt on the fly."""
        for i in range(self.table.rows):
            yield self.config_id(i), self.base.with_(**self.table.changes(i))

    def points(self, spec: SweepSpec, done: Any = None) -> Iterator[Point]:
        """Model-major, configurations in structural order; `done` keys are skipped."""
        for model in self.models:
            for i in range(self.table.rows):
                cid = self.config_id(i)
                if done and (model.sha256, model.inputs, cid) in done:
                    continue
                hw = self.base.with_(**self.table.changes(i))
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
            f"{self.total} points = {len(self.models)} models x {self.table.rows} "
            f"configurations ({', '.join(parts)})"
        )
        if self.invalid_examples:
            text += f"\n  first invalid configuration: {self.invalid_examples[0]}"
        return text


def partition_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem) or "model"


def _import_check(path: Path, entry: ModelEntry) -> None:
    """Import the model once here, as a worker will (a Session), so a model no point can run
    (a symbolic input dim, an unsupported op) is refused before any work instead of
    failing every point."""
    from ndpsim.session import Session

    try:
        Session(path, input_shapes=entry.input_shapes or None,
                input_values=entry.input_values or None)  # fmt: skip
    except UserError as exc:
        hint = ""
        if "symbolic" in str(exc) and not entry.input_shapes:
            hint = " (fix it in the spec: {path: ..., input_shapes: {name: [dims]}})"
        raise UserError(f"sweep model {path.name}: {exc}{hint}") from None


def resolve_models(entries: Sequence[ModelEntry | str], root: Path,
                   check: bool = True) -> list[ModelRef]:  # fmt: skip
    """Files and globs (relative to `root`), each hashed and, with `check`, imported once;
    a pattern matching nothing, or two models with one name, is an error."""
    refs: list[ModelRef] = []
    seen: set[tuple[Path, str]] = set()
    names: dict[str, str] = {}
    for entry in entries:
        entry = ModelEntry(path=entry) if isinstance(entry, str) else entry
        pattern = entry.path
        full = pattern if Path(pattern).is_absolute() else str(root / pattern)
        matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
        if not matches:
            raise UserError(f"sweep models: {pattern!r} matches no file")
        if entry.name and len(matches) > 1:
            raise UserError(f"sweep models: {pattern!r} matches {len(matches)} files; a name "
                            "applies to one")  # fmt: skip
        inputs = entry.inputs_key()
        for path in matches:
            resolved = path.resolve()
            if (resolved, inputs) in seen:
                continue
            seen.add((resolved, inputs))
            name = entry.name or partition_name(resolved)
            if name in names:
                raise UserError(
                    f"sweep models: two models are named {name!r} ({names[name]} and "
                    f"{resolved}); give one a name: {{path: ..., name: ...}}"
                )
            names[name] = str(resolved)
            if check:
                _import_check(resolved, entry)
            digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
            refs.append(ModelRef(str(resolved), digest, name, inputs,
                                 dict(entry.input_shapes), dict(entry.input_values)))  # fmt: skip
    return refs


def base_config(spec: SweepSpec, root: Path) -> HardwareConfig:
    base = spec.base
    if base.config:
        path = Path(base.config)
        hw = load_config(path if path.is_absolute() else root / path)
    else:
        hw = load_preset(base.preset or "generic")
    return hw.with_(**base.set) if base.set else hw


def constraint_env(hw: HardwareConfig) -> dict[str, Any]:
    """Every name a constraint may use, with its value for `hw`."""
    env = dict(hw)
    env.update({name: getattr(hw, name) for name in DERIVED})
    return env


def make_plan(spec: SweepSpec, root: Path, progress: Progress | None = None,
              check_models: bool = True) -> Plan:  # fmt: skip
    """Resolve models and base, generate, validate, constrain and de-duplicate
    configurations. `progress(stage, done, total)` is called as stages advance."""
    models = resolve_models(spec.models, root, check_models)
    base = base_config(spec, root)
    axes = axes_of(spec)
    table, rows = encode(base, axes, spec, progress)
    generated = len(rows)
    status, examples = evaluate_outcomes(table, rows, spec.compiled_constraints(), progress)
    ok_rows = rows[status == OK]
    kept = table.unique_first(ok_rows)
    plan = Plan(
        models,
        base,
        table.with_rows(table.in_structural_order(kept)),
        generated=generated,
        excluded=int(np.count_nonzero(status == EXCLUDED)),
        invalid=int(np.count_nonzero(status == INVALID)),
        duplicates=len(ok_rows) - len(kept),
        invalid_examples=examples,
    )
    if generated and not plan.table.rows:
        why = examples[0] if examples else "all excluded by constraints"
        raise ConfigError(f"the sweep has no valid configuration ({why})")
    return plan
