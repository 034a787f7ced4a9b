"""Price event counters in energy: counters x per-event energy at the reference voltage,
scaled by (V / V_ref)^2 for dynamic energy, plus each macro's energy per busy cycle (a
clock-gated unit costs nothing while idle); clock energy per active cycle (also V^2);
leakage (proportional to V) and fixed power times latency. The equations are in
docs/machine_model.md ("Energy")."""

from __future__ import annotations

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.isa import Counter as C

COMPONENTS = (
    "macro_compute",
    "readout",
    "sram",
    "external_memory",
    "vector_unit",
    "control",
    "clock",
    "leakage",
)


def dynamic_pj(counters: np.ndarray, hw: HardwareConfig) -> dict[str, np.ndarray]:
    """Dynamic energy per component in pJ, at the operating point, for each counter row
    (a 2-D array [rows, counters] gives one value per row)."""
    c = np.atleast_2d(counters).astype(np.float64)
    v_scale = (hw.voltage_v / hw.energy_reference_voltage_v) ** 2
    readout_pj = hw.adc_energy_pj if hw.readout == "adc" else hw.readout_energy_pj
    parts = {
        "macro_compute": c[:, C.MACRO_CELL_BIT_OPS] * hw.macro_bit_op_energy_fj / 1000
        + c[:, C.MACRO_ROW_ACTIVATIONS] * hw.macro_row_drive_energy_fj / 1000
        + c[:, C.ACCUMULATOR_ADDS] * hw.accumulator_add_energy_pj
        + c[:, C.MACRO_BUSY_CYCLES] * hw.macro_active_energy_pj_per_cycle,
        "readout": c[:, C.READOUT_CONVERSIONS] * readout_pj,
        "sram": c[:, C.SRAM_READ_BYTES] * hw.sram_read_energy_pj_per_byte
        + c[:, C.SRAM_WRITE_BYTES] * hw.sram_write_energy_pj_per_byte,
        "external_memory": c[:, C.EXT_READ_BYTES] * hw.ext_mem_read_energy_pj_per_byte
        + c[:, C.EXT_WRITE_BYTES] * hw.ext_mem_write_energy_pj_per_byte
        + c[:, C.WEIGHT_WRITE_BYTES] * hw.weight_write_energy_pj_per_byte
        + c[:, C.HOST_BYTES] * hw.host_transfer_energy_pj_per_byte,
        "vector_unit": c[:, C.VECTOR_ELEMENT_OPS] * hw.vector_op_energy_pj
        + c[:, C.VECTOR_LUT_OPS] * hw.vector_lut_energy_pj,
        "control": c[:, C.INSTRUCTIONS] * hw.instruction_energy_pj,
    }
    return {k: v * v_scale for k, v in parts.items()}


def clock_pj(cycles: float | np.ndarray, hw: HardwareConfig) -> float | np.ndarray:
    """Clock tree and control processor: energy per active cycle at the reference voltage,
    scaled by (V / V_ref)^2 like every dynamic energy."""
    v_scale = (hw.voltage_v / hw.energy_reference_voltage_v) ** 2
    return np.asarray(cycles, np.float64) * hw.clock_energy_pj_per_cycle * v_scale


def static_power_mw(hw: HardwareConfig) -> float:
    """Leakage (scales linearly with V, a first-order model) plus fixed always-on power."""
    return hw.leakage_mw * hw.voltage_v / hw.energy_reference_voltage_v + hw.fixed_power_mw


def static_pj(cycles: float | np.ndarray, hw: HardwareConfig) -> float | np.ndarray:
    """Static energy over `cycles` at the configured clock: mW x us = nJ -> x 1e3 pJ."""
    return static_power_mw(hw) * (np.asarray(cycles, np.float64) / hw.clock_mhz) * 1e3
