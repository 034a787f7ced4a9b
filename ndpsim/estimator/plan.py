"""The analytic model of a model on any hardware: the lowering's plan without its instructions,
timed and counted by the simulator's own equations.

A `Planner` holds one model at one precision (its `Structure`) and, per hardware:

1. the memory plan (lower/memory.plan_memory) gives the spilled values (one plan serves a
   range of SRAM sizes: `Planner.spilled`);
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

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.estimator.macs import GEOM, geometry_row, plan_macs
from ndpsim.estimator.replay import ALIAS, INPUT, MAC, OUTPUT, VECTOR, Machine, Macs, Static, replay
from ndpsim.estimator.structure import Structure
from ndpsim.isa import Opcode, Unit, empty_program
from ndpsim.lower.lower import _units
from ndpsim.lower.memory import place_weights, plan_memory
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


def _records(rows: np.ndarray) -> np.ndarray:
    """Representative rows (ROW_FIELDS columns) as instructions, each on a unit and a counter
    row of its own (its duration and counts alone)."""
    rec = empty_program(len(rows))
    for j, f in enumerate(ROW_FIELDS):
        rec[f] = rows[:, j]
    rec["unit"] = rec["layer"] = np.arange(len(rec))
    return rec


_BLANK = empty_program(1)  # the default fields of a representative row (macs.plan_macs)


@dataclass
class Bundle:
    """The MAC layers of one model on one macro shape, and the model's representative table."""

    macs: Macs
    reps: np.ndarray  # INSTR_DTYPE records: the static rows, then the MAC layers' rows
    owner_tiles: list[int]  # tiles of each distinct weight set (place_weights' input)


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
        self.geo = np.array([geometry_row(m.geom, m.w_bits, m.in_bits, m.out_bits)
                             for m in self.mac_info], _I64).reshape(-1, len(GEOM))  # fmt: skip
        bits, index = np.unique(self.geo[:, GEOM.index("w_bits")], return_inverse=True)
        self._w_bits = (bits.tolist(), index)  # each layer's weight bits, as distinct values
        self._static_rec = _records(static_rows)
        # plan_memory's arguments but the size
        self._memory = (st.order, st.nbytes, st.root, st.pinned, list(st.graph.outputs))
        self._spill_plans: list[tuple[int, float, tuple[np.ndarray, int]]] = []
        self._spill_lo = self._spill_hi = np.zeros(0)
        self._bundles: dict[tuple, Bundle] = {}
        self._machines: dict[tuple, tuple] = {}  # (cores, macros a core) -> Machine's units

    def __getstate__(self) -> dict:
        """What a program cache keeps (predict.py): the arrays, not the structure's graph
        and skeleton program (the model's weights) nor the caches per hardware."""
        state = dict(self.__dict__)
        del state["st"]
        state.update(_bundles={}, _machines={}, _spill_plans=[], _spill_lo=np.zeros(0),
                     _spill_hi=np.zeros(0))  # fmt: skip
        return state

    def spilled(self, sram_bytes: int) -> tuple[np.ndarray, int]:
        """Per value: 1 when it lives in external memory (lower/memory.plan_memory), and the
        number of spilled buffers.

        A plan holds for a range of SRAM sizes, so one plan_memory serves many
        configurations: its first-fit holes are the same at any size but the last (the one
        reaching the end of SRAM), and an allocation there succeeds exactly when it ends
        within the size. So the plan at S is the plan at every S' from E (the end of the
        highest allocation) to S, and, when nothing spilled at S, at every S' >= E."""
        plans = self._spill_plans
        if plans:
            if len(self._spill_lo) != len(plans):  # the ranges as arrays, for a vector search
                self._spill_lo = np.array([p[0] for p in plans], np.float64)
                self._spill_hi = np.array([p[1] for p in plans], np.float64)
            hit = np.flatnonzero((self._spill_lo <= sram_bytes) & (sram_bytes <= self._spill_hi))
            if len(hit):
                return plans[hit[0]][2]
        mem = plan_memory(*self._memory, sram_bytes)
        root_spilled = np.zeros(len(self.values), np.int8)
        for v, ok in mem.on_chip.items():
            if not ok:
                root_spilled[self.values[v]] = 1
        n = int(root_spilled.sum())
        out = (root_spilled[self.root], n)
        nbytes = self._memory[1]
        end = max((off + max(1, nbytes[b]) for b, off in mem.sram_offset.items()), default=0)
        self._spill_plans.append((end, sram_bytes if n else math.inf, out))
        return out

    def bundle(self, hw: HardwareConfig) -> Bundle:
        """The MAC layers on `hw`'s macro shape (cached; macs.plan_macs)."""
        key = tuple(getattr(hw, f) for f in _MAC_SHAPE)
        found = self._bundles.get(key)
        if found is not None:
            return found
        bits, index = self._w_bits
        cols = np.array([hw.outputs_per_pass(b) for b in bits], _I64)[index]
        fields, *flat, reps, count = plan_macs(self.geo, cols, hw.macro_rows,
                                               hw.accumulator_entries_per_macro,
                                               self._static_rec, _BLANK)  # fmt: skip
        macs = Macs(*fields, *flat, count)
        bundle = self._bundles[key] = Bundle(macs, reps, macs.m_tiles[self.owners].tolist())
        return bundle

    def evaluate(self, hw: HardwareConfig) -> Evaluation:
        """Latency, per-layer spans and counters of the model on `hw`."""
        bundle = self.bundle(hw)
        macs = bundle.macs
        wplan = place_weights(bundle.owner_tiles, hw.total_macros, hw.macro_weight_sets)
        first_macro = np.asarray(wplan.first_macro, _I64)[self.owner_of]
        resident = np.asarray(wplan.resident, np.bool_)[self.owner_of]
        units = self._machines.get((hw.cores, hw.macros_per_core))
        if units is None:
            classes, _, vec_units, dma = _units(hw)
            units = (np.asarray(vec_units, _I64), dma, len(classes))
            self._machines[hw.cores, hw.macros_per_core] = units
        timing = timing_of(hw)
        machine = Machine(*units, hw.total_macros, hw.macros_per_core, hw.cores,
                          timing.instruction_issue_cycles, wplan.stream_slots, 0)  # fmt: skip
        reps = bundle.reps
        crep, _, start, end = schedule(reps, timing, len(reps), 0, len(reps))
        spilled, n_spilled = self.spilled(hw.sram_bytes)
        first, last, counters = replay(self.static, macs, machine, spilled, first_macro, resident,
                                       end - start, crep, self.n_tokens)  # fmt: skip
        return Evaluation(int(last.max(initial=0)), first, last, counters, n_spilled,
                          bool(resident.all()))  # fmt: skip


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
