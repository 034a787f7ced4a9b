"""Which generated configurations are valid and pass the constraints, checked once per group.

Each parameter value was validated alone when the spec loaded (its type and bounds). What
remains per configuration is `HardwareConfig`'s cross-field validator and the constraints.
Both are evaluated on a `_Recorded` configuration that notes every field they read. Rows
that agree on every field a representative's evaluation read must evaluate the same way
(the evaluation is deterministic and its only inputs are those reads), so the outcome of
the representative is the outcome of its whole group. Rows are grouped by the columns read
so far; when a representative reads a column outside them (another branch of a check), the
columns grow and the grouping starts again. A 1,000,000-configuration grid whose checks
read five of its seven columns needs a few hundred evaluations, not a million.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError

from ndpsim.config import HardwareConfig
from ndpsim.errors import ConfigError
from ndpsim.sweep.configs import ConfigTable
from ndpsim.sweep.expr import Constraint

OK, INVALID, EXCLUDED = 0, 1, 2
MAX_EXAMPLES = 3  # invalid configurations quoted in the plan's summary
Progress = Callable[[str, int, int], None]
_FIELD_NAMES = frozenset(HardwareConfig.model_fields)
_READS: set[str] = set()


class _Recorded(HardwareConfig):
    """A HardwareConfig that notes which fields are read (validator, properties, env)."""

    def __getattribute__(self, name: str) -> Any:
        if name in _FIELD_NAMES:
            _READS.add(name)
        return super().__getattribute__(name)


class _Env(Mapping):
    """The names a constraint uses, read from the configuration when asked (so recorded)."""

    def __init__(self, hw: HardwareConfig):
        self.hw = hw

    def __getitem__(self, name: str) -> Any:
        return getattr(self.hw, name)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid hardware config: " + "; ".join(parts)


def _evaluate(data: dict[str, Any], constraints: list[Constraint]) -> tuple[int, str, set[str]]:
    """(outcome, why invalid, fields read) of one configuration."""
    _READS.clear()
    try:
        try:
            hw = _Recorded.model_validate(data)
        except ValidationError as exc:
            return INVALID, _one_line(exc), set(_READS)
        except ConfigError as exc:  # the precision rules' check raises its own error
            return INVALID, str(exc), set(_READS)
        env = _Env(hw)
        for constraint in constraints:
            if not constraint(env):
                return EXCLUDED, "", set(_READS)
        return OK, "", set(_READS)
    finally:
        _READS.clear()


def evaluate_outcomes(
    table: ConfigTable,
    rows: np.ndarray,
    constraints: list[Constraint],
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The outcome (OK, INVALID, EXCLUDED) of every row, and up to three examples of why a
    configuration is invalid, in generation order."""
    if not len(rows):
        return np.zeros(0, np.int8), []
    base = table.base.model_dump()
    column = {f: j for j, f in enumerate(table.fields)}
    read: list[int] = []
    while True:
        keys = table.keys(rows, read)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        outcomes = np.zeros(len(first), np.int8)
        why: list[str] = [""] * len(first)
        grown = False
        for g, r in enumerate(first):
            outcome, message, fields = _evaluate({**base, **table.changes_of(rows[r])},
                                                 constraints)  # fmt: skip
            more = sorted({column[f] for f in fields if f in column} - set(read))
            if more:  # a representative read a column the grouping ignores: regroup
                read = sorted(set(read) | set(more))
                grown = True
                break
            outcomes[g], why[g] = outcome, message
            if progress and (g + 1) % 1000 == 0:
                progress("checking configurations", g + 1, len(first))
        if not grown:
            break
    if progress:
        progress("checking configurations", len(first), len(first))
    status = outcomes[inverse.reshape(-1)]
    examples = []
    for r in np.flatnonzero(status == INVALID)[:MAX_EXAMPLES]:
        shown = {f: v for f, v in table.changes_of(rows[r]).items()}
        examples.append(f"{shown}: {why[inverse.reshape(-1)[r]]}")
    return status, examples
