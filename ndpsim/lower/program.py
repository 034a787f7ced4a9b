"""The lowered program: instructions, descriptors, tiles, the unit table, report rows, the
memory map, and the binding records that tell `bind` where quantization parameters go."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ndpsim.ir import Graph
from ndpsim.isa import DESC_FIELDS, DESC_WIDTH, INSTR_DTYPE, Opcode, Unit
from ndpsim.lower.bindings import Binding
from ndpsim.lower.kernels import Kernel


@dataclass
class Layer:
    """One report row: a graph node (with the ops fused into it) as the machine runs it."""

    name: str
    op_type: str
    kind: str  # "mac", "vector", "alias", "io"
    fused: tuple[str, ...] = ()
    macs: int = 0
    params: int = 0
    weight_bytes: int = 0
    tiles: int = 0
    folds_k: int = 0
    folds_cout: int = 0
    weights_resident: bool = True
    w_bits: int = 0
    a_bits: int = 0  # bits of the values the layer writes
    in_bits: int = 0  # bits of its (first) input: a MAC layer feeds them bit-serially
    peak_activation_bytes: int = 0
    output_shape: tuple[int, ...] = ()
    kernel: Kernel | None = None  # the executed unit (None for aliases): lower/kernels.py


@dataclass
class Placement:
    """Where a graph value lives: arena element offset, logical shape, bits, on-chip or spilled."""

    addr: int
    shape: tuple[int, ...]
    bits: int
    on_chip: bool = True
    token: int = -1  # token that is ready when the value is written

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return (self.size * self.bits + 7) // 8


@dataclass
class Program:
    instrs: np.ndarray
    desc: np.ndarray
    tiles: np.ndarray
    unit_class: np.ndarray
    unit_names: list[str]
    n_tokens: int
    layers: list[Layer]
    placements: dict[str, Placement]
    bindings: list[Binding]
    inputs: list[str]
    outputs: list[str]
    mem_size: int
    acc_size: int
    weight_size: int
    fparam_size: int
    weights_resident: bool
    weight_bytes: int
    peak_activation_bytes: int
    spilled: list[str]
    graph: Graph  # the graph after passes: what the program computes
    # MAC layers of the data branches this program does not run (Ifs on run-time data): their
    # weights stay resident beside it, so they count in the memory budget (Session._lower)
    idle_layers: list[Layer] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return len(self.unit_names)

    @property
    def kernels(self) -> list[Kernel]:
        """The units the machine executes as one, in program order (one per non-alias layer)."""
        return [layer.kernel for layer in self.layers if layer.kernel is not None]


_FIELDS = INSTR_DTYPE.names


class Builder:
    """Accumulates instructions (as tuples: one numpy conversion at the end, because lowering
    speed bounds sweep speed), descriptors, tiles, tokens and parameter slots."""

    def __init__(self, unit_class: list[Unit], unit_names: list[str]):
        self.unit_class = unit_class
        self.unit_names = unit_names
        self._instrs: list[tuple] = []
        self.descs: list[np.ndarray] = []
        self.tiles: list[tuple[int, int, int, int, int, int]] = []
        self.n_tokens = 0
        self.fparam_size = 0
        self.weight_size = 0
        self.luts: dict = {}  # function-unit table (lower/funcs.py Table) -> first float slot

    def token(self) -> int:
        self.n_tokens += 1
        return self.n_tokens - 1

    def fslots(self, n: int) -> int:
        """Reserve `n` float32 parameter slots; returns the first."""
        self.fparam_size += n
        return self.fparam_size - n

    def wslots(self, n: int) -> int:
        """Reserve `n` weight-arena elements; returns the first."""
        self.weight_size += n
        return self.weight_size - n

    def descriptor(self, desc_kind: str, /, **values: int) -> int:
        row = np.zeros(DESC_WIDTH, dtype=np.int64)
        cols = DESC_FIELDS[desc_kind]
        for name, value in values.items():
            row[cols[name]] = value
        self.descs.append(row)
        return len(self.descs) - 1

    def tile(self, g0: int, g1: int, k0: int, k1: int, c0: int, c1: int) -> int:
        self.tiles.append((g0, g1, k0, k1, c0, c1))
        return len(self.tiles) - 1

    def emit(
        self,
        op: Opcode,
        unit: int,
        layer: int,
        desc: int = 0,
        a0: int = 0,
        a1: int = 0,
        a2: int = 0,
        rows: int = 0,
        cols: int = 0,
        w_bits: int = 0,
        a_bits: int = 0,
        work: int = 0,
        bytes_in: int = 0,
        bytes_out: int = 0,
        wait0: int = -1,
        wait1: int = -1,
        wait2: int = -1,
        signal: int = -1,
    ) -> int:
        """Append one instruction (fields as in isa/isa.toml); returns its index."""
        self._instrs.append(
            (
                int(op),
                unit,
                layer,
                desc,
                a0,
                a1,
                a2,
                rows,
                cols,
                w_bits,
                a_bits,
                work,
                bytes_in,
                bytes_out,
                wait0,
                wait1,
                wait2,
                signal,
            )
        )
        return len(self._instrs) - 1

    def instructions(self) -> np.ndarray:
        return np.array(self._instrs, dtype=INSTR_DTYPE)

    def desc_table(self) -> np.ndarray:
        if not self.descs:
            return np.zeros((1, DESC_WIDTH), dtype=np.int64)
        return np.stack(self.descs)

    def tile_table(self) -> np.ndarray:
        return np.array(self.tiles or [(0, 0, 0, 0, 0, 0)], dtype=np.int64).reshape(-1, 6)
