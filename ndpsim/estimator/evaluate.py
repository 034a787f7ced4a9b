"""The evaluation protocol (`ndpsim estimator eval`): every network of the dataset on every
evaluation configuration (the presets and sampled hardware, half with small memories),
against the simulator.

- leave-one-family-out: for each zoo family, the estimator trained without that family's
  networks predicts all of them;
- in-family: the estimator trained on the training networks predicts the held-out test
  networks of the same families;
- real networks nobody here generated (the onnx wheel's light_* networks, the trained MLPerf
  Tiny models): predicted by the estimator, never trained on;
- kernel level: every kernel of the test networks, by kernel type;
- baselines, fitted per configuration on the training networks simulated on that very
  configuration: FLOPs (log-linear), an operator lookup-table sum (measured kernel of equal
  geometry, else the nearest), and a random forest on nn-Meter's seven features per kernel
  type, summed.

Reported per configuration and per family: share within ±5% and ±10%, MAPE and Spearman rank
correlation, for latency and energy. The estimator is trained on separate hardware (the
dataset's training configurations): no evaluated configuration is seen in training.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ndpsim.estimator.dataset import read_manifest
from ndpsim.estimator.train import SimTable, fit, points, training_rows, walk
from ndpsim.isa import Counter

_MACS = int(Counter.MACS)

TARGETS = {"lofo_latency": 0.95, "lofo_energy": 0.90, "in_family": 0.99, "spearman": 0.99}


def metrics(pred, true) -> dict[str, float]:
    """n, share within ±5% / ±10%, mean absolute percentage error, Spearman's rho."""
    from scipy.stats import spearmanr

    pred, true = np.asarray(pred, float), np.asarray(true, float)
    err = np.abs(pred / np.maximum(true, 1e-12) - 1)
    rho = float("nan")
    if len(true) > 2 and np.ptp(true) > 0:
        rho = float(spearmanr(pred, true).statistic)
    return {"n": int(len(true)), "within_5": float(np.mean(err <= 0.05)),
            "within_10": float(np.mean(err <= 0.10)), "mape": float(np.mean(err)),
            "spearman": rho}  # fmt: skip


def evaluate(data: Path, quiet: bool = False, log: Callable = print) -> dict:
    """The protocol's figures for dataset `data` (module doc)."""
    data = Path(data)
    table = SimTable(data)
    networks, hws = read_manifest(data)
    log("fitting on the training networks x training hardware")
    rows, _ = training_rows(data, table, quiet)
    full = fit(rows, log=log)
    families = sorted({n["family"] for n in networks if n["split"] != "real"})
    lofo = {f: fit(rows, keep=rows.family != f, log=lambda *_: None) for f in families}
    log("predicting every network on the evaluation hardware")
    recs = []
    kernels: dict[str, list] = defaultdict(list)  # kernel level: type -> (pred, true)
    base_rows: list[dict] = []  # for the baselines: per point, kernels and model figures
    work = points(networks, hws, "eval", ("train", "test", "real"))
    for net, hw, pred, ev in walk(work, table, quiet):
        layer, kind, geom = pred.kernels(hw)
        sim_cycles, sim_uj = table.points[(net["sha256"], hw.config_id())]
        c_full, e_full = full.correct(ev, hw, layer, kind, geom)
        rec = {"network": net["name"], "family": net["family"], "split": net["split"],
               "config": hw.name, "sim_cycles": sim_cycles, "sim_uj": sim_uj,
               "cycles": c_full, "uj": e_full / 1e6, "streams": not ev.resident,
               "spills": ev.spilled > 0}  # fmt: skip
        if net["family"] in lofo:
            c, e = lofo[net["family"]].correct(ev, hw, layer, kind, geom)
            rec.update(lofo_cycles=c, lofo_uj=e / 1e6)
        recs.append(rec)
        sim = table.layers(net["name"], hw.config_id(), len(ev.first))
        if sim is not None and net["split"] == "test":
            r_lat, _ = full.residuals(kind, _features(full, layer, geom, ev, hw))
            span = (ev.spans[layer] + 1.0) * np.exp(r_lat) - 1
            for j, k in enumerate(kind.tolist()):
                kernels[k].append((span[j], sim[0][layer[j]]))
        if sim is not None and net["split"] in ("train", "test"):
            base_rows.append({"split": net["split"], "config": hw.name, "kind": kind,
                              "geom": geom, "span": sim[0][layer], "cycles": sim_cycles,
                              "macs": float(ev.counters[:, _MACS].sum())})  # fmt: skip
    return _report(recs, kernels, base_rows, hws, families, full)


