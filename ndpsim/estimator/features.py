"""Per-kernel features for the residual regressors: the kernel's geometry (lower/kernels.py),
the hardware fields that shape or time it, and what the analytic model (plan.py) says about
it on that hardware — its span, busy cycles per unit class, instructions, traffic, where in
the program it starts. The regressors learn log(simulated / analytic) from these."""

from __future__ import annotations

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.estimator.plan import Evaluation
from ndpsim.isa import Counter as C
from ndpsim.lower.kernels import KERNEL_TYPES, Kernel

GEOM = ("c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "kh", "kw", "stride_h", "stride_w",
        "groups", "n_inputs", "w_bits", "a_bits")  # fmt: skip
HW = ("cores", "macros_per_core", "macro_rows", "macro_cols", "macro_weight_sets",
      "accumulator_entries_per_macro", "vector_lanes", "sram_bytes", "input_bits_per_cycle",
      "readout_columns_per_cycle", "macro_pipeline_cycles", "vector_pipeline_cycles",
      "softmax_cycles_per_element", "sram_bytes_per_cycle", "ext_mem_bytes_per_cycle",
      "ext_mem_latency_cycles", "instruction_issue_cycles", "layer_setup_total_cycles")  # fmt: skip
COUNTERS = (C.MACRO_BUSY_CYCLES, C.VECTOR_BUSY_CYCLES, C.DMA_BUSY_CYCLES, C.INSTRUCTIONS,
            C.MACS, C.SRAM_READ_BYTES, C.SRAM_WRITE_BYTES, C.EXT_READ_BYTES,
            C.EXT_WRITE_BYTES, C.WEIGHT_WRITE_BYTES)  # fmt: skip
NAMES = (*GEOM, *(f"hw_{f}" for f in HW), "log_span", *(f"log_{c.name.lower()}" for c in COUNTERS),
         "start_fraction")  # fmt: skip


def kernel_table(kernels: list[Kernel]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(layer index, kernel type index into KERNEL_TYPES, geometry matrix) of a program's
    kernels (hardware-independent: computed once per model)."""
    layer = np.array([k.layer_index for k in kernels], np.int64)
    kind = np.array([KERNEL_TYPES.index(k.kernel_type) for k in kernels], np.int64)
    geom = np.array([[getattr(k, f) for f in GEOM] for k in kernels], np.float64)
    return layer, kind, geom.reshape(len(kernels), len(GEOM))


def features(layer: np.ndarray, geom: np.ndarray, ev: Evaluation, hw: HardwareConfig):
    """The feature matrix (NAMES columns) of the kernels at `layer` on `hw`."""
    n = len(layer)
    hw_cols = np.array([float(getattr(hw, f)) for f in HW])
    span = ev.spans[layer].astype(np.float64)
    counts = ev.counters[layer][:, [int(c) for c in COUNTERS]].astype(np.float64)
    start = ev.first[layer] / max(ev.cycles, 1)
    return np.hstack([geom, np.broadcast_to(hw_cols, (n, len(HW))), np.log1p(span)[:, None],
                      np.log1p(counts), start[:, None]])  # fmt: skip
