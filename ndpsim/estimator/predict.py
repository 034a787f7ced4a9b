"""One model, any hardware: the import is the simulator's (a `Session`: import and graph
passes, once), the structure is one skeleton lowering per precision (structure.py), and each
configuration costs a plan and a replay (plan.py), no lowering and no instruction. With a
program cache (program_cache.py) the skeleton lowering is kept on disk like the simulator's
programs: a repeat prediction of a model file imports no onnx."""

from __future__ import annotations

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
    `cache`: where a model file's skeleton lowering is kept, as for a Session)."""

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

    def planner(self, hw: HardwareConfig) -> tuple[Planner, tuple]:
        """The planner and kernel table of `hw`'s bits and precision rules (cached)."""
        key = bits_key(hw)
        found = self._planners.get(key)
        if found is None:
            skeleton = self.session.program(skeleton_hardware(hw), self.precision,
                                            self.branches or None)  # fmt: skip
            st = build_structure(skeleton.graph, hw, skeleton)
            found = self._planners[key] = (Planner(st), kernel_table(st.kernels))
        return found

    def evaluate(self, hw: HardwareConfig) -> Evaluation:
        return self.planner(hw)[0].evaluate(hw)

    def kernels(self, hw: HardwareConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(layer index, kernel type index, geometry) of every kernel at `hw`'s bits."""
        return self.planner(hw)[1]
