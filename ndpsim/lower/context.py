"""What an op's emitter is handed by the lowering driver: the node, where its values live, the
units it may use and the report row (layer) it fills."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ndpsim.config import HardwareConfig
from ndpsim.ir import Graph, Node
from ndpsim.lower.program import Layer, Placement
from ndpsim.lower.vector import VecContext
from ndpsim.precision_rules import Bits

if TYPE_CHECKING:
    from ndpsim.lower.mac_layer import MacState


@dataclass
class NodeContext:
    g: Graph
    node: Node
    hw: HardwareConfig
    vec: VecContext  # builder, the layer's vector unit, the DMA unit, chunking, output bits
    vec_units: list[int]  # the vector unit of each core
    layer: Layer
    bits: Bits  # the layer's weight, activation and accumulator bits
    in_names: list[str]  # the activation inputs the op reads (its entry's `reads`)
    ins: list[Placement]  # their placements, tokens ready after the layer's setup
    y: Placement  # the first output
    act: tuple | None  # the activation fused into the output stage
    place: Callable[[str], Placement]  # the placement of any value (Split's other outputs)
    scratch: Callable[[str, tuple[int, ...], int], Placement]  # a new arena region
    mac: MacState  # MAC layers' tiling, weight placement and streaming state

    @property
    def x(self) -> Placement:
        return self.ins[0]
