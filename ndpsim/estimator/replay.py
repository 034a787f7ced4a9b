"""The machine's schedule of a whole model, without its instructions (a numba kernel).

The simulator's core (`sim/schedule.py: schedule`) walks the lowered program: every
instruction starts at max(its dispatch slot, its unit's in-order queue, the tokens it waits
on), runs for its duration and bumps its counters. Emitting those instructions is what makes a
simulation expensive (a MAC layer issues one MVM per weight tile and pixel block). `replay`
walks the same program in the same order under the same rules, layer by layer as the
lowering driver (lower/lower.py) emits it, without materializing it:

- a graph input: HOST_IN; an output: HOST_OUT after its value; an alias: its source's token;
- any other layer: one LOAD_A per read of a spilled value (each after the value's latest
  writer), barrier NOPs while more than three distinct tokens remain (its reads' and, in a
  data-dependent branch, its condition's), the setup NOP on the layer's vector unit (layer
  index mod cores), the body, one STORE_A per spilled output;
- a vector layer's body: its own instructions (structure.py), tokens renamed;
- a MAC layer's body (lower/mac.py): with streamed weights one LOAD_W per tile up front, or
  per tile and pixel block when the layer has more tiles than streaming slots, each after
  the last MVM group of its slot; per pixel block the MVMs in issue order, each on its tile's
  macro after the setup, its weight load and its column tile's REQUANT two blocks earlier
  (the double-buffered accumulator); then one REQUANT per column tile on the vector unit of
  the core holding its first tile; finally a NOP on every vector unit the layer used.

Durations and counters of every distinct instruction shape come from the simulator's own
`schedule` (plan.py), so the timing equations and the counts are the simulator's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

INPUT, OUTPUT, ALIAS, MAC, VECTOR = 0, 1, 2, 3, 4
MAX_PERIOD = 256  # longest period of identical pixel blocks skipped through
MAX_RING = 1 << 18  # and the most state it keeps for that (periods x state size)


class Static(NamedTuple):
    """A model's program skeleton (structure.py), as int64 arrays."""

    l_kind: np.ndarray
    l_rd_off: np.ndarray  # reads of layer i: r_val[l_rd_off[i] : l_rd_off[i] + l_rd_n[i]]
    l_rd_n: np.ndarray
    l_wr_off: np.ndarray
    l_wr_n: np.ndarray
    l_host_row: np.ndarray
    l_setup_row: np.ndarray  # the layer's setup NOP (its a2: the layer's output positions)
    l_gate: np.ndarray  # value a branch's layer also waits for, or -1
    l_mac: np.ndarray  # MAC layers: their index among MAC layers
    l_body_off: np.ndarray  # vector layers: their instructions b_*[off : off + n]
    l_body_n: np.ndarray
    l_nloc: np.ndarray  # tokens a vector body signals (local ids 1..n; 0 is the setup)
    r_val: np.ndarray
    w_val: np.ndarray
    w_loc: np.ndarray  # local token each written value ends with (vector layers), or -1
    b_row: np.ndarray
    b_dma: np.ndarray  # 1: the instruction runs on the DMA unit
    b_w0: np.ndarray
    b_w1: np.ndarray
    b_w2: np.ndarray
    b_sig: np.ndarray
    v_load_row: np.ndarray  # per value: its LOAD_A and STORE_A rows
    v_store_row: np.ndarray


class Macs(NamedTuple):
    """The MAC layers on one macro shape (plan.MacLocal, concatenated), as int64 arrays."""

    m_tiles: np.ndarray
    m_cols: np.ndarray  # column tiles
    m_blocks: np.ndarray
    m_tile_off: np.ndarray
    m_ct_off: np.ndarray
    m_blk_off: np.ndarray
    m_nbc: np.ndarray  # MVM block classes
    m_nnc: np.ndarray  # REQUANT block sizes
    m_ntc: np.ndarray  # tile classes
    m_nrq: np.ndarray  # REQUANT rows
    m_mvm_base: np.ndarray  # first MVM, REQUANT and LOAD_W row
    m_rq_base: np.ndarray
    m_load_base: np.ndarray
    m_period: np.ndarray  # the block classes repeat every this many blocks (0: no period)
    tile_ct: np.ndarray
    tile_class: np.ndarray
    order: np.ndarray  # per layer, flat tile indices of one pixel block in issue order
    ct_first: np.ndarray
    ct_class: np.ndarray
    blk_class: np.ndarray
    blk_nclass: np.ndarray
    row_count: np.ndarray  # per row: issues per layer (MVM, REQUANT), tiles (LOAD_W)


