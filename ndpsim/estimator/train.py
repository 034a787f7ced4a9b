"""Training: the residual regressors of every kernel type, fitted on the dataset's training
networks simulated on its training hardware (`ndpsim estimator train`).

For every training point (network x configuration) the analytic model is evaluated, and each
kernel's simulated span and dynamic energy (the sweep's layer rows) are compared with it:
the targets are log((simulated + 1) / (analytic + 1)) for the span and
log((simulated + e) / (analytic + e)) for dynamic energy (e = 1 fJ). A kernel type whose
residual is zero everywhere gets no regressor (the analytic cost stands)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ndpsim import __version__
from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.estimator.dataset import read_manifest
from ndpsim.estimator.features import features
from ndpsim.estimator.hardware import training_ranges
from ndpsim.estimator.model import Estimator
from ndpsim.estimator.predict import Predictor
from ndpsim.estimator.trees import export_hgb
from ndpsim.lower.kernels import KERNEL_TYPES
from ndpsim.report.energy import COMPONENTS, dynamic_pj
from ndpsim.sweep.progress import Progress

# Gradient boosting for the residual: few leaves, early stopping on a 10% split.
HGB_PARAMS = {
    "max_iter": 150,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 8,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
    "random_state": 0,
}
ZERO_RESIDUAL = 1e-9  # a target this close to zero everywhere needs no regressor
ENERGY_FLOOR_PJ = 1e-3
DYNAMIC = tuple(c for c in COMPONENTS if c not in ("clock", "leakage"))


class SimTable:
    """The dataset's simulations: model-level figures by (model sha256, config id), and each
    network's per-layer spans and dynamic energy, read from its partition when asked for (one
    network at a time: a table of every layer would hold millions of rows)."""

    def __init__(self, data: Path):
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        self.sim = data / "sim"
        if not (self.sim / "points").is_dir():
            raise UserError(f"{data}: no simulations yet (run `ndpsim dataset {data}`)")
        pts = ds.dataset(str(self.sim / "points"), format="parquet", partitioning="hive")
        pts = pts.to_table(columns=["model_sha256", "config_id", "status", "latency_cycles",
                                    "energy_uj"])  # fmt: skip
        pts = pts.filter(pc.equal(pts["status"], "ok"))
        self.points = {(s, c): (float(lat), float(en)) for s, c, lat, en in zip(
            *(pts[k].to_pylist() for k in ("model_sha256", "config_id", "latency_cycles",
                                            "energy_uj")), strict=True)}  # fmt: skip
        self._model = ""
        self._groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _load(self, model: str) -> None:
        import pyarrow.dataset as ds

        self._model, self._groups = model, {}
        folder = self.sim / "layers" / f"model={model}"
        if not folder.is_dir():
            return
        cols = ["config_id", "layer_index", "cycles", *(f"energy_{c}_uj" for c in DYNAMIC)]
        t = ds.dataset(str(folder), format="parquet").to_table(columns=cols)
        cid = np.asarray(t["config_id"].to_pylist())
        li = t["layer_index"].to_numpy()
        cycles = t["cycles"].to_numpy().astype(np.float64)
        dyn = sum(t[f"energy_{c}_uj"].to_numpy() for c in DYNAMIC) * 1e6
        for c in np.unique(cid):
            m = cid == c
            self._groups[str(c)] = (li[m], cycles[m], dyn[m])

    def layers(self, model: str, cid: str, n_layers: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(span, dynamic pJ) per layer of network `model` (its name) on configuration `cid`,
        or None when the point has no layer rows."""
        if model != self._model:
            self._load(model)
        g = self._groups.get(cid)
        if g is None:
            return None
        span, dyn = np.zeros(n_layers), np.zeros(n_layers)
        span[g[0]], dyn[g[0]] = g[1], g[2]
        return span, dyn


@dataclass
class Rows:
    """Kernel rows of training points: features, type, targets, family."""

    X: np.ndarray
    kind: np.ndarray
    y_lat: np.ndarray
    y_e: np.ndarray
    family: np.ndarray


