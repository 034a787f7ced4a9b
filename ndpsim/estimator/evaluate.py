"""The evaluation protocol: kernel level (20% of sampled kernels held out), model level
(held-out random architectures), leave-one-family-out, and the baselines beside it
(FLOPs, an operator lookup-table sum, a random forest on nn-Meter's seven features)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ndpsim.estimator.dataset import read_table
from ndpsim.estimator.model import (
    KERNEL_COLUMNS,
    _hw_index,
    _hw_of,
    fit_from_dataset,
    hw_configs,
    kernel_table,
)
from ndpsim.report.energy import static_pj
from ndpsim.zoo.search_space import FAMILIES

MAC = ("conv", "conv1x1", "dwconv", "gconv", "fc")


def metrics(pred, true) -> dict[str, float]:
    from scipy.stats import spearmanr

    pred, true = np.asarray(pred, float), np.asarray(true, float)
    err = np.abs(pred / true - 1)
    rho = float(spearmanr(pred, true).statistic) if len(true) > 2 else float("nan")
    return {
        "n": int(len(true)),
        "within_5": float(np.mean(err <= 0.05)),
        "within_10": float(np.mean(err <= 0.10)),
        "mape": float(np.mean(err)),
        "spearman": rho,
    }


def _held_out(k) -> np.ndarray:
    """20% of sampled kernels by a hash of their sample id (stable across runs)."""
    return np.array([zlib.crc32(str(int(s)).encode()) % 5 == 0 for s in k["sample_id"]])


def _model_tables(data: Path, split: str, family: str | None = None):
    configs = hw_configs(data)
    models = read_table(data / "models")
    mk = read_table(data / "model_kernels")
    sel = models["split"] == split
    if family:
        sel &= models["family"] == family
    gid = models["model_id"] * 1000 + _hw_index(models, configs)
    mgid = mk["model_id"] * 1000 + _hw_index(mk, configs)
    keep = np.isin(mgid, gid[sel])
    order = np.lexsort((mk["position"][keep], mgid[keep]))
    mkc = {c: np.asarray(v)[keep][order] for c, v in mk.items()}
    return (
        {c: np.asarray(v)[sel] for c, v in models.items()},
        gid[sel],
        mkc,
        mgid[keep][order],
        configs,
    )


def model_level(est, data: Path, split: str = "test", family: str | None = None) -> dict:
    """Estimator vs simulator on the architectures of `split` (per hardware config)."""
    models, gid, mk, mgid, configs = _model_tables(data, split, family)
    out = {}
    for cid, hw in configs.items():
        m = models["hw_config_id"] == cid
        if not m.any():
            continue
        km = mk["hw_config_id"] == cid
        t = kernel_table({c: mk[c][km] for c in KERNEL_COLUMNS}, mgid[km])
        cyc, pj = est.predict_models(t, _hw_of(mk["hw_config_id"][km], configs), hw)
        g = np.unique(mgid[km])
        order = np.argsort(gid[m])
        assert np.array_equal(g, gid[m][order])
        true_c, true_e = models["cycles"][m][order], models["energy_pj"][m][order]
        row = {"latency": metrics(cyc, true_c), "energy": metrics(pj, true_e)}
        k = max(1, len(g) // 40)  # top-2.5%: the candidates a search keeps
        top_p, top_t = set(np.argsort(cyc)[:k]), set(np.argsort(true_c)[:k])
        row["top_k"], row["top_k_overlap"] = k, len(top_p & top_t) / k
        out[hw.name] = row
    return out


def kernel_level(est, data: Path) -> dict:
    k = read_table(data / "kernels")
    configs = hw_configs(data)
    held = _held_out(k)
    group = k["sample_id"] * 1000 + _hw_index(k, configs)
    order = np.lexsort((k["position"], group))
    known = [x.split(".")[0] for x in est.forests]
    sel = held[order] & np.isin(k["kernel_type"][order], known)  # types seen in training
    t = kernel_table({c: k[c][order][sel] for c in KERNEL_COLUMNS}, group[order][sel])
    cyc, pj = est.predict_kernels(t, _hw_of(k["hw_config_id"][order][sel], configs))
    true_c, true_e = k["cycles"][order][sel], k["dynamic_energy_pj"][order][sel]
    types = t["kernel_type"]
    main = ~np.isin(types, ("input", "output"))
    out = {
        "all": {
            "latency": metrics(cyc[main], np.maximum(true_c[main], 1)),
            "energy": metrics(pj[main], true_e[main]),
        }
    }
    for kind in np.unique(types[main]):
        m = types == kind
        out[str(kind)] = {"latency": metrics(cyc[m], np.maximum(true_c[m], 1))}
    return out


# -- baselines ----------------------------------------------------------------------------
def _nnmeter7(t) -> np.ndarray:
    """nn-Meter's conv features: input size, Cin, Cout, kernel, stride, FLOPs, params."""
    groups = np.maximum(t["groups"], 1)
    k_g = t["c_in"] // groups * t["kh"] * t["kw"]
    flops = t["h_out"] * t["w_out"] * t["c_out"] * k_g
    params = t["c_out"] * k_g
    return np.stack(
        [t["h_in"], t["c_in"], t["c_out"], t["kh"], t["stride_h"], flops, params], 1
    ).astype(float)


