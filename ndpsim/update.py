"""What an in-place model update costs on the part (`ndpsim update OLD NEW`).

A model update that keeps the network's structure changes weights only. A "neural diff"
ships just the weights that changed and rewrites just the cells that hold them; a full reload
ships and writes every weight. Both are priced from the placement the lowering does
(docs/machine_model.md, "Model updates"):

- the **cells** are the weights as the macros hold them: quantized at the layer's weight bits
  (a float model's weights by the per-channel quantizer `bind` uses; a quantized model's own
  integers), in the lowering's tiles, each tile on its macro;
- a write programs one word of a tile row: `weight_write_word_bits / w_bits` weights. A
  sparse update writes each word that holds a changed weight, a full reload every word;
- the host sends per tile the cheaper of the whole tile and (address, word) pairs:
  `payload = sum over tiles of min(tile bytes, changed words x (2 + word bytes))`;
- time: the host link, `payload x 8 / host_link_mbit_per_s`, then the writes, macros in
  parallel, `weight_write_ns_per_word` each; energy: `written bits x
  weight_write_energy_pj_per_byte / 8` plus `payload x host_transfer_energy_pj_per_byte`;
- wear: an update writes a cell at most once, so the most-written cells survive
  `weight_cell_endurance_writes` updates; the share of cell bits written per update says how
  much of the array ages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ndpsim.config import HardwareConfig
from ndpsim.errors import UserError
from ndpsim.isa import Opcode
from ndpsim.lower import Program
from ndpsim.lower.bindings import ConvBinding
from ndpsim.quant.bind import Params
from ndpsim.session import Session

ADDRESS_BYTES = 2  # a word's address within its tile, in a sparse payload


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerUpdate(_Model):
    name: str
    weight_bits: int
    weights: int  # the layer's weights as the model states them (biases apart)
    changed_weights: int  # of them, those whose value differs in the new model
    changed_cells: int  # quantized weights that differ: the cells to rewrite
    tiles: int
    changed_tiles: int  # tiles holding at least one changed cell
    full_tiles: int  # tiles whose every weight changed
    changed_biases: int
    changed_scales: int  # per-channel requantization scales (registers) that differ
    written_words: int
    payload_bytes: int


class UpdateCost(_Model):
    """One way of bringing the part from the old model to the new one."""

    payload_bytes: int  # sent over the host link
    written_words: int
    written_bits: int
    host_link_us: float
    write_us: float  # the cell writes, macros in parallel
    total_us: float  # host link, then writes
    energy_uj: float  # cell writes + host transfer


class UpdateReport(_Model):
    old_model: str
    new_model: str
    hardware: str
    config_id: str
    weight_cell_technology: str
    weights: int
    changed_weights: int
    cell_bits: int  # weight bits the layers' tiles hold
    changed_cells: int
    tiles: int
    changed_tiles: int
    full_tiles: int  # every weight changed: the tile is written whole
    sparse_tiles: int  # some weights changed: written word by word
    changed_biases: int
    changed_scales: int
    sparse_update: UpdateCost
    full_reload: UpdateCost
    payload_saving: float  # 1 - sparse payload / full reload payload
    weight_cell_endurance_writes: float | None  # None: unlimited (SRAM)
    written_cell_share: float  # cell bits written per sparse update / cell_bits
    layers: list[LayerUpdate]


@dataclass(frozen=True)
class _Tile:
    extents: tuple[int, int, int, int, int, int]  # g0, g1, k0, k1, c0, c1
    macro: int


def _weight_layers(program: Program) -> list[ConvBinding]:
    """One binding per distinct weight matrix (a recurrent layer's steps share one)."""
    seen, out = set(), []
    for bd in program.bindings:
        if isinstance(bd, ConvBinding) and bd.slots["w_base"] not in seen:
            seen.add(bd.slots["w_base"])
            out.append(bd)
    return out


def _tiles_by_desc(program: Program) -> dict[int, list[_Tile]]:
    """Every MVM tile of the program once, by its layer's descriptor (macros come first in
    the unit table, so an MVM's unit is its macro)."""
    ins = program.instrs
    out: dict[int, list[_Tile]] = {}
    seen: set[int] = set()
    for i in np.flatnonzero(ins["op"] == int(Opcode.MVM)):
        t = int(ins["a0"][i])
        if t not in seen:
            seen.add(t)
            extents = tuple(int(v) for v in program.tiles[t])
            out.setdefault(int(ins["desc"][i]), []).append(_Tile(extents, int(ins["unit"][i])))
    return out


def _source_weights(program: Program, bd: ConvBinding) -> np.ndarray:
    """The weights as the model states them: a quantized model's integers, else floats."""
    g = program.graph
    if g.quant is not None and bd.geom.weight in g.quant.weights:
        return np.asarray(g.quant.weights[bd.geom.weight].q)
    return np.asarray(g.constants[bd.geom.weight])


def _check_same_structure(old: list[ConvBinding], new: list[ConvBinding]) -> None:
    if len(old) != len(new):
        raise UserError(f"the models have {len(old)} and {len(new)} weight layers: an update "
                        "changes weights, not structure (that is a full reload of a new model)")
    for a, b in zip(old, new, strict=True):
        sa = (a.geom.cout, a.geom.k_g, a.geom.groups)
        sb = (b.geom.cout, b.geom.k_g, b.geom.groups)
        if sa != sb:
            raise UserError(f"layers {a.node!r} {sa} and {b.node!r} {sb} (cout, K, groups) "
                            "differ: the models differ in structure, not only in weights")


def _tile_mask(changed: np.ndarray, extents: tuple, cout_g: int) -> tuple[np.ndarray, bool]:
    """The tile's changed cells as it sits in the macro, [rows, cols] (the groups of a packed
    tile on its diagonal, zeros between them), and whether every weight of it changed."""
    g0, g1, k0, k1, c0, c1 = extents
    k, c = k1 - k0, c1 - c0
    mask = np.zeros(((g1 - g0) * k, (g1 - g0) * c), bool)
    for i, g in enumerate(range(g0, g1)):
        mask[i * k : (i + 1) * k, i * c : (i + 1) * c] = changed[g * cout_g + c0 : g * cout_g + c1,
                                                                k0:k1].T  # fmt: skip
    every = all(changed[g * cout_g + c0 : g * cout_g + c1, k0:k1].all() for g in range(g0, g1))
    return mask, every


def _words(mask: np.ndarray, word_cells: int) -> int:
    """Words of the tile that hold a changed cell (a row's cells are contiguous)."""
    rows, cols = mask.shape
    n = -(-cols // word_cells)
    padded = np.zeros((rows, n * word_cells), bool)
    padded[:, :cols] = mask
    return int(padded.reshape(rows, n, word_cells).any(axis=2).sum())


def _cost(hw: HardwareConfig, payload: int, words: int, busy_ns: dict[int, float]) -> UpdateCost:
    host_us = payload * 8 / hw.host_link_mbit_per_s
    write_us = max(busy_ns.values(), default=0.0) / 1000
    bits = words * hw.weight_write_word_bits
    energy_pj = bits * hw.weight_write_energy_pj_per_byte / 8
    energy_pj += payload * hw.host_transfer_energy_pj_per_byte
    return UpdateCost(payload_bytes=payload, written_words=words, written_bits=bits,
                      host_link_us=host_us, write_us=write_us, total_us=host_us + write_us,
                      energy_uj=energy_pj / 1e6)  # fmt: skip


def _bound(session: Session, hw: HardwareConfig) -> tuple[Program, Params]:
    program = session.program(hw)
    return program, session.params(program, hw)[1]


def update_cost(old: Any, new: Any, hw: HardwareConfig, **import_options: Any) -> UpdateReport:
    """The cost of updating a part that runs `old` to `new` (ONNX paths, bytes or protos;
    `import_options`: a Session's input_shapes / input_values)."""
    s_old, s_new = Session(old, **import_options), Session(new, **import_options)
    (p_old, q_old), (p_new, q_new) = _bound(s_old, hw), _bound(s_new, hw)
    l_old, l_new = _weight_layers(p_old), _weight_layers(p_new)
    _check_same_structure(l_old, l_new)
    tiles = _tiles_by_desc(p_old)
    w_bits_of = {ly.name: ly.w_bits for ly in p_old.layers if ly.kind == "mac"}
    rows: list[LayerUpdate] = []
    busy: dict[int, float] = {}
    full_busy: dict[int, float] = {}
    full_words = full_payload = cell_bits = 0
    for a, b in zip(l_old, l_new, strict=True):
        geom, w_bits = a.geom, w_bits_of[a.node]
        n = geom.cout * geom.k_g
        wa, wb = a.slots["w_base"], b.slots["w_base"]
        changed = (q_old.weights[wa : wa + n] != q_new.weights[wb : wb + n]).reshape(
            geom.cout, geom.k_g
        )
        word_cells = max(1, hw.weight_write_word_bits // w_bits)
        words = payload = changed_tiles = full_tiles = 0
        for tile in tiles[a.desc]:
            mask, every = _tile_mask(changed, tile.extents, geom.cout_g)
            n_rows, n_cols = mask.shape
            dense = n_rows * -(-n_cols // word_cells)  # words of the whole tile
            dense_bytes = -(-n_rows * n_cols * w_bits // 8)
            hit = _words(mask, word_cells)
            word_bytes = -(-min(n_cols, word_cells) * w_bits // 8)  # a row may be under a word
            words += hit
            payload += min(dense_bytes, hit * (ADDRESS_BYTES + word_bytes)) if hit else 0
            changed_tiles += int(hit > 0)
            full_tiles += int(every)
            busy[tile.macro] = busy.get(tile.macro, 0.0) + hit * hw.weight_write_ns_per_word
            full_busy[tile.macro] = (full_busy.get(tile.macro, 0.0)
                                     + dense * hw.weight_write_ns_per_word)  # fmt: skip
            full_words += dense
            full_payload += dense_bytes
            cell_bits += mask.size * w_bits
        ba, bb, sa, sb = (a.slots["bias_base"], b.slots["bias_base"], a.slots["scale_base"],
                          b.slots["scale_base"])  # fmt: skip
        biases = (
            int(np.sum(q_old.weights[ba : ba + geom.cout] != q_new.weights[bb : bb + geom.cout]))
            if geom.bias
            else 0
        )
        src_a, src_b = _source_weights(p_old, a), _source_weights(p_new, b)
        rows.append(LayerUpdate(
            name=a.node, weight_bits=w_bits, weights=int(src_a.size),
            changed_weights=int(np.sum(src_a != src_b)), changed_cells=int(changed.sum()),
            tiles=len(tiles[a.desc]), changed_tiles=changed_tiles, full_tiles=full_tiles,
            changed_biases=biases,
            changed_scales=int(np.sum(q_old.fparams[sa : sa + geom.cout]
                                      != q_new.fparams[sb : sb + geom.cout])),
            written_words=words, payload_bytes=payload,
        ))  # fmt: skip
    sparse = _cost(hw, sum(r.payload_bytes for r in rows), sum(r.written_words for r in rows),
                   busy)  # fmt: skip
    full = _cost(hw, full_payload, full_words, full_busy)
    changed_tiles = sum(r.changed_tiles for r in rows)
    full_tiles = sum(r.full_tiles for r in rows)
    return UpdateReport(
        old_model=s_old.name,
        new_model=s_new.name,
        hardware=hw.name,
        config_id=hw.config_id(),
        weight_cell_technology=hw.weight_cell_technology,
        weights=sum(r.weights for r in rows),
        changed_weights=sum(r.changed_weights for r in rows),
        cell_bits=cell_bits,
        changed_cells=sum(r.changed_cells for r in rows),
        tiles=sum(r.tiles for r in rows),
        changed_tiles=changed_tiles,
        full_tiles=full_tiles,
        sparse_tiles=changed_tiles - full_tiles,
        changed_biases=sum(r.changed_biases for r in rows),
        changed_scales=sum(r.changed_scales for r in rows),
        sparse_update=sparse,
        full_reload=full,
        payload_saving=1 - sparse.payload_bytes / max(1, full.payload_bytes),
        weight_cell_endurance_writes=hw.weight_cell_endurance_writes,
        written_cell_share=min(1.0, sparse.written_bits / max(1, cell_bits)),
        layers=rows,
    )


def render(r: UpdateReport) -> str:
    """The update's cost as text: counts, then sparse update beside full reload."""
    s, f = r.sparse_update, r.full_reload
    life = (f"{r.weight_cell_endurance_writes:,.0f} updates before the most-written cells wear "
            "out" if r.weight_cell_endurance_writes else "unlimited (SRAM cells)")  # fmt: skip
    lines = [
        f"update {r.old_model} -> {r.new_model} on {r.hardware} "
        f"({r.weight_cell_technology} weight cells)",
        f"weights   {r.changed_weights:,} of {r.weights:,} changed "
        f"({r.changed_weights / max(1, r.weights):.2%}); cells to rewrite {r.changed_cells:,}; "
        f"biases {r.changed_biases:,}, requantization scales {r.changed_scales:,}",
        f"tiles     {r.changed_tiles:,} of {r.tiles:,} touched: {r.full_tiles:,} every weight "
        f"changed, {r.sparse_tiles:,} sparse",
        f"{'':<14}{'payload':>12}{'host link':>14}{'cell writes':>14}{'total':>14}{'energy':>12}",
    ]
    for name, c in (("sparse update", s), ("full reload", f)):
        lines.append(f"{name:<14}{c.payload_bytes:>10,} B{c.host_link_us:>11,.1f} us"
                     f"{c.write_us:>11,.1f} us{c.total_us:>11,.1f} us{c.energy_uj:>9.3f} uJ")
    lines.append(f"saving    {r.payload_saving:.1%} of the payload; cell bits written per update "
                 f"{r.written_cell_share:.2%}; endurance: {life}")
    return "\n".join(lines)
