"""Activation SRAM: liveness of every buffer and a first-fit allocation in SRAM bytes.
A buffer that does not fit when it is produced lives in external memory (spilled): its
producer writes it out and each consumer reads it back, and that traffic is counted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MemoryPlan:
    on_chip: dict[str, bool]  # root buffer -> fits in SRAM
    sram_offset: dict[str, int]  # root buffer -> byte offset in SRAM (on-chip ones)
    live_bytes_at: list[int]  # live activation bytes while node i runs
    peak_bytes: int


def plan_memory(
    order: list[tuple[str, list[str], list[str]]],
    nbytes: dict[str, int],
    root: dict[str, str],
    pinned: list[str],
    outputs: list[str],
    sram_bytes: int,
) -> MemoryPlan:
    """`order`: per node (name, input values, output values), in execution order.
    `root` maps an alias value to the buffer it shares; `pinned` buffers (graph inputs,
    constants) are live from the start; graph `outputs` stay live to the end."""
    last_use: dict[str, int] = {}
    first_def: dict[str, int] = {r: -1 for r in pinned}
    for i, (_, ins, outs) in enumerate(order):
        for v in ins:
            last_use[root.get(v, v)] = i
        for v in outs:
            first_def.setdefault(root.get(v, v), i)
    for v in outputs:
        last_use[root.get(v, v)] = len(order)
    free: list[tuple[int, int]] = [(0, sram_bytes)]  # sorted (offset, size) holes
    on_chip: dict[str, bool] = {}
    offset: dict[str, int] = {}
    live: dict[str, int] = {}
    live_at: list[int] = []

    def alloc(buf: str) -> None:
        size = max(1, nbytes[buf])
        for j, (off, hole) in enumerate(free):
            if hole >= size:
                free[j] = (off + size, hole - size)
                offset[buf], on_chip[buf] = off, True
                return
        on_chip[buf] = False

    def release(buf: str) -> None:
        if on_chip.get(buf):
            free.append((offset[buf], max(1, nbytes[buf])))
            free.sort()
            merged: list[tuple[int, int]] = []
            for off, size in free:
                if merged and merged[-1][0] + merged[-1][1] == off:
                    merged[-1] = (merged[-1][0], merged[-1][1] + size)
                elif size > 0:
                    merged.append((off, size))
            free[:] = merged

    for buf in pinned:
        alloc(buf)
        live[buf] = nbytes[buf]
    for i, (_, _, outs) in enumerate(order):
        for buf in [b for b in live if last_use.get(b, -1) < i and b not in pinned]:
            release(buf)
            del live[buf]
        for v in outs:
            buf = root.get(v, v)
            if buf not in live:
                alloc(buf)
                live[buf] = nbytes[buf]
        live_at.append(sum(live.values()))
    return MemoryPlan(on_chip, offset, live_at, max(live_at, default=sum(live.values())))


@dataclass
class WeightPlan:
    resident: list[bool]  # per MAC layer
    first_macro: list[int]  # per MAC layer: the macro of its first tile
    tiles: list[int]  # per MAC layer
    stream_slots: int  # weight sets reserved for streaming (0 when everything is resident)
    total_macros: int

    def macros(self, layer: int) -> list[int]:
        """The macro of each tile of MAC layer `layer` (flat order): consecutive macros from
        its first, round-robin."""
        first, m = self.first_macro[layer], self.total_macros
        return [(first + i) % m for i in range(self.tiles[layer])]


def place_weights(tiles_per_layer: list[int], total_macros: int, weight_sets: int) -> WeightPlan:
    """Weight-stationary placement. Tiles of a layer go to consecutive macros (so they run in
    parallel), each tile taking one weight set, round-robin with a cursor carried from layer
    to layer. If the model does not fit, up to two sets per macro are kept for streaming and
    layers that do not fit whole are streamed through them (tile i on macro i mod macros).

    Round-robin placement from macro 0 fills the macros evenly, so a resident layer never
    meets a full macro before the free sets run out: its tiles sit on consecutive macros
    from (tiles placed so far) mod macros."""
    need = sum(tiles_per_layer)
    reserve = 0 if need <= total_macros * weight_sets else min(2, weight_sets)
    free = (weight_sets - reserve) * total_macros
    placed = 0
    resident: list[bool] = []
    first: list[int] = []
    for n in tiles_per_layer:
        fits = free - placed >= n
        resident.append(fits)
        first.append(placed % total_macros if fits else 0)
        placed += n if fits else 0
    return WeightPlan(resident, first, list(tiles_per_layer), reserve * total_macros,
                      total_macros)  # fmt: skip