def _features(est, layer, geom, ev, hw):
    from ndpsim.estimator.features import features

    return features(layer, geom, ev, hw) if est.forests else None


def _select(recs, **where):
    return [r for r in recs if all(r[k] in v if isinstance(v, tuple) else r[k] == v
                                   for k, v in where.items())]  # fmt: skip


def _pair(recs, pre: str) -> dict:
    """Latency and energy figures of records, predictions `pre`cycles / `pre`uj."""
    lat = metrics([r[f"{pre}cycles"] for r in recs], [r["sim_cycles"] for r in recs])
    energy = metrics([r[f"{pre}uj"] for r in recs], [r["sim_uj"] for r in recs])
    return {"latency": lat, "energy": energy}


def _report(recs, kernels, base_rows, hws, families, full) -> dict:
    from ndpsim.lower.kernels import KERNEL_TYPES

    zoo = [r for r in recs if "lofo_cycles" in r]
    out: dict = {"configs": [h.name for h in hws["eval"]], "families": families,
                 "regressors": sorted(full.forests),
                 "residuals": full.info.get("residuals", {})}  # fmt: skip
    out["lofo"] = {"all": _pair(zoo, "lofo_"),
                   "per_config": {c: _config_row(_select(zoo, config=c)) for c in out["configs"]},
                   "per_family": {f: _pair(_select(zoo, family=f), "lofo_")
                                  for f in families}}  # fmt: skip
    test = _select(recs, split="test")
    out["in_family"] = {"all": _pair(test, ""),
                        "per_family": {f: _pair(_select(test, family=f), "") for f in families},
                        "per_config": {c: _pair(_select(test, config=c), "")
                                       for c in out["configs"]}}  # fmt: skip
    real = _select(recs, split="real")
    if real:
        out["real"] = {"all": _pair(real, ""),
                       "per_network": {n: _pair(_select(real, network=n), "")
                                       for n in sorted({r["network"] for r in real})}}  # fmt: skip
    out["kernel_level"] = {KERNEL_TYPES[k]: _kernel_metrics(v) for k, v in sorted(kernels.items())}
    out["baselines"] = _baselines(base_rows, out["configs"])
    lat = [out["lofo"]["per_config"][c]["latency"]["spearman"] for c in out["configs"]]
    en = [out["lofo"]["per_config"][c]["energy"]["spearman"] for c in out["configs"]]
    out["checks"] = {
        "lofo latency within ±10%": (out["lofo"]["all"]["latency"]["within_10"],
                                     TARGETS["lofo_latency"]),
        "lofo energy within ±10%": (out["lofo"]["all"]["energy"]["within_10"],
                                    TARGETS["lofo_energy"]),
        "in-family latency within ±10%": (out["in_family"]["all"]["latency"]["within_10"],
                                          TARGETS["in_family"]),
        "in-family energy within ±10%": (out["in_family"]["all"]["energy"]["within_10"],
                                         TARGETS["in_family"]),
        "lowest Spearman per configuration (latency)": (float(np.nanmin(lat)),
                                                        TARGETS["spearman"]),
        "lowest Spearman per configuration (energy)": (float(np.nanmin(en)),
                                                       TARGETS["spearman"]),
    }  # fmt: skip
    if real:
        out["checks"]["real networks latency within ±10%"] = (
            out["real"]["all"]["latency"]["within_10"],
            None,
        )
    return out


