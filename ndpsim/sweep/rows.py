"""A SimulationReport flattened into dataset rows: one per point, optionally one per layer.

Every configuration field and every report metric becomes a column with a fixed Arrow type,
so all files of a dataset share one schema (failed points have nulls in the metric columns).
Dictionaries with fixed keys (energy by component, traffic) become one column per key; the
per-unit utilization, whose keys depend on the core count, is kept as JSON and also
averaged per unit class. `tests/test_sweep_store.py` fails when a report field is not mapped.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import pyarrow as pa

from ndpsim.config import HardwareConfig
from ndpsim.report.energy import COMPONENTS
from ndpsim.report.schema import LayerReport, SimulationReport
from ndpsim.sweep.spec import DERIVED

TRAFFIC = ("sram_read", "sram_write", "ext_read", "ext_write", "weight_write", "host")
UNIT_CLASSES = ("macro", "vector", "dma")

# Key and bookkeeping columns, first in every row. `model` is the Hive partition (the path).
KEY_COLUMNS = [
    ("model_sha256", pa.string()),
    ("model_inputs", pa.string()),  # the spec's input_shapes / input_values as JSON, or ""
    ("config_id", pa.string()),
    ("ndpsim_version", pa.string()),
    ("mode", pa.string()),
    ("model_path", pa.string()),
    ("status", pa.string()),  # ok | failed
    ("error", pa.string()),
]


def _arrow_type(annotation: Any) -> pa.DataType:
    args = typing.get_args(annotation)
    if type(None) in args and len(args) == 2:  # X | None: a nullable X
        return _arrow_type(next(a for a in args if a is not type(None)))
    if annotation is bool:
        return pa.bool_()
    if annotation is int:
        return pa.int64()
    if annotation is float:
        return pa.float64()
    if typing.get_origin(annotation) is tuple:
        return pa.list_(_arrow_type(typing.get_args(annotation)[0]))
    # str, Literal[str, ...], and mappings and models (an operating point) as sorted JSON
    return pa.string()


def _config_column(field: str) -> str:
    return "config_name" if field == "name" else field


CONFIG_COLUMNS = [
    (_config_column(f), _arrow_type(info.annotation))
    for f, info in HardwareConfig.model_fields.items()
] + [(d, pa.float64() if d == "peak_macs_per_cycle" else pa.int64()) for d in DERIVED]

# Report fields equal to a configuration field (already a column) or not a metric; always_on
# and budget are only filled by the CLI's --rate / --budget*, never in a sweep; a sweep point
# of a model with Ifs on run-time data runs their then-branches (`branches`; the other
# branches' resident layers, `idle_branch_layers`, are per-layer detail).
REPORT_SKIPPED = frozenset(
    {"schema_version", "ndpsim_version", "model", "model_sha256", "hardware", "config_id",
     "mode", "clock_mhz", "voltage_v", "sram_bytes", "weight_capacity_bytes", "outputs",
     "always_on", "budget", "branches", "idle_branch_layers"}
)  # fmt: skip

METRIC_COLUMNS = [
    ("latency_cycles", pa.int64()),
    ("latency_us", pa.float64()),
    ("energy_uj", pa.float64()),
    *[(f"energy_{c}_uj", pa.float64()) for c in COMPONENTS],
    ("dynamic_energy_uj", pa.float64()),
    ("static_power_mw", pa.float64()),
    *[(f"traffic_{t}_bytes", pa.int64()) for t in TRAFFIC],
    *[(f"{u}_busy_fraction", pa.float64()) for u in UNIT_CLASSES],
    ("utilization_json", pa.string()),
    ("macro_utilization", pa.float64()),
    ("macs", pa.int64()),
    ("params", pa.int64()),
    ("weight_bytes", pa.int64()),
    ("weights_resident", pa.bool_()),
    ("peak_activation_bytes", pa.int64()),
    ("spilled_tensors", pa.list_(pa.string())),
    ("fits_on_chip", pa.bool_()),
    ("instructions", pa.int64()),
    ("layers", pa.int64()),
    ("agreement_reference", pa.string()),
    ("sqnr_db", pa.float64()),  # worst output; null in timing-only mode
    ("max_abs_error", pa.float64()),
    ("top1_agreement", pa.bool_()),
]

LAYER_COLUMNS = [
    ("model_sha256", pa.string()),
    ("model_inputs", pa.string()),
    ("config_id", pa.string()),
    ("ndpsim_version", pa.string()),
    ("mode", pa.string()),
    ("layer_index", pa.int64()),
    ("layer_name", pa.string()),
    ("op_type", pa.string()),
    ("kind", pa.string()),
    ("fused", pa.string()),  # fused ops joined by "+"
    *[
        (name, _arrow_type(info.annotation))
        for name, info in LayerReport.model_fields.items()
        if name not in ("name", "op_type", "kind", "fused", "energy_breakdown_uj", "output_shape")
    ],
    *[(f"energy_{c}_uj", pa.float64()) for c in COMPONENTS],
    ("output_shape", pa.list_(pa.int64())),
]

POINT_SCHEMA = pa.schema(KEY_COLUMNS + CONFIG_COLUMNS + METRIC_COLUMNS)
LAYER_SCHEMA = pa.schema(LAYER_COLUMNS)
# Report fields the rows carry, by the report's own names (a test checks none is missed).
REPORT_MAPPED = frozenset(
    {"latency_cycles", "latency_us", "energy_uj", "energy_breakdown_uj", "dynamic_energy_uj",
     "static_power_mw", "traffic_bytes", "utilization", "macro_utilization", "macs", "params",
     "weight_bytes", "weights_resident", "peak_activation_bytes", "spilled_tensors",
     "fits_on_chip", "instructions", "layers", "agreement"}
)  # fmt: skip


def _cell(value: Any) -> Any:
    """A configuration value as its column holds it: mappings as sorted JSON, lists element
    by element."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        return [_cell(v) for v in value]
    return value