class Machine(NamedTuple):
    """What of the hardware the walk needs besides durations (lower/lower.py: _units)."""

    vec_units: np.ndarray  # vector unit id of each core
    dma: int
    n_units: int
    total_macros: int
    macros_per_core: int
    cores: int
    issue_cycles: int
    slots: int  # streaming slots (lower/memory.place_weights)
    nop_row: int


@njit(cache=True)
def replay(s, mc, hw, spilled, mac_first, mac_resident, dur, crep, n_tokens):
    """(first start, last end, counters) of every layer. `spilled[v]`: value v lives in
    external memory; `mac_first` / `mac_resident`: per MAC layer, the macro of its first tile
    and whether its weights stay (lower/memory.place_weights); `dur` / `crep`: duration and
    counters of every row of the representative table; `n_tokens`: an upper bound.

    The helpers are closures over the walk's state: numba inlines them, where a function
    taking the state arrays as arguments would pay two atomic reference counts per array
    and call (most of the time of a replay of streamed weights)."""
    n_layers = s.l_kind.shape[0]
    unit_free = np.zeros(hw.n_units, np.int64)
    token_ready = np.zeros(n_tokens, np.int64)
    first = np.full(n_layers, np.iinfo(np.int64).max)
    last = np.zeros(n_layers, np.int64)
    n_counters = crep.shape[1]
    counters = np.zeros((n_layers, n_counters), np.int64)
    vtok = np.full(s.v_load_row.shape[0], -1, np.int64)
    clock = np.zeros(3, np.int64)  # dispatch index, streaming cursor, dispatch-bound flag
    nslot = max(hw.slots, 1)
    slot_time = np.zeros(nslot, np.int64)  # end of the finished group a slot waits for
    slot_pend = np.full(nslot, -1, np.int64)  # column tile of this block's group using it
    ic, dma, vec_units, M = hw.issue_cycles, hw.dma, hw.vec_units, hw.total_macros
    r_val, w_val, w_loc = s.r_val, s.w_val, s.w_loc
    b_row, b_dma, b_w0, b_w1, b_w2, b_sig = s.b_row, s.b_dma, s.b_w0, s.b_w1, s.b_w2, s.b_sig
    order, tile_ct, tile_class, blk_class = mc.order, mc.tile_ct, mc.tile_class, mc.blk_class
    blk_nclass, ct_class, ct_first = mc.blk_nclass, mc.ct_class, mc.ct_first
    row_count = mc.row_count

    def issue(layer, unit, d, ready):
        """One instruction (clock[0] is its dispatch index; clock[2] is set when dispatch
        was its latest constraint): returns its end."""
        t0 = clock[0] * ic
        clock[0] += 1
        if t0 >= unit_free[unit] and t0 >= ready:
            clock[2] = 1  # dispatch bound this instruction
        if unit_free[unit] > t0:
            t0 = unit_free[unit]
        if ready > t0:
            t0 = ready
        t1 = t0 + d
        unit_free[unit] = t1
        if t0 < first[layer]:
            first[layer] = t0
        if t1 > last[layer]:
            last[layer] = t1
        return t1

    def ready_of(t):
        return token_ready[t] if t >= 0 else 0

    def count(layer, row, n):
        for c in range(n_counters):
            counters[layer, c] += crep[row, c] * n

    def load(row, i, li, grp, slot_of):
        """A LOAD_W (representative row `row`) of tile i into the next streaming slot, after
        the last MVM group that used the slot; returns its end."""
        slot = clock[1] % nslot if clock[1] >= nslot else clock[1]
        clock[1] += 1
        wait = grp[slot_pend[slot]] if slot_pend[slot] >= 0 else slot_time[slot]
        t1 = issue(li, dma, dur[row], wait)
        slot_of[i] = slot
        return t1

    def mac(m, li, in_ready, first_macro, resident):
        """A MAC layer's body (module doc); returns the end of its closing NOPs."""
        T, fc, B = mc.m_tiles[m], mc.m_cols[m], mc.m_blocks[m]
        to, co, bo = mc.m_tile_off[m], mc.m_ct_off[m], mc.m_blk_off[m]
        nbc, nnc = mc.m_nbc[m], mc.m_nnc[m]
        mvm_base, rq_base, load_base = mc.m_mvm_base[m], mc.m_rq_base[m], mc.m_load_base[m]
        mode = 0 if resident else (2 if T > hw.slots else 1)
        load_ready = np.zeros(T, np.int64)
        slot_of = np.full(T, -1, np.int64)
        grp = np.zeros(fc, np.int64)
        rq_end = np.zeros((2, fc), np.int64)
        ct_vu = np.empty(fc, np.int64)
        used = np.zeros(hw.cores, np.bool_)
        for ct in range(fc):
            core = ((first_macro + ct_first[co + ct]) % M) // hw.macros_per_core
            ct_vu[ct] = vec_units[core]
            used[core] = True
        if mode == 1:
            for i in range(T):
                load_ready[i] = load(load_base + tile_class[to + i], i, li, grp, slot_of)
        nm = min(T, M)  # the macros the layer's tiles sit on: consecutive from the first
        P = mc.m_period[m]
        S = nslot if mode == 2 else 0  # per-block weight loads: the slots are state too
        if mode == 2 and P:  # ... and their pattern repeats when the slot cursor comes round
            turn = nslot // _gcd(T % nslot, nslot)
            P = P * turn // _gcd(P, turn)
            P = P if P <= MAX_PERIOD else 0
        width = nm + hw.cores + 2 * fc + (S + 1 if S else 0)
        P = P if P * width <= MAX_RING else 0
        ring = np.empty((max(P, 1), width), np.int64)
        refs = np.zeros(max(P, 1), np.int64)
        bound = np.ones(max(P, 1), np.bool_)
        state = np.empty(width, np.int64)
        have = 0
        blk = 0
        while blk < B:
            bc = blk_class[bo + blk]
            clock[2] = 0
            for ct in range(fc):
                grp[ct] = 0
            for j in range(T):
                i = order[to + j]
                ct = tile_ct[to + i]
                if mode == 2:
                    load_ready[i] = load(load_base + tile_class[to + i], i, li, grp, slot_of)
                # times that do not move with the blocks: the setup, weights loaded up front
                fixed = in_ready if mode == 2 else max(in_ready, load_ready[i])
                ready = max(fixed, load_ready[i])
                if blk >= 2 and rq_end[blk % 2, ct] > ready:
                    ready = rq_end[blk % 2, ct]
                unit = first_macro + i  # the tile's macro: consecutive from the first
                if unit >= M:
                    unit %= M
                if fixed >= ready and fixed >= unit_free[unit]:
                    clock[2] = 1
                t1 = issue(li, unit, dur[mvm_base + tile_class[to + i] * nbc + bc], ready)
                if t1 > grp[ct]:
                    grp[ct] = t1
                if slot_of[i] >= 0:
                    slot_pend[slot_of[i]] = ct
            for sl in range(nslot):  # this block's groups are complete
                if slot_pend[sl] >= 0:
                    slot_time[sl] = grp[slot_pend[sl]]
                    slot_pend[sl] = -1
            nc = blk_nclass[bo + blk]
            for ct in range(fc):
                row = rq_base + ct_class[co + ct] * nnc + nc
                rq_end[blk % 2, ct] = issue(li, ct_vu[ct], dur[row], grp[ct])
            if P and blk + 1 + P < B - 1:
                # Steady state: the block classes repeat every P blocks. When this block left
                # the layer's units and accumulators as the block P earlier did, shifted by d
                # cycles, and nothing fixed in time (dispatch, the setup, a weight load) bound
                # an instruction for P blocks, every following period shifts them by d again:
                # skip whole periods up to the last block.
                ref = rq_end[blk % 2, 0]
                _state(state, unit_free, rq_end, first_macro, M, nm, used, vec_units, blk, ref,
                       dma, slot_time, S)  # fmt: skip
                r = blk % P
                if have >= P:
                    d = ref - refs[r]
                    per_block = T + fc + (T if mode == 2 else 0)  # instructions a block issues
                    ok = d > 0 and d >= P * per_block * ic and not clock[2]
                    for q in range(P):
                        ok = ok and not bound[q]
                    for q in range(width):
                        ok = ok and state[q] == ring[r, q]
                    k = (B - 2 - blk) // P if ok else 0
                    if k:
                        _shift(unit_free, rq_end, slot_time, slot_of, first_macro, M, nm, used,
                               vec_units, k * P, k * d, dma, S)  # fmt: skip
                        last[li] += k * d
                        clock[0] += k * P * per_block
                        clock[1] += k * P * T if mode == 2 else 0
                        blk += k * P
                        have = -1  # the ring is stale from here: the rest run as they are
                if have >= 0:
                    ring[r, :] = state
                    refs[r] = ref
                    bound[r] = clock[2] != 0
                    have += 1
            blk += 1
        # counts of the MVMs, REQUANTs and weight loads, by class
        for r in range(mvm_base, mvm_base + mc.m_ntc[m] * nbc):
            count(li, r, row_count[r])
        for r in range(rq_base, rq_base + mc.m_nrq[m]):
            count(li, r, row_count[r])
        if mode:
            for r in range(load_base, load_base + mc.m_ntc[m]):
                count(li, r, row_count[r] * (B if mode == 2 else 1))
        done = 0
        for c in range(hw.cores):
            if used[c]:
                t1 = issue(li, vec_units[c], dur[hw.nop_row], 0)
                count(li, hw.nop_row, 1)
                done = max(done, t1)
        return done

    ntok = 0
    for li in range(n_layers):
        kind = s.l_kind[li]
        ro, rn, wo, wn = s.l_rd_off[li], s.l_rd_n[li], s.l_wr_off[li], s.l_wr_n[li]
        if kind == INPUT:
            t1 = issue(li, dma, dur[s.l_host_row[li]], 0)
            count(li, s.l_host_row[li], 1)
            token_ready[ntok] = t1
            vtok[w_val[wo]] = ntok
            ntok += 1
            continue
        if kind == OUTPUT:
            issue(li, dma, dur[s.l_host_row[li]], ready_of(vtok[r_val[ro]]))
            count(li, s.l_host_row[li], 1)
            continue
        if kind == ALIAS:
            vtok[w_val[wo]] = vtok[r_val[ro]]
            continue
        for j in range(ro, ro + rn):  # spilled inputs come back first, one LOAD_A per read
            v = r_val[j]
            if spilled[v]:
                row = s.v_load_row[v]
                token_ready[ntok] = issue(li, dma, dur[row], ready_of(vtok[v]))
                count(li, row, 1)
                vtok[v] = ntok
                ntok += 1
        toks = np.empty(rn + 1, np.int64)
        nt = 0
        for j in range(ro, ro + rn + 1):  # the reads, then a branch's condition
            if j == ro + rn and s.l_gate[li] < 0:
                break
            x = vtok[r_val[j]] if j < ro + rn else vtok[s.l_gate[li]]
            seen = x < 0
            for q in range(nt):
                if toks[q] == x:
                    seen = True
            if not seen:
                toks[nt] = x
                nt += 1
        vu = vec_units[li % hw.cores]
        while nt > 3:  # more tokens than wait slots: joined by barrier NOPs
            ready = max(token_ready[toks[0]], max(token_ready[toks[1]], token_ready[toks[2]]))
            token_ready[ntok] = issue(li, vu, dur[hw.nop_row], ready)
            count(li, hw.nop_row, 1)
            toks[0] = ntok
            ntok += 1
            for q in range(3, nt):
                toks[q - 2] = toks[q]
            nt -= 2
        ready = 0
        for q in range(nt):
            ready = max(ready, token_ready[toks[q]])
        row = s.l_setup_row[li]
        setup = issue(li, vu, dur[row], ready)
        count(li, row, 1)
        if kind == MAC:
            m = s.l_mac[li]
            token_ready[ntok] = mac(m, li, setup, mac_first[m], mac_resident[m])
            vtok[w_val[wo]] = ntok
            ntok += 1
        else:
            bo, bn, nloc = s.l_body_off[li], s.l_body_n[li], s.l_nloc[li]
            loc = np.empty(nloc + 1, np.int64)  # local token -> token (0: the setup)
            token_ready[ntok] = setup
            loc[0] = ntok
            for q in range(1, nloc + 1):
                loc[q] = ntok + q
            ntok += nloc + 1
            for k in range(bo, bo + bn):
                ready = 0
                for w in (b_w0[k], b_w1[k], b_w2[k]):
                    if w >= 0 and token_ready[loc[w]] > ready:
                        ready = token_ready[loc[w]]
                t1 = issue(li, dma if b_dma[k] else vu, dur[b_row[k]], ready)
                count(li, b_row[k], 1)
                sg = b_sig[k]
                if sg >= 0 and token_ready[loc[sg]] < t1:
                    token_ready[loc[sg]] = t1
            for j in range(wo, wo + wn):
                vtok[w_val[j]] = loc[w_loc[j]] if w_loc[j] >= 0 else -1
        for j in range(wo, wo + wn):  # spilled outputs go out to external memory
            v = w_val[j]
            if spilled[v]:
                row = s.v_store_row[v]
                token_ready[ntok] = issue(li, dma, dur[row], ready_of(vtok[v]))
                count(li, row, 1)
                vtok[v] = ntok
                ntok += 1
    for i in range(n_layers):
        if first[i] == np.iinfo(np.int64).max:
            first[i] = 0
    return first, last, counters


