"""HardwareConfig: presets, file formats, overrides and clear errors naming the field."""

from __future__ import annotations

import json

import pytest

from ndpsim.config import (
    STRUCTURAL_FIELDS,
    HardwareConfig,
    load_config,
    load_preset,
    parse_overrides,
    preset_names,
    resolve_hardware,
)
from ndpsim.errors import ConfigError


def test_presets_exist_and_validate():
    assert {"generic", "ndp120", "ndp101", "neural-engine"} <= set(preset_names())
    ndp120 = load_preset("ndp120")
    assert ndp120.weight_bits == 8 and 30.7 <= ndp120.clock_mhz <= 98.7
    assert ndp120.sram_bytes + ndp120.weight_capacity_bytes <= 1024 * 1024
    ndp101 = load_preset("ndp101")
    assert not ndp101.supports_conv and ndp101.weight_bits == 4


@pytest.mark.parametrize("suffix", [".yaml", ".toml", ".json"])
def test_load_from_each_format(tmp_path, suffix):
    path = tmp_path / f"hw{suffix}"
    if suffix == ".yaml":
        path.write_text("preset: ndp120\nmacro_cols: 32\n")
    elif suffix == ".toml":
        path.write_text('preset = "ndp120"\nmacro_cols = 32\n')
    else:
        path.write_text(json.dumps({"preset": "ndp120", "macro_cols": 32}))
    hw = load_config(path)
    assert hw.name == "ndp120" and hw.macro_cols == 32


def test_overrides_are_typed_and_checked():
    hw = resolve_hardware("generic", None, ["macro_cols=128", "readout=adc", "clock_mhz=50.5"])
    assert (hw.macro_cols, hw.readout, hw.clock_mhz) == (128, "adc", 50.5)
    with pytest.raises(ConfigError, match="no_such_field"):
        parse_overrides(["no_such_field=3"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["macro_cols"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"macro_cols": 0}, "macro_cols"),
        ({"clock_mhz": -1}, "clock_mhz"),
        ({"readout": "optical"}, "readout"),
        ({"weight_bits": 3}, "weight_bits"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_invalid_values_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        load_preset("generic").with_(**change)


def test_bad_files_are_refused_clearly(tmp_path):
    bad = tmp_path / "hw.yaml"
    bad.write_text("macro_cols: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        load_preset("nope")
    with pytest.raises(ConfigError, match=r"\.yaml, \.toml or \.json"):
        load_config(tmp_path / "hw.ini")


def test_config_is_frozen_and_ids_are_stable():
    hw = load_preset("generic")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type
        hw.macro_cols = 3
    assert hw.config_id() == load_preset("generic").config_id()
    assert hw.config_id() != hw.with_(macro_cols=32).config_id()
    assert STRUCTURAL_FIELDS <= set(HardwareConfig.model_fields)
