"""The analytic model of a model on any hardware: the lowering's plan without its instructions,
timed and counted by the simulator's own equations.

A `Planner` holds one model at one precision (its `Structure`) and, per hardware:

1. the memory plan (lower/memory.plan_memory) gives the spilled values (cached per SRAM size);
2. every MAC layer's tiles (lower/tiling), pixel blocks (lower/tiling.pixel_block), the classes
   of tiles and pixel blocks that issue identical instructions, and one representative
   instruction per class pair (cached per macro shape and accumulator);
3. the weight placement (lower/memory.place_weights) gives each MAC layer's first macro and
   whether its weights stay or stream;
4. the simulator's `schedule` runs the representative table, each row alone: the duration
   and counters of every distinct instruction shape (the core's `_duration` and `_count`);
5. `replay` walks the program with those durations (replay.py): per-layer spans, makespan and
   counters, which report/energy.py prices.

Vector layers keep their real instructions (structure.py); host transfers, spill loads and
stores, setup and barrier NOPs are rows of their own. tests/test_estimator_plan.py checks
spans, makespan and counters equal to the simulator's, including streamed weights, spilled
activations, several cores and dispatch-bound programs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.estimator.replay import ALIAS, INPUT, MAC, OUTPUT, VECTOR, Machine, Macs, Static, replay
from ndpsim.estimator.structure import Structure
from ndpsim.isa import Opcode, Unit, empty_program
from ndpsim.lower.lower import _units
from ndpsim.lower.memory import place_weights, plan_memory
from ndpsim.lower.tiling import Tile, groups_per_tile, input_bytes_for_block, pixel_block
from ndpsim.sim.run import timing_of
from ndpsim.sim.schedule import schedule

_I64 = np.int64
# The instruction fields a representative row sets (the others do not time or count).
ROW_FIELDS = ("op", "a0", "a2", "rows", "cols", "w_bits", "a_bits", "work", "bytes_in",
              "bytes_out")  # fmt: skip
_MAC_SHAPE = ("macro_rows", "macro_cols", "macro_column_bits", "accumulator_entries_per_macro")


def _rows(op: Opcode, n: int, **cols) -> np.ndarray:
    """n representative rows (ROW_FIELDS columns) of opcode `op`."""
    out = np.zeros((n, len(ROW_FIELDS)), _I64)
    out[:, 0] = int(op)
    for k, v in cols.items():
        out[:, ROW_FIELDS.index(k)] = v
    return out


_MVM, _RQ, _LOAD_W = int(Opcode.MVM), int(Opcode.REQUANT), int(Opcode.LOAD_W)


def _records(rows: np.ndarray) -> np.ndarray:
    rec = empty_program(len(rows))
    for j, f in enumerate(ROW_FIELDS):
        rec[f] = rows[:, j]
    rec["unit"] = np.arange(len(rec))  # each row alone on its own unit: its duration,
    rec["layer"] = np.arange(len(rec))  # and its own counter row
    return rec


def _classes(keys) -> tuple[list[int], list[int], list[int]]:
    """(first index of each distinct key, class of every key, keys per class), in order of
    first appearance."""
    index: dict = {}
    first: list[int] = []
    counts: list[int] = []
    cls = []
    for i, k in enumerate(keys):
        c = index.get(k)
        if c is None:
            c = index[k] = len(first)
            first.append(i)
            counts.append(0)
        counts[c] += 1
        cls.append(c)
    return first, cls, counts


@dataclass
class MacLocal:
    """One MAC layer on one macro shape: its tiles (flat, column-tile major as
    lower/tiling.tiles_for lists them), lower/mac.py's issue order within a pixel block (k-fold
    major: one gathered input block feeds every column tile of that fold), the classes of
    tiles and of pixel blocks that issue identical instructions, and the representative rows
    (MVM per tile and block class, REQUANT per column-tile and block size, LOAD_W per tile
    class) with the times each is issued."""

    tiles: int
    col_tiles: int
    blocks: int
    order: np.ndarray
    tile_ct: np.ndarray
    tile_class: np.ndarray
    ct_first: np.ndarray
    ct_class: np.ndarray
    blk_class: np.ndarray
    blk_nclass: np.ndarray
    block_classes: int
    n_classes: int
    tile_classes: int
    period: int  # the classes of the blocks but the last repeat every this many (0: never)
    mvm: list[tuple]  # representative rows (ROW_FIELDS)
    mvm_count: list[int]
    rq: list[tuple]
    rq_count: list[int]
    load: list[tuple]
    load_count: list[int]


@dataclass(frozen=True)
class _Tiling:
    """A MAC layer's tiles on one macro shape (lower/tiling.tiles_for), as classes."""

    reps: list[Tile]
    tile_class: np.ndarray
    tile_count: list[int]
    order: np.ndarray
    tile_ct: np.ndarray
    ct_first: np.ndarray
    nch: list[int]  # REQUANT channels of each column tile

    @property
    def cols_max(self) -> int:
        return max(t.cols for t in self.reps)


