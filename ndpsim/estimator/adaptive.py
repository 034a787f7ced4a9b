"""Adaptive re-sampling (nn-Meter): fit on 80% of the sampled kernels, predict the other
20%, and sample neighbours of every kernel predicted more than 10% off."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ndpsim.estimator import dataset as D
from ndpsim.estimator.model import (
    KERNEL_COLUMNS,
    _hw_index,
    _hw_of,
    fit_kernels,
    hw_configs,
    kernel_table,
)

BAD_ERROR = 0.10


def bad_kernels(data: Path, max_bad: int) -> list[int]:
    """Sample ids of held-out kernels the estimator misses by more than 10%, worst first."""
    from threadpoolctl import threadpool_limits

    from ndpsim.estimator.evaluate import _held_out

    configs = hw_configs(data)
    k = D.read_table(data / "kernels")
    group = k["sample_id"] * 1000 + _hw_index(k, configs)
    order = np.lexsort((k["position"], group))
    k = {c: np.asarray(v)[order] for c, v in k.items()}
    group = group[order]
    held = _held_out(k)
    t = kernel_table({c: k[c] for c in KERNEL_COLUMNS}, group)
    h = _hw_of(k["hw_config_id"], configs)
    pick = lambda m: ({c: v[m] for c, v in t.items()}, {c: v[m] for c, v in h.items()})  # noqa: E731
    with threadpool_limits(1):
        est = fit_kernels(
            *pick(~held),
            k["cycles"][~held].astype(float),
            k["dynamic_energy_pj"][~held].astype(float),
            log=lambda *_: None,
        )
    known = [x.split(".")[0] for x in est.forests]
    m = held & np.isin(t["kernel_type"], known) & ~np.isin(t["kernel_type"], ("input", "output"))
    cyc, _ = est.predict_kernels(*pick(m))
    err = np.abs(cyc / np.maximum(k["cycles"][m], 1) - 1)
    sids = k["sample_id"][m]
    worst = [int(s) for s in sids[np.argsort(-err)][: 4 * max_bad]]
    bad = set(sids[err > BAD_ERROR].tolist())
    return list(dict.fromkeys(s for s in worst if s in bad))[:max_bad]


def adaptive_round(
    data: Path, hws, per_bad: int, max_bad: int, seed: int, mapper, quiet: bool
) -> int:
    """One round; returns the number of kernels added."""
    bad = bad_kernels(Path(data), max_bad)
    if not bad:
        return 0
    k = D.read_table(Path(data) / "kernels")
    first = {}
    for sid, spec in zip(k["sample_id"].tolist(), k["spec"].tolist(), strict=True):
        first.setdefault(sid, {"sample_id": sid, "spec": spec})
    rows = D.resample(list(first.values()), bad, per_bad, hws, seed, mapper, quiet)
    D.write_dataset(Path(data), {"kernels": rows}, seed, f"adaptive-s{seed}")
    return len({r["sample_id"] for r in rows})
