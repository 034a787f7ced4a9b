"""The estimator: one gradient-boosted regressor per kernel type and target, a model-level
sum with a learned correction, saved as plain arrays.

Per kernel: cycles = est_cycles * exp(f_latency(x)) and dynamic energy = est_pj *
exp(f_energy(x)), where est_* are the analytic features (features.py) and f_* the fitted
trees. Per model: the kernel cycles are summed (kernels of a chain of layers run back to
back), corrected by log(cycles) = a + b log(sum) fitted on the training models (identity
when the sum is unbiased), and energy is the summed dynamic energy plus static power times
the predicted latency (report/energy.py's equation).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ndpsim import __version__
from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.estimator.features import (
    GEOM_FIELDS,
    act_code,
    cycle_estimate,
    feature_matrix,
    hw_columns,
    mac_tiles,
)
from ndpsim.estimator.trees import Forest, export_hgb
from ndpsim.lower.kernels import KERNEL_TYPES, MAC_TYPES
from ndpsim.report.energy import static_pj

FORMAT = "ndpsim-estimator/1"
TARGETS = ("latency", "energy")
# Gradient boosting settings: enough trees for the residual of the analytic estimate, few
# enough to score thousands of architectures per second.
HGB_PARAMS = {
    "max_iter": 150,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 4,
    "l2_regularization": 0.0,
    # stop adding trees once a 10% validation split stops improving: kernel types whose
    # analytic estimate is already exact get few trees (and cost little to predict)
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
    "random_state": 0,
}
# Trees per regressor at most: the energy estimate is closer to the simulator than the cycle
# estimate (energy is counted, not scheduled), so it needs fewer.
MAX_TREES = {"latency": 150, "energy": 60}
KERNEL_COLUMNS = ("kernel_type", "act", "layer_index", *GEOM_FIELDS)


def kernel_table(
    rows: list[tuple] | dict, group: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Columns of kernel rows (tuples in `Kernel` field order, or columns already). Types and
    activations are also kept as integer codes (`type_code` indexes KERNEL_TYPES)."""
    from ndpsim.lower.kernels import Kernel

    if isinstance(rows, dict):
        t = {k: np.asarray(v) for k, v in rows.items()}
    else:
        names = list(Kernel.__dataclass_fields__)
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        t = {n: np.asarray(c) for n, c in zip(names, cols, strict=True) if n in KERNEL_COLUMNS}
    if "type_code" not in t:
        kinds, inv = np.unique(t["kernel_type"], return_inverse=True)
        unknown = [str(k) for k in kinds if k not in KERNEL_TYPES]
        if unknown:
            raise UserError(f"unknown kernel types {unknown}")
        t["type_code"] = np.array([KERNEL_TYPES.index(k) for k in kinds], np.int64)[inv.ravel()]
    if "act_code" not in t:
        t["act_code"] = act_code(t["act"])
    n = len(t["type_code"])
    t["group"] = np.zeros(n, np.int64) if group is None else np.asarray(group, np.int64)
    return t


def _take(v: np.ndarray, idx) -> np.ndarray:
    """Rows `idx` of a column; a 0-d column (one value for every row) stays as it is."""
    return v if np.ndim(v) == 0 else v[idx]


def macro_cursor(t: dict[str, np.ndarray], h: dict[str, np.ndarray]) -> np.ndarray:
    """The macro each kernel's first weight tile lands on: lower/memory.py places tiles
    round-robin with a cursor carried across MAC layers (while everything is resident), so
    it is the tiles of the earlier MAC layers of the program modulo the macros. Rows of one
    group (program) must be contiguous and in program order."""
    n = len(t["type_code"])
    is_mac = t["type_code"] < len(MAC_TYPES)
    tiles = np.zeros(n, np.int64)
    if is_mac.any():
        idx = np.flatnonzero(is_mac)
        sub = {k: t[k][idx] for k in ("groups", "c_in", "c_out", "kh", "kw")}
        tiles[idx] = mac_tiles(sub, {k: _take(v, idx) for k, v in h.items()})
    cs = np.cumsum(tiles) - tiles
    g = t["group"]
    start = np.ones(n, bool)
    start[1:] = g[1:] != g[:-1]
    base = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    macros = (h["cores"] * h["macros_per_core"]).astype(np.int64)
    return (cs - cs[base]) % macros


