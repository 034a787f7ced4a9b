"""Graph IR: frozen dataclasses. Nodes are kept in topological order; every value
(graph inputs, intermediates, constants) has a `TensorInfo` with a static shape."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class TensorInfo:
    """A value of the graph: static shape (batch included) and numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "float32", "int8", "uint8", "int32", "int64", ...

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # math.prod: exact, and ~10x faster than np.prod here


@dataclass(frozen=True)
class Node:
    """One operator. `attrs` holds every attribute of the op's schema, defaults filled in
    from the ONNX schema (never re-typed by hand). An omitted optional input is ''."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    domain: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", _frozen(self.attrs))

    def with_(self, **changes: Any) -> Node:
        return replace(self, **changes)


@dataclass(frozen=True)
class Graph:
    """A whole model: nodes in topological order, values, constants (initializers and
    folded Constant nodes, as numpy arrays), graph inputs and outputs by name."""

    name: str
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: Mapping[str, TensorInfo]
    constants: Mapping[str, np.ndarray]
    opset: int = 13
    quant: Any = None  # frontend.quantized.ModelQuant of a quantized model, else None
    # Ifs on run-time data inlined with a chosen branch (frontend.control.DataBranch): their
    # conditions are graph outputs the host reads; their branch's nodes wait for them
    branches: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", _frozen(self.tensors))
        object.__setattr__(self, "constants", _frozen(self.constants))

    def with_(self, **changes: Any) -> Graph:
        return replace(self, **changes)

    def producers(self) -> dict[str, Node]:
        """Map value name -> the node that produces it."""
        return {out: n for n in self.nodes for out in n.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        """Map value name -> the nodes that read it (graph outputs are not nodes)."""
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for name in n.inputs:
                if name:
                    users.setdefault(name, []).append(n)
        return users

    def is_constant(self, name: str) -> bool:
        return name in self.constants