@njit(inline="always")
def _state(state, unit_free, rq_end, first_macro, M, nm, used, vec_units, blk, ref, dma,
           slot_time, S):  # fmt: skip
    """The layer's units and accumulators after block `blk`, relative to `ref` (with S > 0
    also the DMA unit and the S streaming slots)."""
    fc = rq_end.shape[1]
    q = 0
    for k in range(nm):
        state[q] = unit_free[(first_macro + k) % M] - ref
        q += 1
    for c in range(used.shape[0]):
        state[q] = unit_free[vec_units[c]] - ref if used[c] else 0
        q += 1
    for ct in range(fc):
        state[q + ct] = rq_end[blk % 2, ct] - ref
        state[q + fc + ct] = rq_end[(blk + 1) % 2, ct] - ref
    q += 2 * fc
    if S:
        state[q] = unit_free[dma] - ref
        for sl in range(S):
            state[q + 1 + sl] = slot_time[sl] - ref


@njit(inline="always")
def _shift(unit_free, rq_end, slot_time, slot_of, first_macro, M, nm, used, vec_units, k, d,
           dma, S):  # fmt: skip
    """The state `k` blocks later: everything `d` cycles on, the accumulator ring turned k
    times (with S > 0 the DMA unit and every streaming slot too)."""
    for q in range(nm):
        unit_free[(first_macro + q) % M] += d
    for c in range(used.shape[0]):
        if used[c]:
            unit_free[vec_units[c]] += d
    for ct in range(rq_end.shape[1]):
        a, b = rq_end[0, ct] + d, rq_end[1, ct] + d
        rq_end[0, ct], rq_end[1, ct] = (b, a) if k % 2 else (a, b)
    if S:
        unit_free[dma] += d
        for sl in range(S):
            slot_time[sl] += d
        return
    seen = np.zeros(slot_time.shape[0], np.bool_)  # streamed once: each slot of the layer
    for i in range(slot_of.shape[0]):
        s = slot_of[i]
        if s >= 0 and not seen[s]:
            seen[s] = True
            slot_time[s] += d


@njit(inline="always")
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a