# What cycle_estimate reads (the schedule's inputs, or the vector estimate).
_SCHEDULE_INPUTS = (
    "pixels",
    "pixel_block",
    "folds_k",
    "folds_c",
    "mvm_full",
    "mvm_last",
    "rq_full",
    "rq_last",
    "est_cycles",
)
# The columns that identify a kernel (with the hardware): equal keys, equal predictions.
_KEY = ("act_code", *GEOM_FIELDS)


def distinct_rows(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(index of one row per distinct key, inverse map): a search's candidates share most
    kernels. A 64-bit hash, checked exactly; on a collision every row stays distinct."""
    n = len(cols[0])
    key = np.zeros(n, np.uint64)
    for c in cols:
        v = np.ascontiguousarray(c, dtype=np.float64).view(np.uint64)
        key = (key ^ v) * np.uint64(0x9E3779B97F4A7C15)
        key ^= key >> np.uint64(29)
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    inv = inv.ravel()
    if all(np.array_equal(np.asarray(c)[first][inv], c) for c in cols):
        return first, inv
    return np.arange(n), np.arange(n)


@dataclass
class Estimator:
    forests: dict[str, Forest] = field(default_factory=dict)
    features: dict[str, list[str]] = field(default_factory=dict)
    correction: dict[str, list[float]] = field(default_factory=lambda: {"latency": [0.0, 1.0]})
    info: dict = field(default_factory=dict)

    def used_features(self, kind: str) -> set[str]:
        """Names of the features the trees of `kind` split on."""
        used: set[int] = set()
        for target in TARGETS:
            f = self.forests[f"{kind}.{target}"]
            used |= set(np.unique(f.feature[f.is_leaf == 0]).tolist())
        return {self.features[kind][j] for j in used}

    # -- prediction -------------------------------------------------------------------
    def predict_kernels(
        self, t: dict[str, np.ndarray], h: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(cycles, dynamic pJ) of every kernel row; one batched call per kernel type."""
        cursor = macro_cursor(t, h)
        hcols = [v for v in h.values() if np.ndim(v)]
        # distinct kernels (with their hardware) are featurized and predicted once
        first, inv = distinct_rows([t["type_code"]] + [t[c] for c in _KEY] + hcols)
        u = {c: t[c][first] for c in ("type_code", *_KEY)}
        hu = {c: _take(v, first) for c, v in h.items()}
        nu = len(first)
        lat, pj_u = np.zeros(nu), np.zeros(nu)
        sched = {c: np.zeros(nu) for c in _SCHEDULE_INPUTS}
        for code in np.unique(u["type_code"]):
            kind = KERNEL_TYPES[int(code)]
            if f"{kind}.latency" not in self.forests:
                raise UserError(f"the estimator has no regressor for kernel type {kind!r}")
            m = np.flatnonzero(u["type_code"] == code)
            X, names, derived = feature_matrix(
                kind,
                {c: v[m] for c, v in u.items()},
                {c: _take(v, m) for c, v in hu.items()},
                self.used_features(kind),
            )
            if names != self.features[kind]:
                raise UserError("estimator file was trained on other features; retrain it")
            lat[m] = self.forests[f"{kind}.latency"].predict(X)
            pj_u[m] = derived["est_pj"] * np.exp(self.forests[f"{kind}.energy"].predict(X))
            for c in _SCHEDULE_INPUTS:
                if c in derived:
                    sched[c][m] = derived[c]
        # the placement-dependent estimate, once per distinct (kernel, cursor)
        width = int(np.max(cursor, initial=0)) + 1
        pair = inv.astype(np.int64) * width + cursor
        seen = np.zeros(nu * width, bool)
        seen[pair] = True
        ids = np.flatnonzero(seen)  # distinct pairs, without a sort
        pinv = (np.cumsum(seen) - 1)[pair]
        rows = ids // width
        pcursor = ids % width
        est = np.asarray(sched["est_cycles"][rows], np.float64)
        mac = u["type_code"][rows] < len(MAC_TYPES)
        if mac.any():
            r = rows[mac]
            est[mac] = cycle_estimate(
                "conv",
                {c: sched[c][r] for c in _SCHEDULE_INPUTS},
                {c: _take(v, r) for c, v in hu.items()},
                pcursor[mac],
            )
        return est[pinv] * np.exp(lat[inv]), pj_u[inv]

    def predict_models(self, t, h, hw: HardwareConfig) -> tuple[np.ndarray, np.ndarray]:
        """(cycles, energy pJ) per group of the kernel table."""
        cycles, pj = self.predict_kernels(t, h)
        groups, inv = np.unique(t["group"], return_inverse=True)
        s_cycles = np.bincount(inv, weights=cycles, minlength=len(groups))
        s_pj = np.bincount(inv, weights=pj, minlength=len(groups))
        a, b = self.correction["latency"]
        model_cycles = np.exp(a + b * np.log(np.maximum(s_cycles, 1.0)))
        return model_cycles, s_pj + static_pj(model_cycles, hw)

    def predict_genomes(self, genomes, hw: HardwareConfig) -> tuple[np.ndarray, np.ndarray]:
        from ndpsim.estimator.fast import genome_table

        t = genome_table(genomes, hw.activation_bits, hw.weight_bits)
        return self.predict_models(t, hw_columns(hw), hw)

    def predict_onnx(self, path, hw: HardwareConfig) -> tuple[np.ndarray, np.ndarray]:
        from ndpsim.frontend import load_model
        from ndpsim.lower import lower

        program = lower(load_model(Path(path)), hw)
        t = kernel_table([tuple(k.as_row().values()) for k in program.kernels])
        return self.predict_models(t, hw_columns(hw), hw)

    # -- persistence: plain arrays + JSON, no pickle ----------------------------------
    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        for key, forest in self.forests.items():
            arrays.update(forest.arrays(key))
        meta = {
            "format": FORMAT,
            "ndpsim_version": __version__,
            "features": self.features,
            "correction": self.correction,
            "info": self.info,
            "forests": sorted(self.forests),
        }
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> Estimator:
        if not Path(path).is_file():
            raise UserError(f"estimator file not found: {path} (train one: ndpsim estimator train)")
        try:
            data = np.load(path, allow_pickle=False)
            meta = json.loads(bytes(data["__meta__"]).decode())
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"{path} is not an ndpsim estimator file: {exc}") from None
        if meta.get("format") != FORMAT:
            raise UserError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        forests = {k: Forest.from_arrays(data, k) for k in meta["forests"]}
        return cls(forests, meta["features"], meta["correction"], meta["info"])


