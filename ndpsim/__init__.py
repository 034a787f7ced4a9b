"""ndpsim: a cycle-approximate simulator of a neural decision processor (NDP).

import ndpsim
report = ndpsim.simulate("models/kws_dscnn.onnx", hardware="ndp120")
print(report.latency_us, report.energy_uj)

The names below are imported on first use, so `import ndpsim.isa` (or the `ndpsim` command's
--help) does not pay for the simulator, onnx or numba.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "HardwareConfig": "ndpsim.config",
    "SimOptions": "ndpsim.options",
    "SimulationReport": "ndpsim.report.schema",
    "load_config": "ndpsim.config",
    "load_preset": "ndpsim.config",
    "simulate": "ndpsim.api",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'ndpsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
