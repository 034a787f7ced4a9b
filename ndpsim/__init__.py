"""ndpsim: a cycle-approximate simulator of a neural decision processor (NDP).

import ndpsim
report = ndpsim.simulate("models/kws_dscnn.onnx", hardware="ndp120")
print(report.latency_us, report.energy_uj)
"""

__version__ = "0.1.0"

from ndpsim.api import SimOptions, simulate  # noqa: E402
from ndpsim.config import HardwareConfig, load_config, load_preset  # noqa: E402
from ndpsim.report.schema import SimulationReport  # noqa: E402

__all__ = [
    "HardwareConfig",
    "SimOptions",
    "SimulationReport",
    "__version__",
    "load_config",
    "load_preset",
    "simulate",
]
