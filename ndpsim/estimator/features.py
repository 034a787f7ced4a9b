"""Hardware-aware kernel features, computed in numpy over whole columns at once.

The step functions of a parallelism-factor machine are the features: channels rounded up
to the macro, ceil(K/rows) x ceil(Cout/cols) folds, the block-diagonal packing of grouped
convs, pixel blocks bounded by the accumulator, utilization, bytes moved against SRAM
bandwidth and capacity, whether the weights fit. From them an analytic first-order estimate
of cycles and dynamic energy (the tiling and timing equations of docs/machine_model.md,
without the schedule) is formed; the regressors learn the residual of log(simulated) over
log(estimate). Inputs are kernel columns (the fields of `ndpsim.lower.kernels.Kernel`) and
hardware columns (HardwareConfig fields, one value per row).
"""

from __future__ import annotations

import numpy as np

from ndpsim.estimator.schedule import schedule_feature
from ndpsim.lower.kernels import ACTIVATIONS, MAC_TYPES

VECTOR_CHUNK = 4096  # elements per vector instruction (lower/lower.py: _VECTOR_CHUNK)

# Hardware fields the features read (every one is a HardwareConfig field).
HW_FIELDS = (
    "cores",
    "macros_per_core",
    "macro_rows",
    "macro_cols",
    "macro_weight_sets",
    "weight_bits",
    "activation_bits",
    "accumulator_entries_per_macro",
    "vector_lanes",
    "sram_bytes",
    "input_bits_per_cycle",
    "readout_columns_per_cycle",
    "macro_pipeline_cycles",
    "vector_pipeline_cycles",
    "softmax_cycles_per_element",
    "sram_bytes_per_cycle",
    "ext_mem_bytes_per_cycle",
    "instruction_issue_cycles",
    "macro_bit_op_energy_fj",
    "macro_row_drive_energy_fj",
    "readout_energy_pj",
    "adc_energy_pj",
    "accumulator_add_energy_pj",
    "vector_op_energy_pj",
    "vector_lut_energy_pj",
    "sram_read_energy_pj_per_byte",
    "sram_write_energy_pj_per_byte",
    "host_transfer_energy_pj_per_byte",
    "instruction_energy_pj",
    "voltage_v",
    "energy_reference_voltage_v",
)
# Geometry columns a kernel row carries (Kernel fields; `act` is encoded as its index).
GEOM_FIELDS = (
    "c_in",
    "h_in",
    "w_in",
    "c_out",
    "h_out",
    "w_out",
    "kh",
    "kw",
    "stride_h",
    "stride_w",
    "dil_h",
    "dil_w",
    "groups",
    "n_inputs",
    "a_bits",
    "w_bits",
)


def hw_columns(hw, n: int | None = None) -> dict[str, np.ndarray]:
    """One HardwareConfig as columns of length n, or as 0-d arrays (one value for all rows)
    when n is None; the readout energy is resolved to the configured readout."""
    cols = {
        f: np.full(n, float(getattr(hw, f))) if n is not None else np.array(float(getattr(hw, f)))
        for f in HW_FIELDS
    }
    if hw.readout == "adc":
        cols["readout_energy_pj"] = cols["adc_energy_pj"]
    return cols


def act_code(acts) -> np.ndarray:
    lookup = {a: i for i, a in enumerate(ACTIVATIONS)}
    return np.array([lookup[a] for a in acts], dtype=np.float64)


