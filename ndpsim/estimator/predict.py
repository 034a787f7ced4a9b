"""One model, any hardware: the import is the simulator's (a `Session`: import and graph
passes, once), the structure is one skeleton lowering per precision (structure.py), and each
configuration costs a plan and a replay (plan.py), no lowering and no instruction. With a
program cache (program_cache.py) a model file's planner (its arrays, without the graph and
its weights) is kept on disk like the simulator's programs: a repeat prediction of the file
imports no onnx and lowers nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.estimator.features import kernel_table
from ndpsim.estimator.plan import Evaluation, Planner
from ndpsim.estimator.structure import bits_key, build_structure, skeleton_hardware
from ndpsim.program_cache import ProgramCache
from ndpsim.session import Session


class Predictor:
    """The analytic model of one model (an ONNX path, bytes, a ModelProto or a Session;
    `cache`: where a model file's planners are kept, as a Session keeps its programs)."""

    def __init__(
        self,
        model: Any,
        *,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_values: Mapping[str, Sequence[float]] | None = None,
        precision: Sequence[str] = (),
        branches: Mapping[str, bool] | None = None,
        cache: ProgramCache | None = None,
    ):
        self.session = model if isinstance(model, Session) else Session(
            model, input_shapes=input_shapes, input_values=input_values, cache=cache)  # fmt: skip
        self.precision = tuple(precision)
        self.branches = dict(branches or {})  # If on run-time data -> True for then (Session)
        self._planners: dict[tuple, tuple[Planner, tuple]] = {}
        # a file's bytes key its planners on disk (the Session hashes them)
        self._cache = cache if isinstance(model, (str, os.PathLike)) else None
        self._import = (input_shapes, input_values)

    def planner(self, hw: HardwareConfig) -> tuple[Planner, tuple]:
        """The planner and kernel table of `hw`'s bits and precision rules (cached in
        memory, and on disk with a cache)."""
        key = bits_key(hw)
        found = self._planners.get(key)
        if found is None:
            cache, disk_key = self._cache, ""
            if cache is not None:
                disk_key = cache.key("estimator-planner", self.session.sha256, self._import, key,
                                     self.precision, sorted(self.branches.items()))  # fmt: skip
                found = cache.get(disk_key)
            if found is None:
                skeleton = self.session.program(skeleton_hardware(hw), self.precision,
                                                self.branches or None)  # fmt: skip
                st = build_structure(skeleton.graph, hw, skeleton)
                found = (Planner(st), kernel_table(st.kernels))
                if cache is not None:
                    cache.put(disk_key, found)
            self._planners[key] = found
        return found

    def evaluate(self, hw: HardwareConfig) -> Evaluation:
        return self.planner(hw)[0].evaluate(hw)

    def kernels(self, hw: HardwareConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(layer index, kernel type index, geometry) of every kernel at `hw`'s bits."""
        return self.planner(hw)[1]
