"""Hardware the estimator is trained and evaluated on: the presets plus configurations drawn
from wide ranges of every structural, timing and energy field, half of them with small
weight and activation memories (so that weights stream and activations spill), and the
range check behind `predict`'s warning."""

from __future__ import annotations

import numpy as np

from ndpsim.config import HardwareConfig, load_preset
from ndpsim.errors import ConfigError

PRESETS = ("generic", "ndp120", "neural-engine")
# Choices per field (log-uniform ranges as (low, high) with `log` in the name's entry).
CHOICES = {
    "cores": (1, 1, 2, 4),
    "macros_per_core": (1, 2, 4, 8),
    "macro_rows": (32, 64, 128, 256, 512),
    "macro_cols": (4, 8, 16, 32, 64, 128),
    "weight_bits": (4, 8, 8, 8),
    "input_bits_per_cycle": (1, 1, 2, 4),
    "instruction_issue_cycles": (0, 1, 1, 2),
    "readout": ("digital", "digital", "adc"),
}
RANGES = {  # (low, high, log)
    "accumulator_entries_per_macro": (512, 16384, True),
    "vector_lanes": (4, 128, True),
    "readout_columns_per_cycle": (8, 128, True),
    "macro_pipeline_cycles": (0, 48, False),
    "vector_pipeline_cycles": (0, 8, False),
    "softmax_cycles_per_element": (1, 8, False),
    "sram_bytes_per_cycle": (4, 128, True),
    "ext_mem_bytes_per_cycle": (1, 32, True),
    "ext_mem_latency_cycles": (10, 200, True),
    "layer_setup_cycles": (0, 400, False),
    "layer_setup_us": (0.0, 15.0, False),
    "clock_mhz": (20.0, 1000.0, True),
    "voltage_v": (0.6, 1.1, False),
}
# Memories: ample (everything of a mid-size network fits) or small (weights stream,
# activations spill).
MEMORY = {
    "ample": {"macro_weight_sets": (64, 2048), "sram_bytes": (512 << 10, 8 << 20)},
    "small": {"macro_weight_sets": (1, 16), "sram_bytes": (16 << 10, 256 << 10)},
}
# Per-event energies and static power are scaled together from the generic preset's.
ENERGY_FIELDS = (
    "macro_bit_op_energy_fj", "macro_row_drive_energy_fj", "readout_energy_pj",
    "adc_energy_pj", "accumulator_add_energy_pj", "vector_op_energy_pj", "vector_lut_energy_pj",
    "sram_read_energy_pj_per_byte", "sram_write_energy_pj_per_byte",
    "ext_mem_read_energy_pj_per_byte", "ext_mem_write_energy_pj_per_byte",
    "weight_write_energy_pj_per_byte", "host_transfer_energy_pj_per_byte",
    "instruction_energy_pj", "clock_energy_pj_per_cycle", "leakage_mw", "fixed_power_mw",
)  # fmt: skip


def _draw(rng: np.random.Generator, low: float, high: float, log: bool, integer: bool):
    u = rng.random()
    v = np.exp(np.log(low) + u * (np.log(high) - np.log(low))) if log else low + u * (high - low)
    return int(round(v)) if integer else float(v)


def sample_config(rng: np.random.Generator, memory: str, name: str) -> HardwareConfig:
    """One configuration drawn from the ranges above with `memory` ("ample" or "small")."""
    base = load_preset("generic")
    while True:
        ch: dict = {"name": name}
        for f, values in CHOICES.items():
            ch[f] = values[int(rng.integers(len(values)))]
        for f, (lo, hi, log) in RANGES.items():
            ch[f] = _draw(rng, lo, hi, log, isinstance(getattr(base, f), int))
        for f, (lo, hi) in MEMORY[memory].items():
            ch[f] = _draw(rng, lo, hi, True, True)
        scale = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
        for f in ENERGY_FIELDS:
            ch[f] = getattr(base, f) * scale * float(np.exp(rng.uniform(-0.3, 0.3)))
        ch["clock_energy_pj_per_cycle"] = float(rng.uniform(0, 60)) * scale
        ch["energy_reference_voltage_v"] = float(rng.uniform(0.7, 1.0))
        ch["macro_column_bits"] = 8
        ch["accumulator_entries_per_macro"] = max(ch["accumulator_entries_per_macro"],
                                                  2 * ch["macro_cols"])  # fmt: skip
        try:
            return base.with_(**ch)
        except ConfigError:
            continue


def sample_configs(n: int, seed: int, prefix: str) -> list[HardwareConfig]:
    """`n` configurations, alternately ample and small memory."""
    rng = np.random.default_rng(seed)
    return [sample_config(rng, "small" if i % 2 else "ample", f"{prefix}{i:02d}") for i in range(n)]


def evaluation_configs(n_sampled: int, seed: int) -> list[HardwareConfig]:
    """The presets plus `n_sampled` configurations (half with small memories)."""
    return [load_preset(p) for p in PRESETS] + sample_configs(n_sampled, seed, "eval")


# Fields whose training range `predict` checks (the ones that shape the program or time it).
CHECKED = ("cores", "macros_per_core", "macro_rows", "macro_cols", "macro_weight_sets",
           "sram_bytes", "accumulator_entries_per_macro", "vector_lanes", "clock_mhz",
           "sram_bytes_per_cycle", "ext_mem_bytes_per_cycle", "weight_bits",
           "activation_bits", "input_bits_per_cycle")  # fmt: skip


def training_ranges(hws: list[HardwareConfig]) -> dict[str, list[float]]:
    """[min, max] of every checked field over the training hardware."""
    return {f: [float(min(getattr(h, f) for h in hws)), float(max(getattr(h, f) for h in hws))]
            for f in CHECKED}  # fmt: skip


def outside(hw: HardwareConfig, ranges: dict[str, list[float]]) -> list[str]:
    """The checked fields of `hw` outside the training ranges, as 'field=value (lo..hi)'."""
    out = []
    for f, (lo, hi) in ranges.items():
        v = float(getattr(hw, f))
        if v < lo or v > hi:
            out.append(f"{f}={_num(v)} (trained on {_num(lo)}..{_num(hi)})")
    return out


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:.3g}"
