"""Sweep specs: parameters, sampling, constraints (and their refusals), planning counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ndpsim.errors import ConfigError
from ndpsim.sweep.expr import Constraint
from ndpsim.sweep.plan import make_plan
from ndpsim.sweep.spec import CONSTRAINT_NAMES, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
MODELS = [str(ROOT / "models" / "kws_dscnn.onnx"), str(ROOT / "models" / "ad_fc_autoencoder.onnx")]


def plan_of(**spec):
    spec.setdefault("models", MODELS)
    return make_plan(parse_spec(spec), ROOT)


def test_grid_is_the_product_of_lists_and_stepped_ranges():
    plan = plan_of(
        parameters={
            "macro_cols": [16, 32, 64],
            "macro_rows": {"values": [64, 128]},
            "clock_mhz": {"min": 25, "max": 100, "log": True, "steps": 3},
        }
    )
    assert plan.generated == 18 and len(plan.configs) == 18 and plan.total == 36
    clocks = sorted({hw.clock_mhz for _, hw in plan.hardware()})
    assert clocks == pytest.approx([25.0, 50.0, 100.0])  # geometric steps


def test_constraints_exclude_points_and_can_use_derived_quantities():
    plan = plan_of(
        parameters={"macro_cols": [16, 32, 64, 128], "macro_rows": [64, 128, 256]},
        constraints=["macro_rows * parallelism_factor <= 8192", "total_macros >= 1"],
    )
    kept = {(hw.macro_rows, hw.macro_cols) for _, hw in plan.hardware()}
    assert kept == {(r, c) for r in (64, 128, 256) for c in (16, 32, 64, 128) if r * c <= 8192}
    assert plan.excluded == 12 - len(kept)


def test_invalid_combinations_are_counted_not_run():
    # weight_bits 3 is not in supported_weight_bits: that configuration is invalid
    plan = plan_of(parameters={"weight_bits": [3, 4, 8]})
    assert plan.invalid == 1 and len(plan.configs) == 2
    assert "weight_bits" in plan.invalid_examples[0]


def test_groups_set_several_fields_and_duplicates_collapse():
    plan = plan_of(
        parameters={
            "precision": [
                {"weight_bits": 8, "activation_bits": 8},
                {"weight_bits": 4, "activation_bits": 8},
                {"weight_bits": 8, "activation_bits": 8},
            ]
        }
    )
    assert len(plan.configs) == 2 and plan.duplicates == 1
    assert {(hw.weight_bits, hw.activation_bits) for _, hw in plan.hardware()} == {(8, 8), (4, 8)}


def test_latin_hypercube_puts_one_sample_in_every_stratum():
    n = 50
    plan = plan_of(
        sampling={"method": "lhs", "samples": n, "seed": 3},
        parameters={"voltage_v": {"min": 0.5, "max": 1.0}, "clock_mhz": {"min": 10, "max": 60}},
    )
    for field, lo, hi in (("voltage_v", 0.5, 1.0), ("clock_mhz", 10, 60)):
        values = np.array([getattr(hw, field) for _, hw in plan.hardware()])
        strata = np.floor((values - lo) / (hi - lo) * n).astype(int)
        assert sorted(strata) == list(range(n))


def test_random_sampling_is_reproducible_by_seed():
    def draw(seed):
        plan = plan_of(
            sampling={"method": "random", "samples": 20, "seed": seed},
            parameters={"macro_cols": [8, 16, 32, 64], "clock_mhz": {"min": 1, "max": 500}},
        )
        return [cid for cid, _ in plan.configs]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_configurations_are_stored_compactly_and_rebuilt_identically():
    plan = plan_of(
        sampling={"method": "lhs", "samples": 30, "seed": 5},
        parameters={"clock_mhz": {"min": 10, "max": 90}, "macro_cols": [8, 16], "cores": [1, 2]},
    )
    assert all(set(changes) <= {"clock_mhz", "macro_cols", "cores"} for _, changes in plan.configs)
    assert all(hw.config_id() == cid for cid, hw in plan.hardware())


def test_integer_ranges_are_rounded_into_bounds():
    plan = plan_of(
        sampling={"method": "random", "samples": 40, "seed": 0},
        parameters={"sram_bytes": {"min": 65536, "max": 1048576, "log": True}},
    )
    values = [hw.sram_bytes for _, hw in plan.hardware()]
    assert all(isinstance(v, int) and 65536 <= v <= 1048576 for v in values)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"parameters": {"macro_colz": [8]}}, "did you mean 'macro_cols'"),
        ({"parameters": {"parallelism_factor": [8]}}, "macro_cols"),
        ({"parameters": {"macro_cols": [-4]}}, "macro_cols=-4"),
        ({"parameters": {"macro_cols": {"min": 8, "max": 64}}}, "needs steps"),
        ({"parameters": {"readout": {"min": 1, "max": 2, "steps": 2}}}, "numeric field"),
        ({"sampling": {"method": "lhs"}}, "needs samples"),
        ({"models": []}, "models"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"base": {"preset": "generic", "config": "x.yaml"}}, "either preset or config"),
    ],
)
def test_bad_specs_name_the_problem(spec, needle):
    spec = {"models": MODELS, **spec}
    with pytest.raises(ConfigError, match="invalid sweep spec") as err:
        parse_spec(spec)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "macro_cols.__class__",
        "(lambda: 1)()",
        "[x for x in range(10)]",
        "open('/etc/passwd')",
        "macro_cols if True else exec('1')",
    ],
)
def test_constraints_refuse_anything_but_arithmetic_on_fields(text):
    with pytest.raises(ConfigError, match="constraint"):
        Constraint(text, CONSTRAINT_NAMES)


def test_constraints_bound_powers_and_sizes():
    with pytest.raises(ConfigError, match="exponent"):
        Constraint("10 ** 10 ** 10 > 0", CONSTRAINT_NAMES)({})
    with pytest.raises(ConfigError, match="wider than 1024 bits"):
        Constraint("(2 ** 64) ** 64 * (2 ** 64) ** 64 > 0", CONSTRAINT_NAMES)({})
    with pytest.raises(ConfigError, match="ZeroDivisionError"):
        Constraint("macro_cols / (cores - 1) > 0", CONSTRAINT_NAMES)({"macro_cols": 8, "cores": 1})
    assert Constraint("max(cores, 2) ** 2 == 4 and not (readout in ('adc',))", CONSTRAINT_NAMES)(
        {"cores": 1, "readout": "digital"}
    )


def test_spec_files_in_yaml_toml_and_json_resolve_models_relative_to_the_spec(tmp_path):
    (tmp_path / "m").mkdir()
    model = tmp_path / "m" / "kws.onnx"
    model.write_bytes((ROOT / "models" / "kws_dscnn.onnx").read_bytes())
    data = {"models": ["m/*.onnx"], "parameters": {"macro_cols": [16, 32]}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "s.json").write_text(__import__("json").dumps(data))
    (tmp_path / "s.toml").write_text('models = ["m/*.onnx"]\n[parameters]\nmacro_cols = [16, 32]\n')
    for name in ("s.yaml", "s.json", "s.toml"):
        spec, root = load_spec(tmp_path / name)
        plan = make_plan(spec, root)
        assert plan.total == 2 and plan.models[0].name == "kws"
    with pytest.raises(Exception, match="matches no file"):
        make_plan(parse_spec({"models": ["nothing/*.onnx"]}), tmp_path)
