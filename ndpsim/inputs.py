"""Model inputs: seeded random samples, .npz files, and the calibration set."""

from __future__ import annotations

import numpy as np

from ndpsim.errors import UserError
from ndpsim.ir import Graph
from ndpsim.options import SimOptions


def load_npz(path: str, graph: Graph) -> list[dict[str, np.ndarray]]:
    """Inputs from an .npz: arrays named as the graph inputs; a leading sample axis allowed."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read inputs {path}: {exc}") from None
    samples: list[dict[str, np.ndarray]] = []
    for name in graph.inputs:
        if name not in data:
            raise UserError(f"{path}: no array named {name!r} (inputs: {', '.join(graph.inputs)})")
        arr = np.asarray(data[name], np.float32)
        shape = graph.tensors[name].shape
        batch = arr.reshape((-1, *shape)) if arr.size % max(1, int(np.prod(shape))) == 0 else None
        if batch is None:
            raise UserError(f"{path}: {name!r} has {arr.size} elements; shape is {shape}")
        for i, x in enumerate(batch):
            if len(samples) <= i:
                samples.append({})
            samples[i][name] = x
    return samples


def random_inputs(graph: Graph, seed: int) -> dict[str, np.ndarray]:
    """One sample of standard-normal float32 inputs, seeded."""
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(graph.tensors[n].shape).astype(np.float32) for n in graph.inputs}


def samples_of(graph: Graph, opts: SimOptions) -> list[dict[str, np.ndarray]]:
    """The inputs to simulate: the .npz given, else one seeded random sample."""
    return load_npz(opts.inputs, graph) if opts.inputs else [random_inputs(graph, opts.seed)]


def calibration_inputs(
    graph: Graph, opts: SimOptions, samples: list[dict[str, np.ndarray]]
) -> list[dict[str, np.ndarray]]:
    """The .npz given, else `calibration_samples` seeded random inputs (seeds after the
    measured input's), else the measured inputs themselves."""
    if opts.calibration:
        return load_npz(opts.calibration, graph)
    if opts.calibration_samples:
        return [random_inputs(graph, opts.seed + 1 + i) for i in range(opts.calibration_samples)]
    return samples