def _cdiv(a, b):
    return -(-a // b)


def mac_tiles(k: dict[str, np.ndarray], h: dict[str, np.ndarray]) -> np.ndarray:
    """Weight tiles of MAC kernels (lower/tiling.py: tiles_for), alone: the placement cursor
    needs only these."""
    R, C = (
        np.asarray(h["macro_rows"]).astype(np.int64),
        np.asarray(h["macro_cols"]).astype(np.int64),
    )
    groups = np.maximum(k["groups"].astype(np.int64), 1)
    cin_g, cout_g = k["c_in"] // groups, k["c_out"] // groups
    k_g = cin_g * k["kh"] * k["kw"]
    packed = (k_g <= R) & (cout_g <= C)
    per = np.maximum(
        1, np.minimum(np.minimum(R // np.maximum(k_g, 1), C // np.maximum(cout_g, 1)), groups)
    )
    return np.where(packed, _cdiv(groups, per), groups * _cdiv(k_g, R) * _cdiv(cout_g, C))


def mac_features(k: dict[str, np.ndarray], h: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tiling, schedule and energy estimates of MAC kernels (lower/tiling.py equations)."""
    f = {x: k[x].astype(np.int64) for x in GEOM_FIELDS}
    R, C = h["macro_rows"].astype(np.int64), h["macro_cols"].astype(np.int64)
    macros = (h["cores"] * h["macros_per_core"]).astype(np.int64)
    groups = np.maximum(f["groups"], 1)
    cin_g, cout_g = f["c_in"] // groups, f["c_out"] // groups
    kk = f["kh"] * f["kw"]
    k_g = cin_g * kk
    pixels = f["h_out"] * f["w_out"]
    packed = (k_g <= R) & (cout_g <= C)
    per = np.where(
        packed,
        np.maximum(
            1, np.minimum(np.minimum(R // np.maximum(k_g, 1), C // np.maximum(cout_g, 1)), groups)
        ),
        1,
    )
    folds_k = np.where(packed, 1, _cdiv(k_g, R))
    folds_c = np.where(packed, _cdiv(groups, per), groups * _cdiv(cout_g, C))
    tiles = folds_k * folds_c
    cols_max = np.where(packed, per * cout_g, np.minimum(cout_g, C))
    rows_max = np.where(packed, per * k_g, np.minimum(k_g, R))
    px = np.maximum(
        1, h["accumulator_entries_per_macro"].astype(np.int64) // (2 * np.maximum(cols_max, 1))
    )
    ow = np.maximum(f["w_out"], 1)
    px = np.where(px >= ow, (px // ow) * ow, px)
    px = np.minimum(px, np.maximum(pixels, 1))
    blocks = _cdiv(pixels, px)
    in_cyc = _cdiv(f["a_bits"], h["input_bits_per_cycle"].astype(np.int64))
    readout = np.maximum(1, _cdiv(cols_max, h["readout_columns_per_cycle"].astype(np.int64)))
    mvm_compute = px * in_cyc * readout + h["macro_pipeline_cycles"]
    n_last = pixels - (blocks - 1) * px
    rows_per_block = _cdiv(px, ow)
    span_h = np.minimum(
        f["h_in"], (rows_per_block - 1) * f["stride_h"] + (f["kh"] - 1) * f["dil_h"] + 1
    )
    span_w = np.where(
        px >= ow,
        f["w_in"],
        np.minimum(f["w_in"], (px - 1) * f["stride_w"] + (f["kw"] - 1) * f["dil_w"] + 1),
    )
    ch_tile = np.where(packed, per * cin_g, _cdiv(np.minimum(k_g, R), np.maximum(kk, 1)))
    mvm_bytes = _cdiv(ch_tile * span_h * span_w * f["a_bits"], 8)
    sram_bpc = h["sram_bytes_per_cycle"]
    mvm_sram = np.ceil(mvm_bytes / sram_bpc)
    mvm_cycles = np.maximum(mvm_compute, mvm_sram)
    mvm_last = np.maximum(
        n_last * in_cyc * readout + h["macro_pipeline_cycles"],
        np.ceil(mvm_bytes * n_last / np.maximum(px, 1) / sram_bpc),
    )
    waves = _cdiv(tiles, macros)
    lanes, vpipe = h["vector_lanes"], h["vector_pipeline_cycles"]
    nch = np.minimum(cols_max, f["c_out"])
    rq_cycles = np.maximum(
        np.ceil(nch * px / lanes) + vpipe, np.ceil(_cdiv(nch * px * f["a_bits"], 8) / sram_bpc)
    )
    rq_last = np.maximum(
        np.ceil(nch * n_last / lanes) + vpipe,
        np.ceil(_cdiv(nch * n_last * f["a_bits"], 8) / sram_bpc),
    )
    est_macro = blocks * waves * mvm_cycles
    est_vector = blocks * folds_c * rq_cycles / np.minimum(h["cores"], folds_c)
    est_cycles = np.maximum(est_macro, est_vector) + np.minimum(mvm_cycles, rq_cycles)
    macs = pixels * f["c_out"] * k_g
    padded = pixels * tiles * R * C
    weight_bytes = _cdiv(f["c_out"] * k_g * f["w_bits"], 8)
    in_bytes = _cdiv(f["c_in"] * f["h_in"] * f["w_in"] * f["a_bits"], 8)
    out_bytes = _cdiv(f["c_out"] * pixels * f["a_bits"], 8)
    # dynamic energy: the counters of section 7, priced as in report/energy.py
    cells = np.where(packed, groups * per * k_g * cout_g, groups * k_g * cout_g)
    v2 = (h["voltage_v"] / h["energy_reference_voltage_v"]) ** 2
    sram_read = blocks * tiles * mvm_bytes
    instrs = blocks * (tiles + folds_c) + np.minimum(h["cores"], folds_c)
    est_pj = v2 * (
        pixels * cells * f["w_bits"] * f["a_bits"] * h["macro_bit_op_energy_fj"] / 1000
        + pixels * in_cyc * groups * k_g * h["macro_row_drive_energy_fj"] / 1000
        + pixels * in_cyc * f["c_out"] * folds_k * h["readout_energy_pj"]
        + pixels * f["c_out"] * folds_k * h["accumulator_add_energy_pj"]
        + sram_read * h["sram_read_energy_pj_per_byte"]
        + out_bytes * h["sram_write_energy_pj_per_byte"]
        + pixels * f["c_out"] * h["vector_op_energy_pj"]
        + instrs * h["instruction_energy_pj"]
    )
    return {
        "macs": macs,
        "padded_macs": padded,
        "utilization": macs / np.maximum(padded, 1),
        "k_g": k_g,
        "cout_g": cout_g,
        "packed": packed,
        "per_tile": per,
        "folds_k": folds_k,
        "folds_c": folds_c,
        "tiles": tiles,
        "waves": waves,
        "rows_used": rows_max,
        "cols_used": cols_max,
        "pixel_block": px,
        "blocks": blocks,
        "mvm_instrs": blocks * tiles,
        "mvm_compute": mvm_compute,
        "mvm_sram": mvm_sram,
        "rq_cycles": rq_cycles,
        "est_macro": est_macro,
        "est_vector": est_vector,
        "weight_bytes": weight_bytes,
        "in_bytes": in_bytes,
        "out_bytes": out_bytes,
        "act_vs_sram": (in_bytes + out_bytes) / h["sram_bytes"],
        "weights_vs_capacity": tiles / (macros * h["macro_weight_sets"]),
        "fits": (tiles <= macros * h["macro_weight_sets"])
        & (in_bytes + out_bytes <= h["sram_bytes"]),
        "est_cycles": est_cycles,
        "est_pj": est_pj,
        "pixels": pixels,
        "mvm_full": mvm_cycles,
        "mvm_last": mvm_last,
        "rq_full": rq_cycles,
        "rq_last": rq_last,
    }


def vector_features(
    k: dict[str, np.ndarray], h: dict[str, np.ndarray], types: np.ndarray
) -> dict[str, np.ndarray]:
    """Element counts, chunks, SRAM bytes and the vector-unit timing of vector/io kernels."""
    f = {x: k[x].astype(np.int64) for x in GEOM_FIELDS}
    out_el = f["c_out"] * f["h_out"] * f["w_out"]
    in_el = f["c_in"] * f["h_in"] * f["w_in"] * np.maximum(f["n_inputs"], 1)
    window = f["kh"] * f["kw"]
    work = out_el * window
    softmax = types == "softmax"
    io = (types == "input") | (types == "output")
    items = np.where(window > 1, out_el, out_el)
    per_item = np.maximum(window, 1)
    chunks = np.maximum(1, _cdiv(items, np.maximum(1, VECTOR_CHUNK // per_item)))
    bytes_io = _cdiv(in_el * f["a_bits"], 8) + _cdiv(out_el * f["a_bits"], 8)
    per = np.where(softmax, h["softmax_cycles_per_element"], 1.0)
    compute = np.ceil(work / h["vector_lanes"]) * per + chunks * h["vector_pipeline_cycles"]
    sram = np.ceil(bytes_io / h["sram_bytes_per_cycle"])
    host = np.ceil(
        np.where(types == "input", _cdiv(in_el * f["a_bits"], 8), _cdiv(out_el * f["a_bits"], 8))
        / h["sram_bytes_per_cycle"]
    )
    est_cycles = np.where(io, host, np.maximum(compute, sram / chunks * chunks))
    v2 = (h["voltage_v"] / h["energy_reference_voltage_v"]) ** 2
    est_pj = v2 * np.where(
        io,
        bytes_io / 2 * (h["host_transfer_energy_pj_per_byte"] + h["sram_write_energy_pj_per_byte"]),
        work * h["vector_op_energy_pj"] * np.where(softmax, 3, 1)
        + softmax * work * h["vector_lut_energy_pj"]
        + _cdiv(in_el * f["a_bits"], 8) * h["sram_read_energy_pj_per_byte"]
        + _cdiv(out_el * f["a_bits"], 8) * h["sram_write_energy_pj_per_byte"]
        + chunks * h["instruction_energy_pj"],
    )
    return {
        "in_elements": in_el,
        "out_elements": out_el,
        "work": work,
        "chunks": chunks,
        "bytes": bytes_io,
        "vec_compute": compute,
        "vec_sram": sram,
        "act_vs_sram": bytes_io / h["sram_bytes"],
        "est_cycles": np.maximum(est_cycles, 1),
        "est_pj": np.maximum(est_pj, 1e-3),
    }


def is_mac(kernel_type: str) -> bool:
    return kernel_type in MAC_TYPES


def feature_matrix(
    kernel_type: str,
    k: dict[str, np.ndarray],
    h: dict[str, np.ndarray],
    only: set[str] | None = None,
) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """(X, feature names, derived columns) for rows of one kernel type.

    X holds what does not depend on where the kernel sits in its program (so equal kernels
    have equal rows); `cycle_estimate` adds the placement. `only` restricts the columns
    filled (the others stay 0) to the ones the trees split on.
    """
    n = len(k["c_in"])
    types = np.full(n, kernel_type)
    h = {x: np.broadcast_to(v, (n,)) for x, v in h.items()}
    derived = mac_features(k, h) if is_mac(kernel_type) else vector_features(k, h, types)
    cols: dict[str, np.ndarray] = {g: k[g] for g in GEOM_FIELDS}
    cols["act"] = k["act_code"]
    cols.update({f"hw_{x}": h[x] for x in HW_FIELDS[:18]})
    cols.update(derived)
    cols["log_est_cycles"] = np.log(np.maximum(derived["est_cycles"], 1))
    cols["log_est_pj"] = np.log(derived["est_pj"])
    names = list(cols)
    use = [j for j, name in enumerate(names) if only is None or name in only]
    X = np.zeros((n, len(names)), dtype=np.float64)
    for j in use:
        X[:, j] = cols[names[j]]
    return X, names, derived


def cycle_estimate(
    kernel_type: str, derived: dict[str, np.ndarray], h: dict[str, np.ndarray], cursor
) -> np.ndarray:
    """The analytic cycles of each row: for MAC kernels the first-order schedule
    (schedule.py) from the macro its first tile lands on (`cursor`, lower/memory.py's
    round-robin placement); for the others the vector / host timing estimate."""
    if not is_mac(kernel_type):
        return np.asarray(derived["est_cycles"], np.float64)
    n = len(derived["pixels"])
    h = {x: np.broadcast_to(v, (n,)) for x, v in h.items()}
    return np.maximum(schedule_feature(derived, h, cursor), 1).astype(np.float64)
