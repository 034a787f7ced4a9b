"""A first-order schedule of one MAC layer, as a feature: the emission order of lower/mac.py
(pixel blocks; K-folds and column tiles on round-robin macros; one REQUANT per column tile
on the vector unit of the core holding its first tile; a double-buffered accumulator) run
through per-unit in-order queues, with every MVM of a block taking the same time.

It ignores what the regressors then learn: per-tile SRAM spans, the short last column
tile, dispatch and the vector unit's previous layer.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def mac_schedule_cycles(
    pixels,
    px,
    folds_k,
    folds_c,
    mvm_full,
    mvm_last,
    rq_full,
    rq_last,
    cursor,
    macros,
    per_core,
    cores,
):
    """Cycles of each MAC kernel row (all arguments int64 arrays of one length but the
    last three, which are int64 arrays too: total macros, macros per core and cores)."""
    n = pixels.shape[0]
    out = np.zeros(n, np.int64)
    for r in range(n):
        m_tot, fk, fc = macros[r], folds_k[r], folds_c[r]
        macro_free = np.zeros(m_tot, np.int64)
        vec_free = np.zeros(cores[r], np.int64)
        rq_end = np.zeros((2, fc), np.int64)  # REQUANT ends of the two previous blocks
        blocks = (pixels[r] + px[r] - 1) // px[r]
        end = 0
        for blk in range(blocks):
            last = blk == blocks - 1
            dur = mvm_last[r] if last else mvm_full[r]
            rq = rq_last[r] if last else rq_full[r]
            grp = np.zeros(fc, np.int64)
            for kf in range(fk):
                for ct in range(fc):
                    m = (cursor[r] + ct * fk + kf) % m_tot
                    start = max(macro_free[m], rq_end[blk % 2, ct] if blk >= 2 else 0)
                    macro_free[m] = start + dur
                    grp[ct] = max(grp[ct], start + dur)
            for ct in range(fc):
                core = ((cursor[r] + ct * fk) % m_tot) // per_core[r]
                start = max(vec_free[core], grp[ct])
                vec_free[core] = start + rq
                rq_end[blk % 2, ct] = start + rq
                end = max(end, start + rq)
        out[r] = end
    return out


def schedule_feature(d: dict[str, np.ndarray], h: dict[str, np.ndarray], cursor: np.ndarray):
    """Schedule cycles from the tiling features of features.mac_features."""
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    return mac_schedule_cycles(
        i64(d["pixels"]),
        i64(d["pixel_block"]),
        i64(d["folds_k"]),
        i64(d["folds_c"]),
        i64(d["mvm_full"]),
        i64(d["mvm_last"]),
        i64(d["rq_full"]),
        i64(d["rq_last"]),
        i64(cursor),
        i64(h["cores"] * h["macros_per_core"]),
        i64(h["macros_per_core"]),
        i64(h["cores"]),
    )
