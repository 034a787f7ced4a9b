"""Post-training quantization of float models: calibrate activation ranges by running the
program on the float datapath, then choose per-tensor scales (per-channel symmetric weights
are chosen in `bind`)."""

from __future__ import annotations

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.lower.program import Program
from ndpsim.sim.bind import QParams, QuantPlan, bind
from ndpsim.sim.run import run


def symmetric(amax: float, bits: int) -> QParams:
    """Symmetric signed quantization (zero point 0), as NDP120 runs activations."""
    qmax = (1 << (bits - 1)) - 1
    scale = amax / qmax if amax > 0 else 1.0 / qmax
    return QParams(float(scale), 0, -qmax - 1, qmax)


def calibrate(
    program: Program, hw: HardwareConfig, samples: list[dict[str, np.ndarray]]
) -> QuantPlan:
    """Ranges of every stored value over the calibration samples (min-max, symmetric)."""
    fparams = bind(program, None)
    amax: dict[str, float] = {}
    for inputs in samples:
        res = run(program, hw, fparams, inputs)
        for name, p in program.placements.items():
            vals = res.mem[p.addr : p.addr + p.size]
            m = float(np.abs(vals).max()) if vals.size else 0.0
            amax[name] = max(amax.get(name, 0.0), m)
    bits = hw.activation_bits
    tensors = {name: symmetric(m, bits) for name, m in amax.items()}
    g = program.graph
    for name in g.constants:
        if name in program.placements:
            tensors[name] = symmetric(float(np.abs(g.constants[name]).max()), bits)
    for bd in program.bindings:  # a pad's fill value is stored at its output's scale
        if bd.kind == "pad_value":
            tensors[bd.inputs[0]] = tensors[bd.output]
    for node in g.nodes:
        if node.op_type == "Softmax":  # probabilities: the full range is [0, 1]
            tensors[node.outputs[0]] = symmetric(1.0, bits)
    return QuantPlan(tensors, hw.weight_bits)