@lru_cache(maxsize=8192)
def _tiling(geom, rows: int, cols: int) -> _Tiling:
    G, K, cg, khw = geom.groups, geom.k_g, geom.cout_g, geom.kh * geom.kw
    per = groups_per_tile(geom, rows, cols)
    if per:  # block-diagonal: one fold, `per` groups a tile (fewer in the last)
        ng = [min(g + per, G) - g for g in range(0, G, per)]
        tfirst, tcls, tcount = _classes(ng)
        reps = [Tile(i * per, i * per + ng[i], 0, K, 0, cg) for i in tfirst]
        ct_first = order = tile_ct = np.arange(len(ng), dtype=_I64)
        return _Tiling(reps, np.asarray(tcls, _I64), tcount, order, tile_ct, ct_first,
                       [x * cg for x in ng])  # fmt: skip
    # each group folds into k-folds x column tiles
    n_kf, n_c = -(-K // rows), -(-cg // cols)
    folds = [(k0 % khw, min(rows, K - k0)) for k0 in range(0, K, rows)]
    clen = [min(cols, cg - c0) for c0 in range(0, cg, cols)]
    # an MVM's input channels depend on where its k-range starts within a kernel window
    ffirst, fcls, fcount = _classes(folds)
    cfirst, ccls, ccount = _classes(clen)
    ncc = len(cfirst)
    per_group = np.asarray(fcls, _I64)[None, :] * ncc + np.asarray(ccls, _I64)[:, None]
    reps = [Tile(0, 1, f * rows, f * rows + folds[f][1], c * cols, c * cols + clen[c])
            for f in ffirst for c in cfirst]  # fmt: skip
    ct_first = np.arange(G * n_c, dtype=_I64) * n_kf
    order = (ct_first[None, :] + np.arange(n_kf, dtype=_I64)[:, None]).ravel()
    return _Tiling(reps, np.tile(per_group.ravel(), G), [a * b * G for a in fcount for b in ccount],
                   order, np.repeat(np.arange(G * n_c, dtype=_I64), n_kf), ct_first,
                   clen * G)  # fmt: skip


def mac_local(geom, rows: int, cols: int, acc_entries: int, w_bits: int, in_bits: int,
              out_bits: int) -> MacLocal:  # fmt: skip
    """The MacLocal of a MAC layer (see the class); shared by every model with that layer."""
    px = pixel_block(geom, _tiling(geom, rows, cols).cols_max, acc_entries)
    return _mac_local(geom, rows, cols, px, w_bits, in_bits, out_bits)


@lru_cache(maxsize=8192)
def _mac_local(geom, rows: int, cols: int, px: int, w_bits: int, in_bits: int,
               out_bits: int) -> MacLocal:  # fmt: skip
    tl = _tiling(geom, rows, cols)
    npix = geom.pixels
    nblk = -(-npix // px)
    last_n = npix - (nblk - 1) * px
    # an MVM's input bytes depend on a block through its offset within an output row
    if px % geom.ow == 0:  # whole output rows: every block starts a row
        bfirst = [0] if last_n == px else [0, nblk - 1]
        bcls = np.zeros(nblk, _I64)
        bcls[-1] = len(bfirst) - 1
        bcount = [nblk] if last_n == px else [nblk - 1, 1]
        period = 1
    else:
        n = np.full(nblk, px, _I64)
        n[-1] = last_n
        _, first, inv, cnt = np.unique(((np.arange(nblk) * px) % geom.ow) * (px + 1) + n,
                                       return_index=True, return_inverse=True,
                                       return_counts=True)  # fmt: skip
        order = np.argsort(first)  # classes in order of first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        bfirst, bcls, bcount = first[order].tolist(), rank[inv.ravel()], cnt[order].tolist()
        period = geom.ow // math.gcd(px, geom.ow)  # the block offsets within a row come round
    bn = [px if k < nblk - 1 else last_n for k in bfirst]
    nvals = sorted({px, last_n})
    blk_nclass = np.full(nblk, nvals.index(px), _I64)
    blk_nclass[-1] = nvals.index(last_n)
    ncount = [nblk - 1 + (last_n == v) if v == px else 1 for v in nvals]
    # rows in ROW_FIELDS order: op, a0, a2, rows, cols, w_bits, a_bits, work, bytes_in, bytes_out
    rows_out = [(_MVM, 0, n_k, t.rows, t.cols, w_bits, in_bits, n_k * t.macs_per_vector,
                 input_bytes_for_block(geom, t, k * px, n_k, in_bits), 0)
                for t in tl.reps for k, n_k in zip(bfirst, bn, strict=True)]  # fmt: skip
    ct_vals = sorted(set(tl.nch))
    ct_class = np.searchsorted(np.asarray(ct_vals, _I64), np.asarray(tl.nch, _I64)).astype(_I64)
    ctcount = np.bincount(ct_class, minlength=len(ct_vals)).tolist()
    rq = [(_RQ, 0, nn, ch, 0, 0, out_bits, ch * nn, 0, (ch * nn * out_bits + 7) // 8)
          for ch in ct_vals for nn in nvals]  # fmt: skip
    load = [(_LOAD_W, 0, 0, 0, 0, 0, 0, 0, (t.rows * t.cols * w_bits + 7) // 8, 0)
            for t in tl.reps]  # fmt: skip
    blk_class = np.asarray(bcls, _I64)
    return MacLocal(
        len(tl.tile_class), len(tl.ct_first), nblk, tl.order, tl.tile_ct, tl.tile_class,
        tl.ct_first, ct_class, blk_class, blk_nclass, len(bfirst), len(nvals), len(tl.reps),
        period if 3 * period <= nblk - 1 else 0, rows_out,
        [a * b for a in tl.tile_count for b in bcount], rq,
        [a * b for a in ctcount for b in ncount], load, tl.tile_count,
    )  # fmt: skip


@dataclass
class Bundle:
    """The MAC layers of one model on one macro shape, and the model's representative table."""

    macs: Macs
    reps: np.ndarray  # INSTR_DTYPE records: the static rows, then the MAC layers' rows


@dataclass
class Evaluation:
    """The analytic model's answer for one (model, hardware)."""

    cycles: int
    first: np.ndarray  # per layer (Program.layers order)
    last: np.ndarray
    counters: np.ndarray  # [layer, counter]
    spilled: int  # spilled values
    resident: bool  # every layer's weights stay on the macros

    @property
    def spans(self) -> np.ndarray:
        return np.maximum(self.last - self.first, 0)


class Planner:
    """The analytic model of one model at one precision on any hardware (module doc)."""

    def __init__(self, st: Structure):
        self.st = st
        self.values = {v: i for i, v in enumerate(st.nbytes)}
        self.static, static_rows = _static(st, self.values)
        self.static_rows = static_rows
        self.n_tokens = int(2 * len(self.static.r_val) + len(self.static.w_val)
                            + self.static.l_nloc.sum() + 2 * len(st.layers) + 1)  # fmt: skip
        self.mac_info = [st.layers[li].mac for li in st.mac_layers]
        owners: dict[tuple, int] = {}
        for j, m in enumerate(self.mac_info):
            owners.setdefault(m.weight_key, j)
        self.owner_of = np.array([list(owners).index(m.weight_key) for m in self.mac_info], _I64)
        self.owners = list(owners.values())
        self.root = np.array([self.values[st.root.get(v, v)] for v in st.nbytes], _I64)
        self._spilled: dict[int, np.ndarray] = {}
        self._bundles: dict[tuple, Bundle] = {}

    def spilled(self, sram_bytes: int) -> np.ndarray:
        """Per value: 1 when it lives in external memory (lower/memory.plan_memory)."""
        out = self._spilled.get(sram_bytes)
        if out is None:
            st = self.st
            mem = plan_memory(st.order, st.nbytes, st.root, st.pinned, list(st.graph.outputs),
                              sram_bytes)  # fmt: skip
            root_spilled = np.zeros(len(self.values), np.int8)
            for v, ok in mem.on_chip.items():
                if not ok:
                    root_spilled[self.values[v]] = 1
            out = self._spilled[sram_bytes] = root_spilled[self.root]
        return out

    def bundle(self, hw: HardwareConfig) -> Bundle:
        """The MAC layers on `hw`'s macro shape (cached)."""
        key = tuple(getattr(hw, f) for f in _MAC_SHAPE)
        found = self._bundles.get(key)
        if found is not None:
            return found
        locs = [mac_local(m.geom, hw.macro_rows, hw.outputs_per_pass(m.w_bits),
                          hw.accumulator_entries_per_macro, m.w_bits, m.in_bits, m.out_bits)
                for m in self.mac_info]  # fmt: skip
        bundle = self._bundles[key] = _bundle(locs, self.static_rows)
        return bundle

    def evaluate(self, hw: HardwareConfig) -> Evaluation:
        """Latency, per-layer spans and counters of the model on `hw`."""
        bundle = self.bundle(hw)
        macs = bundle.macs
        wplan = place_weights([int(macs.m_tiles[j]) for j in self.owners], hw.total_macros,
                              hw.macro_weight_sets)  # fmt: skip
        first_macro = np.asarray(wplan.first_macro, _I64)[self.owner_of]
        resident = np.asarray(wplan.resident, np.bool_)[self.owner_of]
        classes, _, vec_units, dma = _units(hw)
        timing = timing_of(hw)
        machine = Machine(np.asarray(vec_units, _I64), dma, len(classes), hw.total_macros,
                          hw.macros_per_core, hw.cores, timing.instruction_issue_cycles,
                          wplan.stream_slots, 0)  # fmt: skip
        reps = bundle.reps
        crep, _, start, end = schedule(reps, timing, len(reps), 0, len(reps))
        spilled = self.spilled(hw.sram_bytes)
        first, last, counters = replay(self.static, macs, machine, spilled, first_macro, resident,
                                       end - start, crep, self.n_tokens)  # fmt: skip
        n_spilled = len(self._spilled_names(hw.sram_bytes))
        return Evaluation(int(last.max(initial=0)), first, last, counters, n_spilled,
                          bool(resident.all()))  # fmt: skip

    def _spilled_names(self, sram_bytes: int) -> list[str]:
        names = list(self.values)
        spilled = self.spilled(sram_bytes)
        return [names[i] for i in np.flatnonzero(spilled & (self.root == np.arange(len(names))))]


def _static(st: Structure, values: dict[str, int]) -> tuple[Static, np.ndarray]:
    """The program skeleton as arrays, and its representative rows: a plain NOP, host
    transfers, a LOAD_A and a STORE_A of every value, every layer's setup NOP and every
    vector-layer instruction."""
    rows = [_rows(Opcode.NOP, 1)]
    nrow = 1
    nb = np.array([st.nbytes[v] for v in values], _I64)
    v_load_row = nrow + np.arange(len(values), dtype=_I64)
    v_store_row = v_load_row + len(values)
    rows += [_rows(Opcode.LOAD_A, len(values), bytes_in=nb),
             _rows(Opcode.STORE_A, len(values), bytes_out=nb)]  # fmt: skip
    nrow += 2 * len(values)
    L = {k: [] for k in ("kind", "rd_off", "rd_n", "wr_off", "wr_n", "host_row", "setup_row",
                         "gate", "mac", "body_off", "body_n", "nloc")}  # fmt: skip
    r_val, w_val, w_loc = [], [], []
    body = {k: [] for k in ("row", "dma", "w0", "w1", "w2", "sig")}
    dma_class = int(Unit.DMA)
    n_mac = 0
    for info in st.layers:
        kind = {"input": INPUT, "output": OUTPUT, "alias": ALIAS, "mac": MAC,
                "vector": VECTOR}[info.kind]  # fmt: skip
        host_row, mac, body_off, body_n, nloc = -1, -1, len(body["row"]), 0, 0
        setup_row = -1
        loc_of: dict[int, int] = {}
        if info.setup is not None:
            rows.append(np.array([[int(info.setup[f]) for f in ROW_FIELDS]], _I64))
            setup_row = nrow
            nrow += 1
        if kind in (INPUT, OUTPUT):
            v = info.writes[0]
            op, field = (
                (Opcode.HOST_IN, "bytes_in") if kind == INPUT else (Opcode.HOST_OUT, "bytes_out")
            )
            rows.append(_rows(op, 1, **{field: st.nbytes[v]}))
            host_row = nrow
            nrow += 1
        elif kind == MAC:
            mac = n_mac
            n_mac += 1
        elif kind == VECTOR:
            ins = info.body
            loc_of = {info.setup_token: 0}
            for sg in ins["signal"].tolist():
                if sg >= 0 and sg not in loc_of:
                    loc_of[sg] = len(loc_of)
            nloc = len(loc_of) - 1
            for f, key in (("wait0", "w0"), ("wait1", "w1"), ("wait2", "w2"), ("signal", "sig")):
                for x in ins[f].tolist():
                    if x >= 0 and x not in loc_of:
                        raise RuntimeError(f"layer {info.name!r} waits on a token outside its body")
                    body[key].append(loc_of[x] if x >= 0 else -1)
            body["row"] += list(range(nrow, nrow + len(ins)))
            body["dma"] += (st.skeleton.unit_class[ins["unit"]] == dma_class).astype(int).tolist()
            rows.append(np.stack([ins[f].astype(_I64) for f in ROW_FIELDS], axis=1))
            nrow += len(ins)
            body_n = len(ins)
        for k, v in (("kind", kind), ("rd_off", len(r_val)), ("rd_n", len(info.reads)),
                     ("wr_off", len(w_val)), ("wr_n", len(info.writes)), ("host_row", host_row),
                     ("setup_row", setup_row), ("gate", values[info.gate] if info.gate else -1),
                     ("mac", mac), ("body_off", body_off), ("body_n", body_n),
                     ("nloc", nloc)):  # fmt: skip
            L[k].append(v)
        r_val += [values[v] for v in info.reads]
        w_val += [values[v] for v in info.writes]
        w_loc += [loc_of.get(st.final_token.get(v, -1), -1) for v in info.writes]
    a = lambda v: np.asarray(v, _I64)  # noqa: E731
    static = Static(*(a(L[k]) for k in L), a(r_val), a(w_val), a(w_loc),
                    *(a(body[k]) for k in body), v_load_row, v_store_row)  # fmt: skip
    return static, np.concatenate(rows)


def _bundle(locs: list[MacLocal], static_rows: np.ndarray) -> Bundle:
    """MacLocals concatenated behind the static rows (replay.Macs)."""
    base = len(static_rows)
    parts: list[tuple] = []
    cols = {k: [] for k in Macs._fields}
    counts: list[int] = [0] * base
    off = {"tile": 0, "ct": 0, "blk": 0}
    for loc in locs:
        mvm_base = base
        rq_base = mvm_base + len(loc.mvm)
        load_base = rq_base + len(loc.rq)
        base = load_base + len(loc.load)
        parts += loc.mvm + loc.rq + loc.load
        counts += loc.mvm_count + loc.rq_count + loc.load_count
        for k, v in (("m_tiles", loc.tiles), ("m_cols", loc.col_tiles), ("m_blocks", loc.blocks),
                     ("m_tile_off", off["tile"]), ("m_ct_off", off["ct"]),
                     ("m_blk_off", off["blk"]), ("m_nbc", loc.block_classes),
                     ("m_nnc", loc.n_classes), ("m_ntc", loc.tile_classes),
                     ("m_nrq", len(loc.rq)), ("m_mvm_base", mvm_base), ("m_rq_base", rq_base),
                     ("m_load_base", load_base), ("m_period", loc.period)):  # fmt: skip
            cols[k].append(v)
        for k in ("tile_ct", "tile_class", "order", "ct_first", "ct_class", "blk_class",
                  "blk_nclass"):  # fmt: skip
            cols[k].append(getattr(loc, k))
        off["tile"] += loc.tiles
        off["ct"] += loc.col_tiles
        off["blk"] += loc.blocks
    out = {}
    for k, v in cols.items():
        if k.startswith("m_"):
            out[k] = np.asarray(v, _I64)
        else:
            out[k] = np.concatenate(v).astype(_I64) if v else np.zeros(0, _I64)
    out["row_count"] = np.asarray(counts, _I64)
    rows = np.concatenate([static_rows, np.asarray(parts, _I64).reshape(-1, len(ROW_FIELDS))])
    return Bundle(Macs(**out), _records(rows))