def points(networks: list[dict], hws: dict[str, list[HardwareConfig]], role: str,
           splits: tuple[str, ...]) -> list[tuple[dict, list[HardwareConfig]]]:  # fmt: skip
    """(network, configurations) pairs: networks of `splits` on the `role` hardware."""
    return [(n, hws[role]) for n in networks if n["split"] in splits]


def walk(work, table: SimTable, quiet: bool) -> Iterator[tuple]:
    """(network, hw, predictor, evaluation) of every simulated point of `work`, with the
    sweep's progress line."""
    progress = Progress(sum(len(h) for _, h in work), quiet)
    try:
        for net, hws in work:
            predictor = Predictor(net["path"])
            for hw in hws:
                progress.update()
                if (net["sha256"], hw.config_id()) not in table.points:
                    continue
                yield net, hw, predictor, predictor.evaluate(hw)
    finally:
        progress.close()


def training_rows(data: Path, table: SimTable, quiet: bool = False) -> tuple[Rows, list]:
    """Kernel rows of the training networks on the training hardware."""
    networks, hws = read_manifest(data)
    parts = []
    for net, hw, pred, ev in walk(points(networks, hws, "train", ("train",)), table, quiet):
        sim = table.layers(net["name"], hw.config_id(), len(ev.first))
        if sim is None:
            continue
        layer, kind, geom = pred.kernels(hw)
        dyn = dynamic_pj(ev.counters, hw)
        an_dyn = sum(dyn[c] for c in DYNAMIC)
        parts.append((features(layer, geom, ev, hw), kind,
                      np.log((sim[0][layer] + 1) / (ev.spans[layer] + 1.0)),
                      np.log((sim[1][layer] + ENERGY_FLOOR_PJ) / (an_dyn[layer] + ENERGY_FLOOR_PJ)),
                      np.full(len(layer), net["family"])))  # fmt: skip
    if not parts:
        raise UserError(f"{data}: no simulated training point (run `ndpsim dataset {data}`)")
    rows = Rows(*(np.concatenate([p[j] for p in parts]) for j in range(5)))
    return rows, hws["train"]


def fit(rows: Rows, keep: np.ndarray | None = None, log: Callable = print) -> Estimator:
    """Regressors of the residual per kernel type (rows selected by `keep`)."""
    keep = np.ones(len(rows.kind), bool) if keep is None else keep
    est = Estimator()
    summary = {}
    for code in np.unique(rows.kind[keep]):
        kind = KERNEL_TYPES[int(code)]
        m = keep & (rows.kind == code)
        summary[kind] = {"rows": int(m.sum())}
        for target, y in (("latency", rows.y_lat[m]), ("energy", rows.y_e[m])):
            worst = float(np.max(np.abs(y)))
            summary[kind][f"{target}_max_abs_log_residual"] = worst
            if worst > ZERO_RESIDUAL and m.sum() >= 2 * HGB_PARAMS["min_samples_leaf"]:
                est.forests[f"{kind}.{target}"] = _fit_one(rows.X[m], y)
        log(f"  {kind:8s} {int(m.sum()):8d} kernels, max |log residual| latency "
            f"{summary[kind]['latency_max_abs_log_residual']:.2e} energy "
            f"{summary[kind]['energy_max_abs_log_residual']:.2e}")  # fmt: skip
    est.info["residuals"] = summary
    return est


def _fit_one(X: np.ndarray, y: np.ndarray):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one OpenMP thread: the machine is shared, the fit small
        return export_hgb(HistGradientBoostingRegressor(**HGB_PARAMS).fit(X, y))


def train(data: Path, quiet: bool = False, log: Callable = print) -> Estimator:
    """The estimator of a dataset (its training networks on its training hardware)."""
    data = Path(data)
    table = SimTable(data)
    rows, train_hws = training_rows(data, table, quiet)
    est = fit(rows, log=log)
    est.info.update(
        dataset=data.name,
        ndpsim_version=__version__,
        training_ranges=training_ranges(train_hws),
        training_configs=[h.config_id() for h in train_hws],
        families=sorted(set(rows.family.tolist())),
        rows=int(len(rows.kind)),
        digest=hashlib.sha256(
            json.dumps(sorted(h.config_id() for h in train_hws)).encode()
        ).hexdigest()[:12],
    )
    return est
