"""The analytic model of one (model, hardware) pair: the lowering's plan without its
instructions, timed by the simulator's own equations.

1. `structural_plan` (once per model structure and hardware structure) follows lower/lower.py's
   driver layer by layer: host transfers, spill loads (LOAD_A) before a layer that reads a
   spilled value, the setup NOP (after barrier NOPs when a layer waits on more than three
   tokens), the layer's body and the spill store (STORE_A) of a spilled output; the memory
   plan (lower/memory.plan_memory), weight tiles (lower/tiling.tiles_for), weight placement
   (lower/memory.place_weights) and pixel blocks (lower/tiling.pixel_block) are the
   lowering's functions. Vector-layer bodies are their real instructions (structure.py); a
   MAC layer is a compact description that `replay` expands (tiles, classes of tiles and of
   pixel blocks, streaming mode). Every distinct instruction shape becomes one row of a
   *representative* table.
2. `evaluate` runs the simulator's `schedule` on the representative table (each row alone:
   its duration and the counters it bumps, by the core's `_duration` and `_count`), replays
   the program's dependencies with those durations (replay.py), and prices the counters
   (each row's times its multiplicity) with report/energy.py.

The result is the simulator's latency, per-layer spans and counters; tests/test_estimator_plan.py
checks them equal to the simulator's on models and hardware where weights stream and
activations spill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.estimator.replay import Stream, replay
from ndpsim.estimator.structure import Structure
from ndpsim.isa import INSTR_DTYPE, N_COUNTERS, Opcode, Unit, empty_program
from ndpsim.lower.lower import _units
from ndpsim.lower.memory import place_weights, plan_memory
from ndpsim.lower.tiling import Tile, input_bytes_for_block, pixel_block, tiles_for
from ndpsim.report.energy import COMPONENTS, clock_pj, dynamic_pj, static_pj
from ndpsim.sim.run import timing_of
from ndpsim.sim.schedule import schedule

_NOP, _MVM, _RQ = int(Opcode.NOP), int(Opcode.MVM), int(Opcode.REQUANT)
_LOAD_W, _LOAD_A, _STORE_A = int(Opcode.LOAD_W), int(Opcode.LOAD_A), int(Opcode.STORE_A)
_HOST_IN, _HOST_OUT = int(Opcode.HOST_IN), int(Opcode.HOST_OUT)


@dataclass
class MacTiling:
    """The tiles of one MAC layer on one macro shape, grouped into classes: tiles of a class
    issue identical MVMs for a pixel block (same rows, columns, MACs per vector and input
    channels) and identical weight loads."""

    col_tiles: list[list[Tile]]
    tile_class: np.ndarray  # per flat tile
    reps: list[Tile]  # one tile per class
    class_count: np.ndarray
    ct_nch: np.ndarray  # REQUANT channels of each column tile
    ct_ch0: np.ndarray
    order: np.ndarray  # flat tile indices of one pixel block, in issue order
    cols_max: int


def mac_tiling(geom, rows: int, cols: int) -> MacTiling:
    """Tiles (lower/tiling.tiles_for), their classes and lower/mac.py's issue order: k-fold
    major, one input block broadcast to every column tile of that fold."""
    col_tiles = tiles_for(geom, rows, cols)
    flat = [t for ct in col_tiles for t in ct]
    khw = geom.kh * geom.kw
    # an MVM's input channels depend on where its k-range starts within a kernel window
    keys = [(t.g1 - t.g0, t.k0 % khw, t.k1 - t.k0, t.c1 - t.c0) for t in flat]
    index: dict[tuple, int] = {}
    cls = np.array([index.setdefault(k, len(index)) for k in keys], np.int64)
    reps: list[Tile] = [None] * len(index)  # type: ignore[list-item]
    for t, c in zip(flat, cls.tolist(), strict=True):
        if reps[c] is None:
            reps[c] = t
    offsets = np.cumsum([0] + [len(ct) for ct in col_tiles])
    n_kf = max(len(ct) for ct in col_tiles)
    order = [
        int(offsets[ct_i]) + kf
        for kf in range(n_kf)
        for ct_i, ktiles in enumerate(col_tiles)
        if kf < len(ktiles)
    ]
    cout_g = geom.cout_g
    ch0 = np.array([ct[0].g0 * cout_g + ct[0].c0 for ct in col_tiles], np.int64)
    nch = np.array([(ct[0].g1 - 1) * cout_g + ct[0].c1 for ct in col_tiles], np.int64) - ch0
    return MacTiling(col_tiles, cls, reps, np.bincount(cls), nch, ch0,
                     np.array(order, np.int64), max(t.cols for t in flat))  # fmt: skip


class _Table:
    """Representative instructions and, per row, the layer and multiplicity of its counts."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.count_layer: list[int] = []
        self.count_row: list[int] = []
        self.count_n: list[int] = []

    def add(self, op: int, **f) -> int:
        self.rows.append((op, f))
        return len(self.rows) - 1

    def count(self, layer: int, row: int, n: int) -> None:
        if n:
            self.count_layer.append(layer)
            self.count_row.append(row)
            self.count_n.append(n)

    def records(self) -> np.ndarray:
        out = empty_program(len(self.rows))
        for i, (op, f) in enumerate(self.rows):
            out[i]["op"] = op
            for k, v in f.items():
                out[i][k] = v
        out["unit"] = np.arange(len(out))  # each row alone on its own unit: its duration
        out["layer"] = np.arange(len(out))  # and its own counter row
        return out