def _config_row(recs) -> dict:
    """LOFO figures of one configuration, and the share of its networks whose weights stream
    and whose activations spill."""
    return {**_pair(recs, "lofo_"), "streams": float(np.mean([r["streams"] for r in recs])),
            "spills": float(np.mean([r["spills"] for r in recs]))}  # fmt: skip


def _kernel_metrics(pairs) -> dict:
    p, t = np.array(pairs).T
    err = np.abs(p - t) / np.maximum(t, 1)
    return {"n": int(len(t)), "within_5": float(np.mean(err <= 0.05)),
            "within_10": float(np.mean(err <= 0.10)), "mape": float(np.mean(err))}  # fmt: skip


def _nnmeter7(kind, geom):
    """nn-Meter's kernel features: input size, Cin, Cout, kernel, stride, FLOPs, params."""
    from ndpsim.estimator.features import GEOM

    g = {f: geom[:, i] for i, f in enumerate(GEOM)}
    k_g = g["c_in"] / np.maximum(g["groups"], 1) * g["kh"] * g["kw"]
    flops = g["h_out"] * g["w_out"] * g["c_out"] * k_g
    return np.stack([g["h_in"], g["c_in"], g["c_out"], g["kh"], g["stride_h"], flops,
                     g["c_out"] * k_g], 1)  # fmt: skip


