"""The machine's schedule of a whole model, without its instructions (a numba kernel).

The simulator's core (`sim/schedule.py: schedule`) walks the lowered program: every
instruction starts at max(its dispatch slot, its unit's in-order queue, the tokens it waits
on) and runs for its duration. The expensive part of a simulation is emitting those
instructions (a MAC layer issues one MVM per weight tile and pixel block). This kernel walks
the same program in the same order with the same rules, but a MAC layer is one entry that it
expands here: pixel blocks; per block the MVMs of every tile in the order lower/mac.py issues
them (on the macro the placement gave the tile, after the layer's setup, the tile's weight
load when it streams, and the REQUANT of its column tile two blocks earlier: the
double-buffered accumulator); one REQUANT per column tile on its core's vector unit; weight
loads through the streaming slots (one per tile per layer, or per tile per block when the
layer's tiles outnumber the slots), each after the last user of its slot; and the closing
NOPs. Everything else (host transfers, spill loads and stores, setup and barrier NOPs,
vector-layer instructions) is a plain entry. Durations are looked up by row in a table the
caller computed with the simulator's own `schedule` (plan.py), so the timing equations are
the simulator's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Stream(NamedTuple):
    """A program as the replay reads it (all int64 arrays). Plain entries: `kind` 0, unit,
    duration row, up to three waited tokens, signalled token, layer. MAC entries: `kind` 1,
    `row` = index into the mac_* arrays."""

    kind: np.ndarray
    unit: np.ndarray
    row: np.ndarray
    w0: np.ndarray
    w1: np.ndarray
    w2: np.ndarray
    sig: np.ndarray
    layer: np.ndarray
    # per MAC layer
    mac_tiles: np.ndarray
    mac_cols: np.ndarray  # column tiles
    mac_blocks: np.ndarray
    mac_mode: np.ndarray  # 0 resident, 1 streamed once, 2 streamed per pixel block
    mac_in_tok: np.ndarray
    mac_done_tok: np.ndarray
    mac_tile_off: np.ndarray  # into tile_* and order
    mac_ct_off: np.ndarray  # into ct_*
    mac_blk_off: np.ndarray  # into blk_*
    mac_vu_off: np.ndarray  # into vus (the vector units the layer uses, sorted)
    mac_nvu: np.ndarray
    mac_block_classes: np.ndarray  # distinct MVM block classes
    mac_n_classes: np.ndarray  # distinct REQUANT block sizes
    mac_mvm_base: np.ndarray  # row of (tile class 0, block class 0)
    mac_rq_base: np.ndarray
    mac_nop_row: np.ndarray
    # per tile (flat, column-tile major, as lower/tiling.tiles_for lists them)
    tile_macro: np.ndarray
    tile_ct: np.ndarray
    tile_class: np.ndarray
    tile_load_row: np.ndarray
    order: np.ndarray  # per MAC layer, the tiles of one pixel block in issue order
    ct_vu: np.ndarray
    ct_class: np.ndarray
    blk_class: np.ndarray
    blk_nclass: np.ndarray
    vus: np.ndarray


@njit(cache=True)
def _issue(state, unit_free, first, last, layer, unit, dur, ready, issue_cycles):
    """One instruction: start, end (state[0] is the dispatch index)."""
    t0 = state[0] * issue_cycles
    state[0] += 1
    if unit_free[unit] > t0:
        t0 = unit_free[unit]
    if ready > t0:
        t0 = ready
    t1 = t0 + dur
    unit_free[unit] = t1
    if t0 < first[layer]:
        first[layer] = t0
    if t1 > last[layer]:
        last[layer] = t1
    return t1


@njit(cache=True)
def _tok(token_ready, t):
    return token_ready[t] if t >= 0 else 0


@njit(cache=True)
def replay(s, dur, n_units, n_tokens, n_layers, issue_cycles, dma, slots):
    """(first start, last end) of every layer's instructions; `dur[row]` is an instruction
    duration, `slots` the streaming slots (lower/memory.py)."""
    unit_free = np.zeros(n_units, np.int64)
    token_ready = np.zeros(max(n_tokens, 1), np.int64)
    first = np.full(n_layers, np.iinfo(np.int64).max)
    last = np.zeros(n_layers, np.int64)
    state = np.zeros(2, np.int64)  # dispatch index, streaming cursor
    nslot = max(slots, 1)
    slot_time = np.zeros(nslot, np.int64)  # end of the finished group a slot waits for
    slot_pend = np.full(nslot, -1, np.int64)  # column tile of the current block's group
    for k in range(s.kind.shape[0]):
        lay = s.layer[k]
        if s.kind[k] == 0:
            ready = max(_tok(token_ready, s.w0[k]), _tok(token_ready, s.w1[k]))
            ready = max(ready, _tok(token_ready, s.w2[k]))
            t1 = _issue(state, unit_free, first, last, lay, s.unit[k], dur[s.row[k]], ready,
                        issue_cycles)  # fmt: skip
            sg = s.sig[k]
            if sg >= 0 and token_ready[sg] < t1:
                token_ready[sg] = t1
            continue
        m = s.row[k]
        T, fc, B, mode = s.mac_tiles[m], s.mac_cols[m], s.mac_blocks[m], s.mac_mode[m]
        to, co, bo = s.mac_tile_off[m], s.mac_ct_off[m], s.mac_blk_off[m]
        nbc, nnc = s.mac_block_classes[m], s.mac_n_classes[m]
        in_ready = _tok(token_ready, s.mac_in_tok[m])
        load_ready = np.zeros(T, np.int64)
        slot_of = np.full(T, -1, np.int64)
        grp = np.zeros(fc, np.int64)
        rq_end = np.zeros((2, fc), np.int64)
        if mode == 1:
            for i in range(T):
                load_ready[i] = _load(s, dur, state, unit_free, first, last, lay, dma,
                                      issue_cycles, nslot, slot_time, slot_pend, grp, slot_of,
                                      to + i, i)  # fmt: skip
        for blk in range(B):
            bc = s.blk_class[bo + blk]
            for ct in range(fc):
                grp[ct] = 0
            for j in range(T):
                i = s.order[to + j]
                ct = s.tile_ct[to + i]
                if mode == 2:
                    load_ready[i] = _load(s, dur, state, unit_free, first, last, lay, dma,
                                          issue_cycles, nslot, slot_time, slot_pend, grp,
                                          slot_of, to + i, i)  # fmt: skip
                ready = max(in_ready, load_ready[i])
                if blk >= 2 and rq_end[blk % 2, ct] > ready:
                    ready = rq_end[blk % 2, ct]
                row = s.mac_mvm_base[m] + s.tile_class[to + i] * nbc + bc
                t1 = _issue(state, unit_free, first, last, lay, s.tile_macro[to + i], dur[row],
                            ready, issue_cycles)  # fmt: skip
                if t1 > grp[ct]:
                    grp[ct] = t1
                if slot_of[i] >= 0:
                    slot_pend[slot_of[i]] = ct
            # the block's groups are complete: slots pointing at them hold their final ends
            for sl in range(nslot):
                if slot_pend[sl] >= 0:
                    slot_time[sl] = grp[slot_pend[sl]]
                    slot_pend[sl] = -1
            nc = s.blk_nclass[bo + blk]
            for ct in range(fc):
                row = s.mac_rq_base[m] + s.ct_class[co + ct] * nnc + nc
                rq_end[blk % 2, ct] = _issue(state, unit_free, first, last, lay, s.ct_vu[co + ct],
                                             dur[row], grp[ct], issue_cycles)  # fmt: skip
        done = 0
        for v in range(s.mac_nvu[m]):
            t1 = _issue(state, unit_free, first, last, lay, s.vus[s.mac_vu_off[m] + v],
                        dur[s.mac_nop_row[m]], 0, issue_cycles)  # fmt: skip
            if t1 > done:
                done = t1
        dt = s.mac_done_tok[m]
        if token_ready[dt] < done:
            token_ready[dt] = done
    for i in range(n_layers):
        if first[i] == np.iinfo(np.int64).max:
            first[i] = 0
    return first, last


@njit(cache=True)
def _load(s, dur, state, unit_free, first, last, lay, dma, issue_cycles, nslot, slot_time,
          slot_pend, grp, slot_of, t, i):  # fmt: skip
    """A LOAD_W of tile t (flat index i in its layer) into the next streaming slot, after the
    last MVM group that used the slot; returns its end."""
    slot = state[1] % nslot
    state[1] += 1
    wait = grp[slot_pend[slot]] if slot_pend[slot] >= 0 else slot_time[slot]
    t1 = _issue(state, unit_free, first, last, lay, dma, dur[s.tile_load_row[t]], wait,
                issue_cycles)  # fmt: skip
    slot_of[i] = slot
    return t1