@dataclass
class StructuralPlan:
    """Everything of one (model, hardware structure) but the durations."""

    stream: Stream
    reps: np.ndarray  # INSTR_DTYPE
    count_layer: np.ndarray
    count_row: np.ndarray
    count_n: np.ndarray
    n_units: int
    n_tokens: int
    n_layers: int
    dma: int
    slots: int
    spilled: list[str]
    resident: bool


class _Builder:
    """Plain stream entries and MAC layer descriptions, in program order."""

    def __init__(self) -> None:
        self.plain = {k: [] for k in ("kind", "unit", "row", "w0", "w1", "w2", "sig", "layer")}
        self.mac = {k: [] for k in Stream._fields if k.startswith("mac_")}
        self.arr = {k: [] for k in ("tile_macro", "tile_ct", "tile_class", "tile_load_row",
                                    "order", "ct_vu", "ct_class", "blk_class", "blk_nclass",
                                    "vus")}  # fmt: skip
        self.n_tokens = 0

    def token(self) -> int:
        self.n_tokens += 1
        return self.n_tokens - 1

    def entry(self, unit: int, row: int, layer: int, waits=(), sig: int = -1) -> None:
        w = list(waits) + [-1, -1, -1]
        for k, v in zip(self.plain, (0, unit, row, w[0], w[1], w[2], sig, layer), strict=True):
            self.plain[k].append(v)

    def stream(self) -> Stream:
        def a(v):
            return np.asarray(v, np.int64)

        fields = {k: a(v) for k, v in self.plain.items()}
        fields.update({k: a(v) for k, v in self.mac.items()})
        fields.update({k: a(np.concatenate(v) if v else []) for k, v in self.arr.items()})
        return Stream(**fields)