def _baselines(base_rows, configs) -> dict:
    """FLOPs, operator LUT sum and nn-Meter-style random forest per configuration, fitted on
    the training networks simulated on that configuration, scored on the test networks."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.neighbors import KNeighborsRegressor
    from threadpoolctl import threadpool_limits

    out: dict[str, dict] = {"FLOPs (log-linear)": {}, "operator LUT sum": {},
                            "nn-Meter RF (7 features)": {}}  # fmt: skip
    with threadpool_limits(1):
        for c in configs:
            tr = [r for r in base_rows if r["config"] == c and r["split"] == "train"]
            te = [r for r in base_rows if r["config"] == c and r["split"] == "test"]
            if len(tr) < 3 or len(te) < 3:
                continue
            true = np.array([r["cycles"] for r in te])
            A = np.stack([np.ones(len(tr)), np.log([max(r["macs"], 1) for r in tr])], 1)
            a, b = np.linalg.lstsq(A, np.log([r["cycles"] for r in tr]), rcond=None)[0]
            flops = np.exp(a + b * np.log([max(r["macs"], 1) for r in te]))
            out["FLOPs (log-linear)"][c] = metrics(flops, true)
            kind = np.concatenate([r["kind"] for r in tr])
            X = _nnmeter7(kind, np.concatenate([r["geom"] for r in tr]))
            y = np.concatenate([r["span"] for r in tr])
            lut, rf = np.zeros(len(te)), np.zeros(len(te))
            for k in np.unique(np.concatenate([r["kind"] for r in te])):
                m = kind == k
                if not m.any():
                    continue
                keys = {tuple(x): v for x, v in zip(X[m].astype(np.int64).tolist(), y[m],
                                                    strict=True)}  # fmt: skip
                nn = KNeighborsRegressor(1).fit(np.log1p(X[m]), y[m])
                forest = RandomForestRegressor(50, random_state=0, n_jobs=1).fit(X[m], y[m])
                for j, r in enumerate(te):
                    mk = r["kind"] == k
                    if not mk.any():
                        continue
                    Xe = _nnmeter7(r["kind"][mk], r["geom"][mk])
                    near = nn.predict(np.log1p(Xe))
                    lut[j] += sum(keys.get(tuple(x), n) for x, n in
                                  zip(Xe.astype(np.int64).tolist(), near, strict=True))  # fmt: skip
                    rf[j] += forest.predict(Xe).sum()
            out["operator LUT sum"][c] = metrics(np.maximum(lut, 1), true)
            out["nn-Meter RF (7 features)"][c] = metrics(np.maximum(rf, 1), true)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:6.1f}%"


def _row(label: str, m: dict, width: int = 22) -> str:
    lat, en = m["latency"], m["energy"]
    return (f"  {label:{width}s} {lat['n']:5d} {_pct(lat['within_5'])} {_pct(lat['within_10'])} "
            f"{_pct(lat['mape'])} {lat['spearman']:8.4f} | {_pct(en['within_5'])} "
            f"{_pct(en['within_10'])} {_pct(en['mape'])} {en['spearman']:8.4f}")  # fmt: skip


def _header(label: str, width: int = 22, extra: str = "") -> list[str]:
    return [f"  {label:{width}s} {'n':>5s} {'±5%':>7s} {'±10%':>7s} {'MAPE':>7s} {'Spearman':>8s} |"
            f" {'±5%':>7s} {'±10%':>7s} {'MAPE':>7s} {'Spearman':>8s}{extra}",
            f"  {'':{width}s} {'':5s} {'latency':^32s} | {'energy':^32s}"]  # fmt: skip


def render(r: dict) -> str:
    """The evaluation as printed by `ndpsim estimator eval`."""
    L = []
    L.append("leave-one-family-out, per evaluation configuration (the family's networks "
             "predicted by the estimator trained without it)")  # fmt: skip
    L += _header("configuration", extra="  streams spills")
    for c in r["configs"]:
        m = r["lofo"]["per_config"][c]
        L.append(_row(c, m) + f"  {_pct(m['streams'])} {_pct(m['spills'])}")
    L.append(_row("all", r["lofo"]["all"]))
    L.append("")
    L.append("leave-one-family-out, per family (all evaluation configurations)")
    L += _header("family")
    for f, m in r["lofo"]["per_family"].items():
        L.append(_row(f, m))
    L.append("")
    L.append("in-family: held-out test networks, per family (all evaluation configurations)")
    L += _header("family")
    for f, m in r["in_family"]["per_family"].items():
        L.append(_row(f, m))
    L.append(_row("all", r["in_family"]["all"]))
    if "real" in r:
        L.append("")
        L.append("real networks nobody here generated (never trained on), all evaluation "
                 "configurations")  # fmt: skip
        L += _header("network", 26)
        for n, m in r["real"]["per_network"].items():
            L.append(_row(n, m, 26))
        L.append(_row("all", r["real"]["all"], 26))
    L.append("")
    L.append("kernel level: every kernel of the test networks on the evaluation hardware "
             "(span; error relative to max(simulated, 1 cycle))")  # fmt: skip
    L.append(f"  {'kernel type':12s} {'n':>8s} {'±5%':>7s} {'±10%':>7s} {'MAPE':>7s}")
    for k, m in r["kernel_level"].items():
        L.append(f"  {k:12s} {m['n']:8d} {_pct(m['within_5'])} {_pct(m['within_10'])} "
                 f"{_pct(m['mape'])}")  # fmt: skip
    L.append("")
    L.append("baselines, each fitted per configuration on the training networks simulated on "
             "that configuration, scored on the test networks (latency)")  # fmt: skip
    L.append(f"  {'predictor':26s} {'configs':>7s} {'±10% median':>11s} {'±10% worst':>10s} "
             f"{'MAPE median':>11s} {'Spearman median':>15s}")  # fmt: skip
    for name, per in r["baselines"].items():
        if not per:
            continue
        w10 = [m["within_10"] for m in per.values()]
        L.append(f"  {name:26s} {len(per):7d} {_pct(np.median(w10)):>11s} {_pct(min(w10)):>10s} "
                 f"{_pct(np.median([m['mape'] for m in per.values()])):>11s} "
                 f"{np.nanmedian([m['spearman'] for m in per.values()]):15.4f}")  # fmt: skip
    L.append("")
    regs = ", ".join(r["regressors"]) or "none: the analytic model's residual was zero on every "
    if not r["regressors"]:
        regs += "kernel type of the training data"
    L.append(f"residual regressors: {regs}")
    L.append("")
    L.append("targets")
    for name, (value, target) in r["checks"].items():
        verdict = "" if target is None else ("PASS" if value >= target else "FAIL")
        goal = "" if target is None else f" (target {target:g})"
        L.append(f"  {name:45s} {value:.4f}{goal} {verdict}")
    return "\n".join(L)
