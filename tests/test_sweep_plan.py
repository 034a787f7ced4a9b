"""The planner works on value codes and evaluates checks once per group of rows (plan.py,
configs.py, outcomes.py). Here it is compared with the plain definition: build every
configuration as a HardwareConfig, validate it, apply the constraints, de-duplicate by
config_id(). Same configurations, same ids, same counts; structures stay contiguous."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ndpsim.config import STRUCTURAL_FIELDS
from ndpsim.errors import ConfigError
from ndpsim.sweep import make_plan, parse_spec
from ndpsim.sweep.plan import base_config, constraint_env
from ndpsim.sweep.progress import StageLine
from ndpsim.sweep.spec import Range, load_spec

ROOT = Path(__file__).resolve().parents[1]
KWS = str(ROOT / "models" / "kws_dscnn.onnx")


def _from_unit(name, spec, u, is_int):
    if spec.log:
        values = np.exp(np.log(spec.min) + u * (np.log(spec.max) - np.log(spec.min)))
    else:
        values = spec.min + u * (spec.max - spec.min)
    values = np.where(u == 0, spec.min, np.where(u == 1, spec.max, values))  # the ends exactly
    if is_int:
        return [int(v) for v in np.clip(np.rint(values), math.ceil(spec.min), spec.max)]
    return [float(v) for v in values]


def _assignments(spec):
    """The parameter assignments, one dict at a time (the definition of the sampling)."""
    from ndpsim.config import HardwareConfig

    fields = HardwareConfig.model_fields
    params = spec.parameters
    names = list(params)
    is_int = {n: n in fields and fields[n].annotation is int for n in names}
    if spec.sampling.method == "grid":
        axes = []
        for n in names:
            p = params[n]
            if isinstance(p, Range):
                u = np.linspace(0.0, 1.0, p.steps) if p.steps > 1 else np.zeros(1)
                axes.append(list(dict.fromkeys(_from_unit(n, p, u, is_int[n]))))
            else:
                axes.append(p)
        for combo in itertools.product(*axes):
            yield dict(zip(names, combo, strict=True))
        return
    n = spec.sampling.samples
    rng = np.random.default_rng(spec.sampling.seed)
    columns = []
    for name in names:
        p = params[name]
        u = (
            (rng.permutation(n) + rng.random(n)) / n
            if spec.sampling.method == "lhs"
            else rng.random(n)
        )
        if isinstance(p, list):
            columns.append([p[i] for i in np.minimum((u * len(p)).astype(np.int64), len(p) - 1)])
        else:
            columns.append(_from_unit(name, p, u, is_int[name]))
    for i in range(n):
        yield {name: col[i] for name, col in zip(names, columns, strict=True)}


def reference_plan(spec) -> dict:
    base = base_config(spec, ROOT)
    constraints = spec.compiled_constraints()
    counts = {"generated": 0, "invalid": 0, "excluded": 0, "duplicates": 0}
    ids: list[str] = []
    for assignment in _assignments(spec):
        counts["generated"] += 1
        changes = {}
        for name, value in assignment.items():
            changes.update(value if isinstance(value, dict) else {name: value})
        try:
            hw = base.with_(**changes)
        except ConfigError:
            counts["invalid"] += 1
            continue
        env = constraint_env(hw)
        if not all(c(env) for c in constraints):
            counts["excluded"] += 1
            continue
        if hw.config_id() in ids:
            counts["duplicates"] += 1
            continue
        ids.append(hw.config_id())
    return {"ids": ids, **counts}


def assert_same_as_reference(spec_data: dict) -> None:
    spec = parse_spec({"models": [KWS], **spec_data})
    plan = make_plan(spec, ROOT)
    want = reference_plan(spec)
    got_ids = [cid for cid, _ in plan.configs]
    assert sorted(got_ids) == sorted(want["ids"])
    for key in ("generated", "invalid", "excluded", "duplicates"):
        assert getattr(plan, key) == want[key], key
    rebuilt = list(plan.hardware())
    assert all(hw.config_id() == cid for cid, hw in rebuilt)  # ids computed without a config
    structures = [
        tuple(repr(getattr(hw, f)) for f in sorted(STRUCTURAL_FIELDS)) for _, hw in rebuilt
    ]
    runs = [key for key, _ in itertools.groupby(structures)]
    assert len(runs) == len(set(structures)), "a structure is split across the order"


CASES = {
    "groups override and set different fields": {
        "parameters": {
            "precision": [{"weight_bits": 8}, {"weight_bits": 4, "activation_bits": 4}],
            "activation_bits": [8, 16],
            "bits": [{"weight_bits": 2}, {"activation_bits": 8}],
        }
    },
    "invalid combinations": {
        "parameters": {
            "weight_bits": [3, 4, 8],
            "accumulator_entries_per_macro": [32, 4096],
            "macro_cols": [16, 64],
        }
    },
    "a constraint whose branches read other fields": {
        "parameters": {
            "readout": ["digital", "adc"],
            "macro_rows": [64, 128, 256],
            "macro_cols": [16, 32, 64],
            "adc_bits": [4, 8],
        },
        "constraints": [
            "macro_rows <= 128 if readout == 'adc' else macro_cols <= 32",
            "adc_bits >= 8 or readout == 'digital'",
        ],
    },
    "duplicates from repeated values and rounding": {
        "parameters": {
            "macro_cols": [16, 16, 32],
            "cores": {"min": 1, "max": 2, "steps": 5},
            "clock_mhz": [100, 100.0],
        }
    },
    "names, tuples and operating points": {
        "parameters": {
            "name": ["chip-a", "chip-b"],
            "supported_weight_bits": [[1, 2, 4, 8], [4, 8]],
            "weight_bits": [2, 8],
            "operating_points": [[], [{"name": "lo", "voltage_v": 0.6, "clock_mhz": 20}]],
        }
    },
    "random ranges": {
        "sampling": {"method": "random", "samples": 300, "seed": 4},
        "parameters": {
            "clock_mhz": {"min": 10, "max": 200, "log": True},
            "macro_cols": [8, 16, 32, 64, 128],
            "macro_rows": {"min": 32, "max": 512},
        },
        "constraints": ["macro_rows * macro_cols <= 16384 and clock_mhz < 150"],
    },
    "lhs over structure": {
        "sampling": {"method": "lhs", "samples": 200, "seed": 1},
        "parameters": {
            "macro_cols": {"min": 8, "max": 128},
            "weight_bits": [1, 2, 3, 4, 8],
            "sram_bytes": {"min": 65536, "max": 1048576, "log": True},
        },
        "constraints": ["weight_capacity_bytes <= 2 ** 22"],
    },
}


@pytest.mark.parametrize("name", CASES)
def test_the_planner_gives_the_reference_configurations(name):
    assert_same_as_reference(CASES[name])


def test_the_10k_example_plans_as_the_reference():
    spec, root = load_spec(ROOT / "examples" / "sweep_10k.yaml")
    data = spec.model_dump(mode="json", exclude={"models"})
    assert_same_as_reference(data)


FIELD_VALUES = {  # values that make some combinations invalid or excluded
    "macro_cols": [8, 16, 64, 256],
    "macro_rows": [32, 256],
    "weight_bits": [1, 3, 4, 8],
    "activation_bits": [4, 6, 8, 16],
    "accumulator_entries_per_macro": [64, 4096],
    "cores": [1, 2],
    "readout": ["digital", "adc"],
    "clock_mhz": [25, 50.0, 100],
    "macro_column_bits": [4, 8],
}
CONSTRAINTS = [
    "macro_rows * macro_cols * total_macros <= 16384",
    "peak_macs_per_cycle >= 512",
    "adc_bits >= 8 if readout == 'adc' else cores == 1",
    "weight_capacity_bytes > 4096 or input_cycles_per_vector < 8",
]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    st.lists(st.sampled_from(sorted(FIELD_VALUES)), min_size=1, max_size=4, unique=True),
    st.lists(st.sampled_from(CONSTRAINTS), max_size=2, unique=True),
    st.booleans(),
)
def test_random_grids_plan_as_the_reference(fields, constraints, grouped):
    params = {f: FIELD_VALUES[f] for f in fields}
    if grouped and len(fields) >= 2:  # the first two fields as a group of pairs
        a, b = fields[:2]
        params = {k: v for k, v in params.items() if k not in (a, b)}
        params["pair"] = [
            {a: x, b: y} for x, y in zip(FIELD_VALUES[a], FIELD_VALUES[b], strict=False)
        ]
    try:
        assert_same_as_reference({"parameters": params, "constraints": constraints})
    except ConfigError as exc:  # no valid configuration: both must say so
        assert "no valid configuration" in str(exc)
        spec = parse_spec({"models": [KWS], "parameters": params, "constraints": constraints})
        assert reference_plan(spec)["ids"] == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_planning_shows_progress_on_a_terminal():
    screen = _Terminal()
    spec = parse_spec({"models": [KWS], "parameters": {"macro_cols": [16, 32], "cores": [1, 2]}})
    make_plan(spec, ROOT, StageLine(stream=screen, interval_s=0))
    text = screen.getvalue()
    assert "generating configurations: 4/4" in text
    assert "checking configurations" in text
    quiet = io.StringIO()  # not a terminal: nothing
    make_plan(spec, ROOT, StageLine(stream=quiet, interval_s=0))
    assert quiet.getvalue() == ""


def test_a_million_configurations_are_checked_a_few_hundred_times_and_held_compactly(
    monkeypatch,
):
    """The 1,000,000-configuration grid of benchmarks/sweep_throughput.py: its checks read
    five of its seven columns, so 200 evaluations decide every row (no clock here: the
    benchmark times it); the rows take a few bytes each."""
    from ndpsim.sweep import outcomes

    calls = []
    real = outcomes._evaluate
    monkeypatch.setattr(outcomes, "_evaluate", lambda *a: calls.append(1) or real(*a))
    spec = parse_spec({
        "models": [KWS],
        "parameters": {
            "macro_cols": [8, 16, 32, 64, 128],
            "macro_rows": [32, 64, 128, 256, 512],
            "macros_per_core": [1, 2, 4, 8],
            "precision": [{"weight_bits": 8, "activation_bits": 8},
                          {"weight_bits": 4, "activation_bits": 8}],
            "clock_mhz": {"min": 25, "max": 200, "log": True, "steps": 100},
            "voltage_v": {"min": 0.6, "max": 1.0, "steps": 50},
        },
        "constraints": ["macro_rows * macro_cols * total_macros <= 65536"],
    })  # fmt: skip
    plan = make_plan(spec, ROOT)
    assert plan.generated == 1_000_000 and plan.excluded == 100_000 and len(plan.configs) == 900_000
    assert len(calls) <= 2 * 200  # 200 groups, plus the evaluations that found more columns
    assert plan.table.codes.nbytes <= 8 * 4 * 900_000  # int32 codes, at most 8 columns
    sample = [0, 1, 449_999, 899_999]
    assert [plan.config_id(i) for i in sample] == [
        plan.base.with_(**plan.table.changes(i)).config_id() for i in sample
    ]
