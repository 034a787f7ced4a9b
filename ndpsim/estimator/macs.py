"""A model's MAC layers on one macro shape, as the replay's arrays (replay.Macs) and their
representative instructions: one numba kernel over every MAC layer (plan.py calls it per
configuration; in Python it cost ~25 us a layer, most of a prediction).

Per MAC layer, as lower/tiling.tiles_for lists its tiles (flat, column-tile major) and
lower/mac.py issues them (per pixel block, k-fold major: one gathered input block feeds every
column tile of that fold):

- tiles fall into classes that issue identical instructions: block-diagonal packs of `per`
  groups (the last pack may hold fewer), or k-folds x column tiles, a fold's class being
  where its K-range starts within a kernel window and its length, a column tile's its width;
- pixel blocks (lower/tiling.pixel_block) fall into classes by their offset within an output
  row, which comes round every ow / gcd(px, ow) blocks (the period the replay skips by), and
  the last block's size;
- one representative row per (tile class, block class) MVM, (column-tile width, block size)
  REQUANT and tile-class LOAD_W, with how many times each is issued.

The equations are the lowering's own: tiling.groups_per_tile_of, pixel_block_of and
input_bytes_of, compiled here. numba's cache of this module is keyed on this file alone, so
it carries TILING_DIGEST, a hash of those three functions' source: an edit to them fails
tests/test_estimator_plan.py until the stamp here is updated, which recompiles the kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ndpsim.isa import Opcode
from ndpsim.lower.tiling import groups_per_tile_of, input_bytes_of, pixel_block_of

# Per MAC layer, the integer columns of the kernel's geometry table.
GEOM = ("groups", "k_g", "cout_g", "kh", "kw", "ow", "pixels", "h", "w", "stride_h", "stride_w",
        "dilation_h", "dilation_w", "w_bits", "in_bits", "out_bits")  # fmt: skip
N_FIELDS = 10  # plan.ROW_FIELDS: op, a0, a2, rows, cols, w_bits, a_bits, work, bytes_in, bytes_out
_MVM, _RQ, _LOAD_W = int(Opcode.MVM), int(Opcode.REQUANT), int(Opcode.LOAD_W)
TILING_DIGEST = "a5ad34522a865f83"  # see the module doc

_groups_per_tile = njit(cache=True)(groups_per_tile_of)
_pixel_block = njit(cache=True)(pixel_block_of)
_input_bytes = njit(cache=True)(input_bytes_of)


def geometry_row(geom, w_bits: int, in_bits: int, out_bits: int) -> list[int]:
    """A MAC layer's row of the geometry table (GEOM order)."""
    return [geom.groups, geom.k_g, geom.cout_g, geom.kh, geom.kw, geom.ow, geom.pixels, geom.h,
            geom.w, geom.stride[0], geom.stride[1], geom.dilation[0], geom.dilation[1], w_bits,
            in_bits, out_bits]  # fmt: skip


@njit(cache=True)
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@njit(cache=True)
def _folds(K, khw, rows, fcls, ffirst, fcount):
    """Classes of a group's k-folds (where the fold starts within a kernel window, its
    length), in order of first appearance: fcls per fold, the first fold and the count of
    each class; returns the number of classes."""
    n = 0
    for f in range(fcls.shape[0]):
        k0 = f * rows
        a, b = k0 % khw, min(rows, K - k0)
        c = -1
        for q in range(n):
            j = ffirst[q] * rows
            if j % khw == a and min(rows, K - j) == b:
                c = q
                break
        if c < 0:
            c = n
            ffirst[n] = f
            fcount[n] = 0
            n += 1
        fcls[f] = c
        fcount[c] += 1
    return n