# -- training ---------------------------------------------------------------------------
def _hw_of(ids: np.ndarray, configs: dict[str, HardwareConfig]) -> dict[str, np.ndarray]:
    """HardwareConfig columns for rows tagged with hw_config_id."""
    n = len(ids)
    out: dict[str, np.ndarray] = {}
    for cid, hw in configs.items():
        m = ids == cid
        if not m.any():
            continue
        cols = hw_columns(hw, int(m.sum()))
        for k, v in cols.items():
            out.setdefault(k, np.zeros(n))[m] = v
    return out


def fit_kernels(t, h, cycles, dyn_pj, log=print) -> Estimator:
    """Fit both targets of every kernel type present."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    # one OpenMP thread: on a shared machine spinning OpenMP workers slow fitting down by
    # orders of magnitude, and the fit is small
    with threadpool_limits(1):
        return _fit_kernels(HistGradientBoostingRegressor, t, h, cycles, dyn_pj, log)


def _fit_kernels(HistGradientBoostingRegressor, t, h, cycles, dyn_pj, log) -> Estimator:
    est = Estimator()
    cursor = macro_cursor(t, h)
    for code, kind in enumerate(KERNEL_TYPES):
        m = t["type_code"] == code
        if not m.any():
            continue
        hk = {k: _take(v, m) for k, v in h.items()}
        X, names, derived = feature_matrix(kind, {k: v[m] for k, v in t.items()}, hk)
        est.features[kind] = names
        est_c = cycle_estimate(kind, derived, hk, cursor[m])
        targets = {
            "latency": np.log(np.maximum(cycles[m], 1) / est_c),
            "energy": np.log(np.maximum(dyn_pj[m], 1e-3) / derived["est_pj"]),
        }
        for target, y in targets.items():
            params = {**HGB_PARAMS, "max_iter": MAX_TREES[target]}
            model = HistGradientBoostingRegressor(**params).fit(X, y)
            est.forests[f"{kind}.{target}"] = export_hgb(model)
        log(f"  {kind:8s} {int(m.sum()):7d} rows")
    return est


def load_training(data: Path, exclude_family: str | None = None, kernel_split=None):
    """Training rows: sampled kernels (all, or those `kernel_split` selects) plus the
    kernels of the training architectures (minus `exclude_family`)."""
    from ndpsim.estimator.dataset import read_table

    configs = hw_configs(data)
    parts = []
    k = read_table(data / "kernels") if (data / "kernels").exists() else None
    if k is not None:
        keep = np.ones(len(k["kernel_type"]), bool) if kernel_split is None else kernel_split(k)
        parts.append(_select(k, keep, group=k["sample_id"] * 1000 + _hw_index(k, configs)))
    mk = read_table(data / "model_kernels")
    keep = mk["split"] == "train"
    if exclude_family:
        keep &= mk["family"] != exclude_family
    parts.append(_select(mk, keep, group=(mk["model_id"] + 10**8) * 1000 + _hw_index(mk, configs)))
    cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    return cols, configs


def _hw_index(t, configs) -> np.ndarray:
    ids = list(configs)
    return np.array([ids.index(c) for c in t["hw_config_id"]], np.int64)


def _select(t, keep, group) -> dict[str, np.ndarray]:
    names = (*KERNEL_COLUMNS, "position", "cycles", "dynamic_energy_pj", "hw_config_id")
    cols = {c: np.asarray(t[c])[keep] for c in names}
    cols["group"] = np.asarray(group)[keep]
    return cols


def hw_configs(data: Path) -> dict[str, HardwareConfig]:
    from ndpsim.estimator.dataset import read_table

    t = read_table(data / "hw_configs")
    return {
        cid: HardwareConfig.model_validate_json(js)
        for cid, js in zip(t["hw_config_id"], t["config_json"], strict=True)
    }


def fit_correction(est: Estimator, data: Path, exclude_family: str | None = None) -> None:
    """log(true) = a + b log(sum of kernel predictions) on the training architectures."""
    from ndpsim.estimator.dataset import read_table

    configs = hw_configs(data)
    models = read_table(data / "models")
    mk = read_table(data / "model_kernels")
    sel = models["split"] == "train"
    if exclude_family:
        sel &= models["family"] != exclude_family
    ids = set(models["model_id"][sel].tolist())
    keep = np.isin(mk["model_id"], list(ids))
    group = mk["model_id"] * 1000 + _hw_index(mk, configs)
    order = np.lexsort((mk["position"][keep], group[keep]))
    t = kernel_table({c: mk[c][keep][order] for c in KERNEL_COLUMNS}, group[keep][order])
    h = _hw_of(mk["hw_config_id"][keep][order], configs)
    cycles, _ = est.predict_kernels(t, h)
    g, inv = np.unique(t["group"], return_inverse=True)
    s = np.bincount(inv, weights=cycles)
    mg = models["model_id"] * 1000 + _hw_index(models, configs)
    true = dict(zip(mg.tolist(), models["cycles"].tolist(), strict=True))
    y = np.log([true[x] for x in g.tolist()])
    A = np.stack([np.ones(len(s)), np.log(s)], axis=1)
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    est.correction["latency"] = [float(coef[0]), float(coef[1])]
    est.info["sum_bias_pct"] = float(100 * np.mean(np.exp(np.log(s) - y) - 1))


def fit_from_dataset(
    data: Path, exclude_family: str | None = None, kernel_split=None, log=print
) -> Estimator:
    data = Path(data)
    if not (data / "model_kernels").exists():
        raise UserError(f"{data}: no model_kernels table (run ndpsim dataset first)")
    cols, configs = load_training(data, exclude_family, kernel_split)
    t = kernel_table({c: cols[c] for c in KERNEL_COLUMNS}, cols["group"])
    order = np.lexsort((cols["position"], t["group"]))  # each program contiguous, in order
    t = {k: v[order] for k, v in t.items()}
    h = _hw_of(cols["hw_config_id"][order], configs)
    est = fit_kernels(
        t,
        h,
        cols["cycles"][order].astype(float),
        cols["dynamic_energy_pj"][order].astype(float),
        log,
    )
    fit_correction(est, data, exclude_family)
    digest = hashlib.sha256(json.dumps(sorted(configs)).encode()).hexdigest()[:12]
    est.info.update(
        trained_on=str(data.name),
        configs=sorted(configs),
        configs_digest=digest,
        exclude_family=exclude_family,
        rows=int(len(order)),
    )
    return est