def structural_plan(st: Structure, hw: HardwareConfig, tiling_cache: dict | None = None):
    """The plan of `st` on `hw`'s structure (see the module doc)."""
    tiling_cache = {} if tiling_cache is None else tiling_cache
    classes, _, vec_units, dma = _units(hw)
    mem = plan_memory(st.order, st.nbytes, st.root, st.pinned, list(st.graph.outputs),
                      hw.sram_bytes)  # fmt: skip
    on_chip = lambda v: mem.on_chip.get(st.root.get(v, v), True)  # noqa: E731
    # -- MAC tiling and weight placement (lower/mac_layer.plan_macs' inputs)
    tilings: dict[int, MacTiling] = {}
    first_use: dict[tuple, int] = {}
    for li in st.mac_layers:
        m = st.layers[li].mac
        cols = hw.outputs_per_pass(m.w_bits)
        key = (m.geom, hw.macro_rows, cols)
        if key not in tiling_cache:
            tiling_cache[key] = mac_tiling(m.geom, hw.macro_rows, cols)
        tilings[li] = tiling_cache[key]
        first_use.setdefault(m.weight_key, li)
    owners = list(first_use.values())
    wplan = place_weights([len(tilings[li].tile_class) for li in owners], hw.total_macros,
                          hw.macro_weight_sets)  # fmt: skip
    wslot = {key: j for j, key in enumerate(first_use)}
    # -- the program, in the driver's order
    t = _Table()
    b = _Builder()
    setup_row = t.add(_NOP, a0=1)
    nop_row = t.add(_NOP)
    tok: dict[str, int] = {}  # value -> token of its latest writer (lowering's Placement.token)
    for info in st.layers:
        li = info.index
        if info.kind == "input":
            v = info.writes[0]
            row = t.add(_HOST_IN, bytes_in=st.nbytes[v])
            t.count(li, row, 1)
            tok[v] = b.token()
            b.entry(dma, row, li, sig=tok[v])
            continue
        if info.kind == "output":
            v = info.reads[0]
            row = t.add(_HOST_OUT, bytes_out=st.nbytes[v])
            t.count(li, row, 1)
            b.entry(dma, row, li, (tok.get(v, -1),))
            continue
        if info.kind == "alias":
            tok[info.writes[0]] = tok.get(info.reads[0], -1)
            continue
        for v in info.reads:  # spilled inputs come back first, one LOAD_A per read
            if not on_chip(v):
                row = t.add(_LOAD_A, bytes_in=st.nbytes[v])
                t.count(li, row, 1)
                new = b.token()
                b.entry(dma, row, li, (tok.get(v, -1),), new)
                tok[v] = new
        vu = vec_units[li % hw.cores]
        toks = list(dict.fromkeys(x for x in (tok.get(v, -1) for v in info.reads) if x >= 0))
        while len(toks) > 3:
            new = b.token()
            b.entry(vu, nop_row, li, toks[:3], new)
            t.count(li, nop_row, 1)
            toks = [new, *toks[3:]]
        setup = b.token()
        b.entry(vu, setup_row, li, toks, setup)
        t.count(li, setup_row, 1)
        if info.kind == "mac":
            done = b.token()
            _mac(b, t, st, hw, info, tilings[li], wplan, wslot, setup, done, vec_units,
                 nop_row)  # fmt: skip
            tok[info.writes[0]] = done
        else:
            _vector(b, t, st, info, setup, vu, dma, classes, tok)
        for v in info.writes:
            if not on_chip(v):
                row = t.add(_STORE_A, bytes_out=st.nbytes[v])
                t.count(li, row, 1)
                new = b.token()
                b.entry(dma, row, li, (tok.get(v, -1),), new)
                tok[v] = new
    return StructuralPlan(
        b.stream(), t.records(), np.asarray(t.count_layer, np.int64),
        np.asarray(t.count_row, np.int64), np.asarray(t.count_n, np.int64), len(classes),
        b.n_tokens, len(st.layers), dma, wplan.stream_slots,
        [v for v, ok in mem.on_chip.items() if not ok], all(wplan.resident),
    )  # fmt: skip


def _vector(b: _Builder, t: _Table, st: Structure, info, setup: int, vu: int, dma: int,
            classes, tok: dict[str, int]) -> None:  # fmt: skip
    """A vector layer's own instructions, its skeleton tokens renamed: the skeleton's setup
    token becomes this setup, every token the body signals a new one."""
    rename = {info.setup_token: setup}
    skel_class = st.skeleton.unit_class
    for ins in info.body:
        row = t.add(int(ins["op"]), **{k: int(ins[k]) for k in _VEC_FIELDS})
        t.count(info.index, row, 1)
        waits = []
        for w in (int(ins["wait0"]), int(ins["wait1"]), int(ins["wait2"])):
            if w >= 0 and w not in rename:
                raise RuntimeError(f"layer {info.name!r} waits on a token outside its body")
            waits.append(rename[w] if w >= 0 else -1)
        sig = int(ins["signal"])
        if sig >= 0:
            rename.setdefault(sig, b.token())
        unit = dma if skel_class[int(ins["unit"])] == int(Unit.DMA) else vu
        b.entry(unit, row, info.index, waits, rename[sig] if sig >= 0 else -1)
    for v in info.writes:
        final = st.final_token.get(v, -1)
        tok[v] = rename.get(final, -1) if final >= 0 else -1