@njit(cache=True)
def _dims(g, cols, rows, acc):
    """(groups a pack, k-folds, column tiles a group, tiles, column tiles, tile classes,
    pixels a block, blocks, block classes, block sizes, period) of one layer."""
    G, K, CG, khw, ow, pix = g[0], g[1], g[2], g[3] * g[4], g[5], g[6]
    per = _groups_per_tile(K, CG, G, rows, cols)
    if per:
        n_kf, n_c = 1, 1
        T = -(-G // per)
        fc = T
        ntc = 1 if G - (T - 1) * per == per else 2
        cols_max = per * CG
    else:
        n_kf, n_c = -(-K // rows), -(-CG // cols)
        T = G * n_c * n_kf
        fc = G * n_c
        fcls = np.empty(n_kf, np.int64)
        ffirst = np.empty(n_kf, np.int64)
        fcount = np.empty(n_kf, np.int64)
        nfc = _folds(K, khw, rows, fcls, ffirst, fcount)
        ntc = nfc * (1 if CG - (n_c - 1) * cols == cols or n_c == 1 else 2)
        cols_max = min(cols, CG)
    px = _pixel_block(ow, pix, cols_max, acc)
    nblk = -(-pix // px)
    last_n = pix - (nblk - 1) * px
    p = ow // _gcd(px, ow)
    nfull = nblk - 1
    nbc = min(p, nfull) + (1 if (last_n != px or nfull < p) else 0)
    nnc = 1 if last_n == px else 2
    return per, n_kf, n_c, T, fc, ntc, px, nblk, nbc, nnc, p


@njit(cache=True)
def _records(head, blank, out):
    """The representative table as instructions: `head` (the static rows' records), then a
    record per row of `out` (N_FIELDS columns) made from `blank`; each row on a unit and a
    counter row of its own (its duration and counts alone)."""
    base = head.shape[0]
    rec = np.empty(base + out.shape[0], head.dtype)
    for i in range(base):
        rec[i] = head[i]
    for i in range(out.shape[0]):
        rec[base + i] = blank[0]
        o = out[i]
        rec[base + i]["op"] = o[0]
        rec[base + i]["a0"] = o[1]
        rec[base + i]["a2"] = o[2]
        rec[base + i]["rows"] = o[3]
        rec[base + i]["cols"] = o[4]
        rec[base + i]["w_bits"] = o[5]
        rec[base + i]["a_bits"] = o[6]
        rec[base + i]["work"] = o[7]
        rec[base + i]["bytes_in"] = o[8]
        rec[base + i]["bytes_out"] = o[9]
        rec[base + i]["unit"] = base + i
        rec[base + i]["layer"] = base + i
    return rec


@njit(cache=True)
def plan_macs(geo, cols, rows, acc, head, blank):
    """The Macs fields (in replay.Macs order but row_count), the representative table
    (`head`, the static rows' records, then every MAC layer's rows: _records) and the issue
    count of every row (the static ones zero). `geo`: the geometry table (GEOM), `cols`:
    each layer's output columns a pass, `rows` / `acc`: the macro's rows and accumulator
    entries, `blank`: one record of default fields."""
    base = head.shape[0]
    L = geo.shape[0]
    dims = np.empty((L, 11), np.int64)
    n_t = n_ct = n_b = n_rows = 0
    for m in range(L):
        d = _dims(geo[m], cols[m], rows, acc)
        for q in range(11):
            dims[m, q] = d[q]
        nct = d[5] if d[0] else (1 if geo[m, 2] - (d[2] - 1) * cols[m] == cols[m] or d[2] == 1
                                 else 2)  # fmt: skip
        n_t += d[3]
        n_ct += d[4]
        n_b += d[7]
        n_rows += d[5] * d[8] + nct * d[9] + d[5]
    fields = np.zeros((14, L), np.int64)  # m_tiles .. m_period
    tile_ct = np.empty(n_t, np.int64)
    tile_class = np.empty(n_t, np.int64)
    order = np.empty(n_t, np.int64)
    ct_first = np.empty(n_ct, np.int64)
    ct_class = np.empty(n_ct, np.int64)
    blk_class = np.empty(n_b, np.int64)
    blk_nclass = np.empty(n_b, np.int64)
    out = np.zeros((n_rows, N_FIELDS), np.int64)
    count = np.zeros(base + n_rows, np.int64)
    to = co = bo = 0
    r = base
    for m in range(L):
        G, K, CG, kh, kw, wb, ib, ob = (geo[m, 0], geo[m, 1], geo[m, 2], geo[m, 3], geo[m, 4],
                                        geo[m, 13], geo[m, 14], geo[m, 15])  # fmt: skip
        c = cols[m]
        per, n_kf, n_c, T, fc = dims[m, 0], dims[m, 1], dims[m, 2], dims[m, 3], dims[m, 4]
        ntc, px, nblk, nbc = dims[m, 5], dims[m, 6], dims[m, 7], dims[m, 8]
        nnc, p = dims[m, 9], dims[m, 10]
        # tiles: the representative tile of each class as (groups, k0, k1, cols), its count,
        # and the REQUANT channels of each column tile as classes of sorted widths
        t_ng = np.empty(ntc, np.int64)
        t_k0 = np.empty(ntc, np.int64)
        t_k1 = np.empty(ntc, np.int64)
        t_cols = np.empty(ntc, np.int64)
        t_count = np.empty(ntc, np.int64)
        if per:
            lastg = G - (T - 1) * per
            for t in range(T):
                order[to + t] = t
                tile_ct[to + t] = t
                ct_first[co + t] = t
                tile_class[to + t] = 1 if (t == T - 1 and ntc == 2) else 0
                ct_class[co + t] = 0 if (t == T - 1 and ntc == 2) else ntc - 1
            for q in range(ntc):
                ng = per if q == 0 else lastg
                t_ng[q], t_k0[q], t_k1[q], t_cols[q] = ng, 0, K, ng * CG
                t_count[q] = T - 1 if (q == 0 and ntc == 2) else 1 if q else T
            nct = ntc
            ct_vals = np.array([lastg * CG, per * CG]) if ntc == 2 else np.array([per * CG])
            ct_count = np.array([1, T - 1]) if ntc == 2 else np.array([T])
        else:
            lastc = CG - (n_c - 1) * c
            ncc = 1 if (lastc == c or n_c == 1) else 2
            fcls = np.empty(n_kf, np.int64)
            ffirst = np.empty(n_kf, np.int64)
            fcount = np.empty(n_kf, np.int64)
            nfc = _folds(K, kh * kw, rows, fcls, ffirst, fcount)
            for ct in range(fc):
                last_col = ct % n_c == n_c - 1 and ncc == 2
                ct_first[co + ct] = ct * n_kf
                ct_class[co + ct] = 0 if last_col else ncc - 1
                for f in range(n_kf):
                    t = ct * n_kf + f
                    tile_ct[to + t] = ct
                    tile_class[to + t] = fcls[f] * ncc + (1 if last_col else 0)
                    order[to + f * fc + ct] = t
            for fq in range(nfc):
                f = ffirst[fq]
                flen = min(rows, K - f * rows)
                for cq in range(ncc):
                    q = fq * ncc + cq
                    t_ng[q], t_k0[q], t_k1[q] = 1, f * rows, f * rows + flen
                    t_cols[q] = lastc if cq == 1 else min(c, CG)
                    t_count[q] = fcount[fq] * G * ((n_c - 1 if ncc == 2 else n_c) if cq == 0 else 1)
            nct = ncc
            ct_vals = np.array([lastc, c]) if ncc == 2 else np.array([min(c, CG)])
            ct_count = np.array([G, G * (n_c - 1)]) if ncc == 2 else np.array([G * n_c])
        # pixel blocks: full blocks by their offset within a row (period p), then the last
        last_n = geo[m, 6] - (nblk - 1) * px
        nfull = nblk - 1
        nper = min(p, nfull)
        last_cls = nfull % p if (last_n == px and nfull >= p) else nper
        b_first = np.empty(nbc, np.int64)
        b_n = np.empty(nbc, np.int64)
        b_count = np.zeros(nbc, np.int64)
        for k in range(nblk):
            cl = k % p if k < nfull else last_cls
            blk_class[bo + k] = cl
            blk_nclass[bo + k] = 1 if (nnc == 2 and k < nfull) else 0
            if b_count[cl] == 0:
                b_first[cl] = k
                b_n[cl] = px if k < nfull else last_n
            b_count[cl] += 1
        n_vals = np.array([last_n, px]) if nnc == 2 else np.array([px])
        n_count = np.array([1, nfull]) if nnc == 2 else np.array([nblk])
        fields[0, m], fields[1, m], fields[2, m] = T, fc, nblk
        fields[3, m], fields[4, m], fields[5, m] = to, co, bo
        fields[6, m], fields[7, m], fields[8, m], fields[9, m] = nbc, nnc, ntc, nct * nnc
        fields[10, m] = r
        for q in range(ntc):  # MVM rows: tile class x block class
            rows_t, cols_t = t_ng[q] * (t_k1[q] - t_k0[q]), t_cols[q]
            for b in range(nbc):
                n = b_n[b]
                o = out[r - base]
                o[0], o[2], o[3], o[4], o[5], o[6] = _MVM, n, rows_t, cols_t, wb, ib
                o[7] = n * rows_t * (cols_t // t_ng[q])  # macs a vector x the block's pixels
                o[8] = _input_bytes(geo[m, 7], geo[m, 8], geo[m, 5], geo[m, 9], geo[m, 10], kh,
                                    kw, geo[m, 11], geo[m, 12], t_ng[q], t_k0[q], t_k1[q],
                                    b_first[b] * px, n, ib)  # fmt: skip
                count[r] = t_count[q] * b_count[b]
                r += 1
        fields[11, m] = r
        for q in range(nct):  # REQUANT rows: column-tile width x block size
            ch = ct_vals[q]
            for b in range(nnc):
                n = n_vals[b]
                o = out[r - base]
                o[0], o[2], o[3], o[6], o[7] = _RQ, n, ch, ob, ch * n
                o[9] = (ch * n * ob + 7) // 8
                count[r] = ct_count[q] * n_count[b]
                r += 1
        fields[12, m] = r
        for q in range(ntc):  # LOAD_W rows: one per tile class
            o = out[r - base]
            o[0] = _LOAD_W
            o[8] = (t_ng[q] * (t_k1[q] - t_k0[q]) * t_cols[q] * wb + 7) // 8
            count[r] = t_count[q]
            r += 1
        fields[13, m] = p if 3 * p <= nblk - 1 else 0
        to += T
        co += fc
        bo += nblk
    return (fields, tile_ct, tile_class, order, ct_first, ct_class, blk_class, blk_nclass,
            _records(head, blank, out), count)  # fmt: skip
