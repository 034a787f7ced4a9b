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
    """The dataset's simulations: model-level rows and per-layer spans and dynamic energy,
    by (model sha256, config id)."""

    def __init__(self, data: Path):
        import pyarrow.dataset as ds

        sim = data / "sim"
        if not (sim / "points").is_dir():
            raise UserError(f"{data}: no simulations yet (run `ndpsim dataset {data}`)")
        pts = ds.dataset(str(sim / "points"), format="parquet", partitioning="hive").to_table(
            columns=["model_sha256", "config_id", "status", "latency_cycles", "energy_uj"])
        ok = np.asarray(pts["status"].to_pylist()) == "ok"
        keys = list(zip(pts["model_sha256"].to_pylist(), pts["config_id"].to_pylist(),
                        strict=True))  # fmt: skip
        lat, en = pts["latency_cycles"].to_numpy(zero_copy_only=False), pts["energy_uj"].to_numpy(
            zero_copy_only=False)
        self.points = {k: (float(lat[i]), float(en[i])) for i, k in enumerate(keys) if ok[i]}
        cols = ["model_sha256", "config_id", "layer_index", "cycles",
                *(f"energy_{c}_uj" for c in DYNAMIC)]  # fmt: skip
        lay = ds.dataset(str(sim / "layers"), format="parquet", partitioning="hive").to_table(
            columns=cols)
        sha = np.asarray(lay["model_sha256"].to_pylist())
        cid = np.asarray(lay["config_id"].to_pylist())
        li = lay["layer_index"].to_numpy()
        order = np.lexsort((li, cid, sha))
        key = np.char.add(np.char.add(sha[order], "|"), cid[order])
        self._li = li[order]
        self._cycles = lay["cycles"].to_numpy()[order].astype(np.float64)
        self._dyn = sum(lay[f"energy_{c}_uj"].to_numpy()[order] for c in DYNAMIC) * 1e6
        bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1], True])
        self._groups = {str(key[bounds[j]]): (bounds[j], bounds[j + 1])
                        for j in range(len(bounds) - 1)}  # fmt: skip

    def layers(self, sha: str, cid: str, n_layers: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(span, dynamic pJ) per layer of a point, or None when it has no layer rows."""
        g = self._groups.get(f"{sha}|{cid}")
        if g is None:
            return None
        span, dyn = np.zeros(n_layers), np.zeros(n_layers)
        a, b = g
        span[self._li[a:b]] = self._cycles[a:b]
        dyn[self._li[a:b]] = self._dyn[a:b]
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
        sim = table.layers(net["sha256"], hw.config_id(), len(ev.first))
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
        digest=hashlib.sha256(json.dumps(sorted(h.config_id() for h in train_hws)).encode())
        .hexdigest()[:12],
    )
    return est
