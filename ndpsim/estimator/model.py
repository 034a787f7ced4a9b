"""The estimator: the analytic model of plan.py, corrected per kernel by gradient-boosted
regressors of the residual, saved as plain arrays.

Per kernel (a report row: lower/kernels.py), with r_lat and r_e the regressors of its type:

    span      = (analytic span + 1) * exp(r_lat(x)) - 1
    dynamic   = analytic dynamic energy * exp(r_e(x))

and per model, since a kernel that takes longer delays everything after it:

    cycles = analytic makespan + sum over kernels (span - analytic span)
    energy = sum of dynamic energies + clock and static energy over `cycles` (report/energy.py)

A kernel type the training data never showed, or whose residual was zero everywhere, keeps
the analytic cost: every kernel the lowering emits gets a prediction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ndpsim import __version__
from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.estimator.features import NAMES, features
from ndpsim.estimator.hardware import outside
from ndpsim.estimator.plan import Evaluation
from ndpsim.estimator.trees import Forest
from ndpsim.lower.kernels import KERNEL_TYPES
from ndpsim.report.energy import clock_pj, dynamic_pj, static_pj

FORMAT = "ndpsim-estimator/2"
TARGETS = ("latency", "energy")


@dataclass
class Prediction:
    """The estimator's answer for one (model, hardware)."""

    hw: HardwareConfig
    latency_cycles: float
    latency_us: float
    energy_uj: float
    analytic_cycles: int  # the analytic model alone
    analytic_energy_uj: float
    weights_resident: bool
    spilled_values: int
    warnings: list[str] = field(default_factory=list)

    @property
    def hardware(self) -> str:
        return self.hw.name

    @property
    def config_id(self) -> str:
        return self.hw.config_id()

    def as_dict(self) -> dict:
        out = {"hardware": self.hardware, "config_id": self.config_id, **self.__dict__}
        del out["hw"]
        return out


@dataclass
class Estimator:
    forests: dict[str, Forest] = field(default_factory=dict)  # "<kernel type>.<target>"
    info: dict = field(default_factory=dict)

    def residuals(self, kind: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log latency residual, log energy residual) of kernels of types `kind`."""
        r = {t: np.zeros(len(kind)) for t in TARGETS}
        if not self.forests:
            return r["latency"], r["energy"]
        for code in np.unique(kind):
            m = kind == code
            for t in TARGETS:
                forest = self.forests.get(f"{KERNEL_TYPES[int(code)]}.{t}")
                if forest is not None:
                    r[t][m] = forest.predict(X[m])
        return r["latency"], r["energy"]

    def correct(self, ev: Evaluation, hw: HardwareConfig, layer, kind, geom,
                layer_dyn=None) -> tuple[float, float]:  # fmt: skip
        """(cycles, energy pJ) of a model from its analytic evaluation and kernels
        (`layer_dyn`: its dynamic energy per layer, when the caller has it)."""
        if layer_dyn is None:
            layer_dyn = _layer_dynamic(ev, hw)
        if not self.forests:  # the analytic model as it is (the residuals are zero)
            cycles = max(float(ev.cycles), 1.0)
            dynamic = float(layer_dyn.sum())
            return cycles, dynamic + float(clock_pj(cycles, hw) + static_pj(cycles, hw))
        r_lat, r_e = self.residuals(kind, features(layer, geom, ev, hw))
        span = ev.spans[layer].astype(np.float64)
        cycles = ev.cycles + float(np.sum((span + 1) * np.expm1(r_lat)))
        dynamic = float(layer_dyn.sum() + np.sum(layer_dyn[layer] * np.expm1(r_e)))
        cycles = max(cycles, 1.0)
        return cycles, dynamic + float(clock_pj(cycles, hw) + static_pj(cycles, hw))

    def predict(self, predictor, hws: list[HardwareConfig]) -> list[Prediction]:
        """Predictions for one model (a `Predictor`) on each configuration of `hws`."""
        out = []
        ranges = self.info.get("training_ranges", {})
        for hw in hws:
            planner, (layer, kind, geom) = predictor.planner(hw)
            ev = planner.evaluate(hw)
            layer_dyn = _layer_dynamic(ev, hw)
            cycles, pj = self.correct(ev, hw, layer, kind, geom, layer_dyn)
            an_pj = float(layer_dyn.sum() + clock_pj(ev.cycles, hw) + static_pj(ev.cycles, hw))
            out.append(Prediction(hw, cycles, cycles / hw.clock_mhz, pj / 1e6, ev.cycles,
                                  an_pj / 1e6, ev.resident, ev.spilled,
                                  outside(hw, ranges) if ranges else []))  # fmt: skip
        return out

    # -- persistence: plain arrays + JSON, no pickle ----------------------------------
    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        for key, forest in self.forests.items():
            arrays.update(forest.arrays(key))
        meta = {"format": FORMAT, "ndpsim_version": __version__, "features": list(NAMES),
                "info": self.info, "forests": sorted(self.forests)}  # fmt: skip
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> Estimator:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"estimator file not found: {path} (train one: ndpsim estimator "
                            "train DATA)")  # fmt: skip
        try:
            data = np.load(path, allow_pickle=False)
            meta = json.loads(bytes(data["__meta__"]).decode())
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"{path} is not an ndpsim estimator file: {exc}") from None
        if meta.get("format") != FORMAT:
            raise UserError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r} "
                            "(retrain it: ndpsim estimator train DATA)")  # fmt: skip
        if meta.get("features") != list(NAMES):
            raise UserError(f"{path} was trained on other features; retrain it")
        forests = {k: Forest.from_arrays(data, k) for k in meta["forests"]}
        return cls(forests, meta["info"])


def _layer_dynamic(ev: Evaluation, hw: HardwareConfig) -> np.ndarray:
    """Dynamic energy per layer (pJ; report/energy.py's components)."""
    return sum(dynamic_pj(ev.counters, hw).values())