def config_row(hw: HardwareConfig) -> dict[str, Any]:
    row = {_config_column(k): _cell(v) for k, v in hw.model_dump(mode="json").items()}
    row.update({d: getattr(hw, d) for d in DERIVED})
    return row


def _unit_class(unit: str) -> str:
    return unit.rsplit(".", 1)[-1].rstrip("0123456789")


def metric_row(report: SimulationReport) -> dict[str, Any]:
    row: dict[str, Any] = {
        "latency_cycles": report.latency_cycles,
        "latency_us": report.latency_us,
        "energy_uj": report.energy_uj,
        "dynamic_energy_uj": report.dynamic_energy_uj,
        "static_power_mw": report.static_power_mw,
        "utilization_json": json.dumps(report.utilization, sort_keys=True),
        "macro_utilization": report.macro_utilization,
        "macs": report.macs,
        "params": report.params,
        "weight_bytes": report.weight_bytes,
        "weights_resident": report.weights_resident,
        "peak_activation_bytes": report.peak_activation_bytes,
        "spilled_tensors": list(report.spilled_tensors),
        "fits_on_chip": report.fits_on_chip,
        "instructions": report.instructions,
        "layers": len(report.layers),
    }
    for c in COMPONENTS:
        row[f"energy_{c}_uj"] = report.energy_breakdown_uj[c]
    for t in TRAFFIC:
        row[f"traffic_{t}_bytes"] = report.traffic_bytes[t]
    for u in UNIT_CLASSES:
        busy = [v for k, v in report.utilization.items() if _unit_class(k) == u]
        row[f"{u}_busy_fraction"] = sum(busy) / len(busy) if busy else None
    if report.agreement:
        worst = min(report.agreement, key=lambda a: a.sqnr_db)
        row["agreement_reference"] = worst.reference
        row["sqnr_db"] = worst.sqnr_db
        row["max_abs_error"] = max(a.max_abs_error for a in report.agreement)
        tops = [a.top1_agreement for a in report.agreement if a.top1_agreement is not None]
        row["top1_agreement"] = all(tops) if tops else None
    return row


def layer_rows(report: SimulationReport, key: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, lay in enumerate(report.layers):
        row = dict(key)
        row.update(lay)
        row["layer_index"] = i
        row["layer_name"] = row.pop("name")
        row["fused"] = "+".join(lay.fused)
        for c in COMPONENTS:
            row[f"energy_{c}_uj"] = lay.energy_breakdown_uj.get(c, 0.0)
        del row["energy_breakdown_uj"]
        rows.append(row)
    return rows
