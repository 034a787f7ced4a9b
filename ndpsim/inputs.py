"""Model inputs: seeded random samples, arrays, .npz files, and the calibration set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ndpsim.errors import UserError
from ndpsim.ir import Graph
from ndpsim.options import SimOptions

Sample = dict[str, np.ndarray]


def split_samples(arrays: Mapping[str, Any], graph: Graph, where: str) -> tuple[list[Sample], bool]:
    """(samples, batched) from arrays named as the graph inputs (`where` names them in
    errors). An array of the input's size is one sample; one of a multiple of it holds a
    sample per row of a leading sample axis (`batched`, also when that axis has length 1)."""
    if not graph.inputs:  # every input fixed to values: one run
        return [{}], False
    samples: list[Sample] = []
    batched = False
    for name in graph.inputs:
        if name not in arrays:
            raise UserError(f"{where}: no array named {name!r} (inputs: {', '.join(graph.inputs)})")
        try:
            arr = np.asarray(arrays[name], np.float32)
        except (TypeError, ValueError):
            raise UserError(f"{where}: {name!r} is not an array of numbers") from None
        shape = graph.tensors[name].shape
        size = max(1, int(np.prod(shape)))
        if arr.size == 0 or arr.size % size:
            raise UserError(f"{where}: {name!r} has {arr.size} elements (shape "
                            f"{list(arr.shape)}); the input's shape is {list(shape)}")  # fmt: skip
        rows = arr.reshape((-1, *shape))
        batched |= len(rows) > 1 or (arr.ndim == len(shape) + 1 and arr.shape[1:] == shape)
        if samples and len(rows) != len(samples):
            raise UserError(f"{where}: {name!r} has {len(rows)} samples, "
                            f"{graph.inputs[0]!r} {len(samples)}")  # fmt: skip
        samples = samples or [{} for _ in rows]
        for sample, x in zip(samples, rows, strict=True):
            sample[name] = x
    return samples, batched


def load_npz(path: str, graph: Graph) -> list[Sample]:
    """Inputs from an .npz: arrays named as the graph inputs; a leading sample axis allowed."""
    return _read_npz(path, graph)[0]


def _read_npz(path: str, graph: Graph) -> tuple[list[Sample], bool]:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read inputs {path}: {exc}") from None
    return split_samples(data, graph, path)


def random_inputs(graph: Graph, seed: int) -> Sample:
    """One sample of standard-normal float32 inputs, seeded."""
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(graph.tensors[n].shape).astype(np.float32) for n in graph.inputs}


def samples_of(graph: Graph, opts: SimOptions) -> tuple[list[Sample], bool]:
    """(samples, batched): the inputs to simulate — the .npz or the arrays given (a dict of
    arrays, or a list of such dicts: a batch), else one seeded random sample."""
    inputs = opts.inputs
    if inputs is None:
        return [random_inputs(graph, opts.seed)], False
    if isinstance(inputs, str):
        return _read_npz(inputs, graph)
    if isinstance(inputs, Mapping):
        return split_samples(inputs, graph, "inputs")
    if not inputs:
        raise UserError("inputs: the list of samples is empty")
    samples = []
    for i, arrays in enumerate(inputs):
        one, batched = split_samples(arrays, graph, f"inputs[{i}]")
        if batched:
            raise UserError(f"inputs[{i}]: a list holds one sample per entry; this one holds "
                            f"{len(one)} (or has a sample axis)")  # fmt: skip
        samples += one
    return samples, True


def calibration_inputs(graph: Graph, opts: SimOptions, samples: list[Sample]) -> list[Sample]:
    """The .npz given, else `calibration_samples` seeded random inputs (seeds after the
    measured input's), else the measured inputs themselves."""
    if opts.calibration:
        return load_npz(opts.calibration, graph)
    if opts.calibration_samples:
        return [random_inputs(graph, opts.seed + 1 + i) for i in range(opts.calibration_samples)]
    return samples