_VEC_FIELDS = ("desc", "a0", "a1", "a2", "rows", "cols", "w_bits", "a_bits", "work", "bytes_in",
               "bytes_out")  # fmt: skip


def _mac(b: _Builder, t: _Table, st: Structure, hw: HardwareConfig, info, tl: MacTiling,
         wplan, wslot, setup: int, done: int, vec_units, nop_row: int) -> None:  # fmt: skip
    """A MAC layer (lower/mac.py: emit_mac) as one replay entry and its instruction rows."""
    m, li = info.mac, info.index
    geom = m.geom
    w = wslot[m.weight_key]
    macros = np.asarray(wplan.macro_of_tile[w], np.int64)
    resident = wplan.resident[w]
    T = len(tl.tile_class)
    mode = 0 if resident else (2 if T > wplan.stream_slots else 1)
    px = pixel_block(geom, tl.cols_max, hw.accumulator_entries_per_macro)
    npix = geom.pixels
    p0 = np.arange(0, npix, px, dtype=np.int64)
    n = np.minimum(px, npix - p0)
    # an MVM's input bytes depend on the block through its offset within an output row
    bkey = (p0 % geom.ow) * (px + 1) + n
    _, bfirst, bclass = np.unique(bkey, return_index=True, return_inverse=True)
    nvals, ncls = np.unique(n, return_inverse=True)
    mvm_base = len(t.rows)
    for c, tile in enumerate(tl.reps):
        for k in bfirst.tolist():
            nk = int(n[k])
            t.add(_MVM, a2=nk, rows=tile.rows, cols=tile.cols, w_bits=m.w_bits, a_bits=m.in_bits,
                  work=nk * tile.macs_per_vector,
                  bytes_in=input_bytes_for_block(geom, tile, int(p0[k]), nk, m.in_bits))  # fmt: skip
    bcount = np.bincount(bclass.ravel(), minlength=len(bfirst))
    for c in range(len(tl.reps)):
        for k in range(len(bfirst)):
            t.count(li, mvm_base + c * len(bfirst) + k, int(tl.class_count[c] * bcount[k]))
    ct_vals, ct_cls = np.unique(tl.ct_nch, return_inverse=True)
    rq_base = len(t.rows)
    ncount = np.bincount(ncls.ravel(), minlength=len(nvals))
    ctcount = np.bincount(ct_cls.ravel(), minlength=len(ct_vals))
    for ci, nch in enumerate(ct_vals.tolist()):
        for ni, nn in enumerate(nvals.tolist()):
            row = t.add(_RQ, a2=nn, rows=nch, a_bits=m.out_bits, work=nch * nn,
                        bytes_out=(nch * nn * m.out_bits + 7) // 8)  # fmt: skip
            t.count(li, row, int(ctcount[ci] * ncount[ni]))
    load_rows = np.full(len(tl.reps), -1, np.int64)
    if mode:
        for c, tile in enumerate(tl.reps):
            load_rows[c] = t.add(_LOAD_W, bytes_in=(tile.rows * tile.cols * m.w_bits + 7) // 8)
            t.count(li, int(load_rows[c]), int(tl.class_count[c]) * (len(p0) if mode == 2 else 1))
    offsets = np.cumsum([0] + [len(ct) for ct in tl.col_tiles])[:-1]
    ct_vu = np.asarray(vec_units, np.int64)[macros[offsets] // hw.macros_per_core]
    vus = np.unique(ct_vu)
    t.count(li, nop_row, len(vus))
    a = b.arr
    ac = b.mac
    ac["mac_tile_off"].append(sum(len(x) for x in a["tile_macro"]))
    ac["mac_ct_off"].append(sum(len(x) for x in a["ct_vu"]))
    ac["mac_blk_off"].append(sum(len(x) for x in a["blk_class"]))
    ac["mac_vu_off"].append(sum(len(x) for x in a["vus"]))
    for k, v in (("mac_tiles", T), ("mac_cols", len(tl.col_tiles)), ("mac_blocks", len(p0)),
                 ("mac_mode", mode), ("mac_in_tok", setup), ("mac_done_tok", done),
                 ("mac_nvu", len(vus)), ("mac_block_classes", len(bfirst)),
                 ("mac_n_classes", len(nvals)), ("mac_mvm_base", mvm_base),
                 ("mac_rq_base", rq_base), ("mac_nop_row", nop_row)):  # fmt: skip
        ac[k].append(v)
    ct_of_tile = np.repeat(np.arange(len(tl.col_tiles)), [len(ct) for ct in tl.col_tiles])
    a["tile_macro"].append(macros)
    a["tile_ct"].append(ct_of_tile)
    a["tile_class"].append(tl.tile_class)
    a["tile_load_row"].append(load_rows[tl.tile_class])
    a["order"].append(tl.order)
    a["ct_vu"].append(ct_vu)
    a["ct_class"].append(ct_cls.ravel().astype(np.int64))
    a["blk_class"].append(bclass.ravel().astype(np.int64))
    a["blk_nclass"].append(ncls.ravel().astype(np.int64))
    a["vus"].append(vus)
    b.plain["kind"].append(1)
    b.plain["unit"].append(-1)
    b.plain["row"].append(len(ac["mac_tiles"]) - 1)
    for k in ("w0", "w1", "w2", "sig"):
        b.plain[k].append(-1)
    b.plain["layer"].append(li)


@dataclass
class Evaluation:
    """The analytic model's answer for one (model, hardware)."""

    cycles: int
    first: np.ndarray  # per layer
    last: np.ndarray
    counters: np.ndarray  # [layer, counter]
    dynamic_pj: np.ndarray  # per layer (clock energy over its span included, as reports do)
    energy_pj: float  # the model: dynamic + clock + static over the makespan

    @property
    def spans(self) -> np.ndarray:
        return np.maximum(self.last - self.first, 0)


def evaluate(plan: StructuralPlan, hw: HardwareConfig) -> Evaluation:
    """Durations and counts of the plan's rows on `hw` (the simulator's `schedule`), the
    replayed schedule, and energy priced as report/energy.py prices counters."""
    timing = timing_of(hw)
    reps = plan.reps
    counters_rep, _, start, end = schedule(reps, timing, len(reps), 0, len(reps))
    dur = end - start
    first, last = replay(plan.stream, dur, plan.n_units, plan.n_tokens, plan.n_layers,
                         timing.instruction_issue_cycles, plan.dma, plan.slots)  # fmt: skip
    counters = np.zeros((plan.n_layers, N_COUNTERS), np.int64)
    np.add.at(counters, plan.count_layer, counters_rep[plan.count_row] * plan.count_n[:, None])
    cycles = int(last.max(initial=0))
    dyn = dynamic_pj(counters, hw)
    span = np.maximum(last - first, 0)
    layer_dyn = sum(dyn[c] for c in dyn) + clock_pj(span, hw)
    total = float(sum(dyn[c].sum() for c in dyn) + clock_pj(cycles, hw) + static_pj(cycles, hw))
    return Evaluation(cycles, first, last, counters, layer_dyn, total)


def energy_components(ev: Evaluation, hw: HardwareConfig) -> dict[str, float]:
    """The model's energy by report component (pJ)."""
    dyn = dynamic_pj(ev.counters, hw)
    parts = {c: float(v.sum()) for c, v in dyn.items()}
    parts["clock"] = float(clock_pj(ev.cycles, hw))
    parts["leakage"] = float(static_pj(ev.cycles, hw))
    return {c: parts[c] for c in COMPONENTS}


__all__ = ["INSTR_DTYPE", "math", "structural_plan", "evaluate", "Evaluation", "StructuralPlan"]
