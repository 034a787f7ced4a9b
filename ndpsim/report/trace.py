"""A Chrome / Perfetto trace of a simulated run (the JSON "traceEvents" format: open it in
ui.perfetto.dev or chrome://tracing).

One process, one track (thread) per unit instance, plus an "external memory" track (the DMA's
LOAD_W / LOAD_A / STORE_A transfers) and "layers" tracks. On a unit's track each layer is a
span (its first to last instruction there) holding spans of instruction groups: runs of
consecutive instructions of one opcode, so the file stays small. Units run their queues in
order, so these spans nest. Layer spans of the whole chip may overlap (a layer starts while
the previous one drains); overlapping ones go to further "layers" tracks. Times are in us.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ndpsim.config import HardwareConfig
from ndpsim.isa import Opcode
from ndpsim.lower.program import Program
from ndpsim.report.schema import SimulationReport
from ndpsim.sim.run import RunResult

_EXT_OPS = (int(Opcode.LOAD_W), int(Opcode.LOAD_A), int(Opcode.STORE_A))


def _span(name: str, tid: int, t0: int, t1: int, clock_mhz: float, cat: str, **args) -> dict:
    return {"name": name, "cat": cat, "ph": "X", "pid": 1, "tid": tid, "ts": t0 / clock_mhz,
            "dur": (t1 - t0) / clock_mhz, "args": args}  # fmt: skip


def _groups(idx: np.ndarray, program: Program, res: RunResult):
    """Runs of consecutive (in queue order) instructions of one layer and opcode with time."""
    ins = program.instrs
    run: list[int] = []
    for i in idx:
        if res.end[i] == res.start[i]:
            continue  # zero-time barriers
        if run and (ins["op"][i] != ins["op"][run[0]] or ins["layer"][i] != ins["layer"][run[0]]):
            yield run
            run = []
        run.append(int(i))
    if run:
        yield run


def _op_name(program: Program, i: int) -> str:
    op = Opcode(int(program.instrs["op"][i]))
    return "setup" if op == Opcode.NOP else op.name


def build_trace(
    program: Program, res: RunResult, hw: HardwareConfig, report: SimulationReport
) -> dict:
    """The trace as a dict ({"traceEvents": [...], "displayTimeUnit": "ns", ...})."""
    f = hw.clock_mhz
    ins = program.instrs
    ext_tid, lay_tid = len(program.unit_names), len(program.unit_names) + 1
    lanes: list[int] = []  # end cycle of each "layers" track; a new track when all overlap
    lane_of = []
    for lay in report.layers:
        lane = next((k for k, end in enumerate(lanes) if lay.start_cycle >= end), len(lanes))
        lanes += [0] * (lane + 1 - len(lanes))
        lanes[lane] = max(lanes[lane], lay.end_cycle) if lay.cycles > 0 else lanes[lane]
        lane_of.append(lane)
    names = [*program.unit_names, "external memory"]
    names += ["layers" + (f" ({k + 1})" if k else "") for k in range(max(1, len(lanes)))]
    ev: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": 1,
         "args": {"name": f"ndpsim {report.model} on {hw.name} ({f:g} MHz, {hw.voltage_v:g} V)"}},
    ]  # fmt: skip
    for tid, name in enumerate(names):
        ev.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}})
        ev.append({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid,
                   "args": {"sort_index": tid}})  # fmt: skip
    order = np.argsort(res.start, kind="stable")
    tracks = [(u, order[ins["unit"][order] == u]) for u in range(len(program.unit_names))]
    tracks.append((ext_tid, order[np.isin(ins["op"][order], _EXT_OPS)]))
    for tid, idx in tracks:
        for layer in np.unique(ins["layer"][idx]):
            mine = idx[ins["layer"][idx] == layer]
            mine = mine[res.end[mine] > res.start[mine]]
            if not mine.size:
                continue
            lname = program.layers[int(layer)].name
            ev.append(_span(lname, tid, int(res.start[mine].min()), int(res.end[mine].max()), f,
                            "layer", layer=lname))  # fmt: skip
            for g in _groups(mine, program, res):
                name = _op_name(program, g[0]) + (f" x{len(g)}" if len(g) > 1 else "")
                ev.append(_span(name, tid, int(res.start[g[0]]), int(res.end[g[-1]]), f,
                                "instructions", layer=lname, instructions=len(g),
                                cycles=int(res.end[g[-1]] - res.start[g[0]])))  # fmt: skip
    for lay, lane in zip(report.layers, lane_of, strict=True):
        if lay.cycles > 0:
            ev.append(_span(lay.name, lay_tid + lane, lay.start_cycle, lay.end_cycle, f, "layer",
                            op=lay.op_type, bound=lay.bound, cycles=lay.cycles, macs=lay.macs,
                            energy_uj=round(lay.energy_uj, 6)))  # fmt: skip
    other = {"model": report.model, "hardware": hw.name, "config_id": hw.config_id(),
             "latency_us": report.latency_us, "energy_uj": report.energy_uj}  # fmt: skip
    return {"traceEvents": ev, "displayTimeUnit": "ns", "otherData": other}


def write_trace(trace: dict, path: Path) -> None:
    path.write_text(json.dumps(trace, separators=(",", ":")) + "\n")