def baselines(data: Path, hw_name: str = "neural-engine") -> dict:
    """FLOPs, operator LUT sum and nn-Meter-style random forest, on the held-out models."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.neighbors import KNeighborsRegressor

    tr_models, _, tr_mk, _, configs = _model_tables(data, "train")
    te_models, te_gid, te_mk, te_mgid, _ = _model_tables(data, "test")
    cid = next(c for c, h in configs.items() if h.name == hw_name)
    out = {}
    mtr, mte = tr_models["hw_config_id"] == cid, te_models["hw_config_id"] == cid
    A = np.stack([np.ones(mtr.sum()), np.log(tr_models["macs"][mtr])], 1)
    a, b = np.linalg.lstsq(A, np.log(tr_models["cycles"][mtr]), rcond=None)[0]
    order = np.argsort(te_gid[mte])
    true = te_models["cycles"][mte][order]
    out["FLOPs (log-linear fit)"] = metrics(
        np.exp(a + b * np.log(te_models["macs"][mte][order])), true
    )
    k = read_table(data / "kernels")
    ktr = {
        c: np.concatenate(
            [
                np.asarray(tr_mk[c])[tr_mk["hw_config_id"] == cid],
                np.asarray(k[c])[k["hw_config_id"] == cid],
            ]
        )
        for c in (*KERNEL_COLUMNS, "cycles")
    }
    kte = {
        c: np.asarray(te_mk[c])[te_mk["hw_config_id"] == cid] for c in (*KERNEL_COLUMNS, "cycles")
    }
    g_te = te_mgid[te_mk["hw_config_id"] == cid]
    lut_pred, rf_pred = np.zeros(len(g_te)), np.zeros(len(g_te))
    for kind in np.unique(kte["kernel_type"]):
        mt, me = ktr["kernel_type"] == kind, kte["kernel_type"] == kind
        Xtr, Xte = (
            _nnmeter7({c: v[mt] for c, v in ktr.items()}),
            _nnmeter7({c: v[me] for c, v in kte.items()}),
        )
        ytr = ktr["cycles"][mt].astype(float)
        # operator LUT: exact geometry if measured, else the nearest measured operator
        keys = {tuple(r): y for r, y in zip(Xtr[:, :5].astype(int).tolist(), ytr, strict=True)}
        nn = KNeighborsRegressor(1).fit(np.log1p(Xtr), ytr)
        near = nn.predict(np.log1p(Xte))
        lut_pred[me] = [
            keys.get(tuple(r), n)
            for r, n in zip(Xte[:, :5].astype(int).tolist(), near, strict=True)
        ]
        rf = RandomForestRegressor(100, random_state=0, n_jobs=1).fit(Xtr, ytr)
        rf_pred[me] = rf.predict(Xte)
    g, inv = np.unique(g_te, return_inverse=True)
    out["operator LUT sum"] = metrics(np.bincount(inv, weights=lut_pred), true)
    out["nn-Meter RF (7 features)"] = metrics(np.bincount(inv, weights=rf_pred), true)
    return out


def evaluate(data: Path, lofo: bool = True, log=print) -> dict:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # see model.fit_kernels
        return _evaluate(Path(data), lofo, log)


def _evaluate(data: Path, lofo: bool, log) -> dict:
    log("training on all training kernels and architectures (kernel-level hold-out: 20%)")
    est_k = fit_from_dataset(data, kernel_split=lambda k: ~_held_out(k), log=lambda *_: None)
    result = {"kernel_level": kernel_level(est_k, data)}
    result["model_level"] = model_level(est_k, data, "test")
    result["correction"] = est_k.correction
    result["sum_bias_pct"] = est_k.info.get("sum_bias_pct")
    result["baselines"] = baselines(data)
    if lofo:
        result["lofo"] = {}
        for fam in FAMILIES:
            log(f"leave-one-family-out: {fam}")
            est = fit_from_dataset(data, exclude_family=fam, log=lambda *_: None)
            result["lofo"][fam] = model_level(est, data, "train", fam)
    return result


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def render(r: dict) -> str:
    lines = [
        "kernel level (20% of sampled kernels held out, all configs)",
        f"  {'kernel':10s} {'n':>6s} {'±5%':>7s} {'±10%':>7s} {'MAPE':>7s}",
    ]
    for kind, row in r["kernel_level"].items():
        m = row["latency"]
        lines.append(
            f"  {kind:10s} {m['n']:6d} {_pct(m['within_5'])} {_pct(m['within_10'])} {_pct(m['mape'])}"  # noqa: E501
        )
    e = r["kernel_level"]["all"]["energy"]
    lines.append(f"  energy (dynamic) ±10%: {_pct(e['within_10'])}, MAPE {_pct(e['mape'])}")
    lines.append("")
    lines.append("model level (held-out random architectures)")
    lines.append(
        f"  {'predictor':28s} {'config':14s} {'n':>5s} {'±5%':>7s} {'±10%':>7s} {'MAPE':>7s} {'Spearman':>8s}"  # noqa: E501
    )
    for hw, row in r["model_level"].items():
        m = row["latency"]
        lines.append(
            f"  {'ndpsim estimator':28s} {hw:14s} {m['n']:5d} {_pct(m['within_5'])} {_pct(m['within_10'])} "  # noqa: E501
            f"{_pct(m['mape'])} {m['spearman']:8.4f}"
        )
        e = row["energy"]
        lines.append(
            f"  {'  energy':28s} {hw:14s} {e['n']:5d} {_pct(e['within_5'])} {_pct(e['within_10'])} "
            f"{_pct(e['mape'])} {e['spearman']:8.4f}"
        )
        lines.append(
            f"  {'  top-k overlap':28s} {hw:14s} k={row['top_k']}: {_pct(row['top_k_overlap'])}"
        )
    for name, m in r["baselines"].items():
        lines.append(
            f"  {name:28s} {'neural-engine':14s} {m['n']:5d} {_pct(m['within_5'])} {_pct(m['within_10'])} "  # noqa: E501
            f"{_pct(m['mape'])} {m['spearman']:8.4f}"
        )
    lines.append(
        f"  sum of kernels vs simulator (training models): bias {r['sum_bias_pct']:+.2f}%, "
        f"correction log y = {r['correction']['latency'][0]:.4f} + {r['correction']['latency'][1]:.4f} log sum"  # noqa: E501
    )
    if "lofo" in r:
        lines.append("")
        lines.append("leave-one-family-out (family's kernels and models excluded from training)")
        for fam, per in r["lofo"].items():
            for hw, row in per.items():
                m = row["latency"]
                lines.append(
                    f"  {fam:10s} {hw:14s} n={m['n']:4d} MAPE {_pct(m['mape'])} ±10% {_pct(m['within_10'])}"  # noqa: E501
                )
    return "\n".join(lines)


__all__ = ["evaluate", "metrics", "render", "static_pj"]
