"""Building blocks of graph rewrites: a collector of the nodes, values and constants a
rewrite creates (lower/recurrent.py, lower/decompose.py)."""

from __future__ import annotations

import numpy as np

from ndpsim.ir import Graph, Node, TensorInfo


class NodeEmitter:
    """Collects the nodes, values and constants a rewrite creates."""

    def __init__(self, g: Graph, prefix: str):
        self.tensors = dict(g.tensors)
        self.consts = dict(g.constants)
        self.nodes: list[Node] = []
        self.prefix = prefix
        self.n = 0

    def const(self, tag: str, value: np.ndarray) -> str:
        name = f"{self.prefix}/{tag}"
        self.consts[name] = np.ascontiguousarray(value)
        self.tensors[name] = TensorInfo(name, tuple(value.shape), str(value.dtype))
        return name

    def op(self, op_type: str, inputs: list[str], shape: tuple[int, ...], out: str = "",
           **attrs) -> str:  # fmt: skip
        self.n += 1
        name = out or f"{self.prefix}/{op_type.lower()}{self.n}"
        self.nodes.append(Node(f"{self.prefix}/{op_type}{self.n}", op_type, tuple(inputs),
                               (name,), attrs))  # fmt: skip
        self.tensors[name] = TensorInfo(name, tuple(shape), "float32")
        return name

    def take(self, x: str, index: int, axis: int, shape: tuple[int, ...]) -> str:
        """x[..., index, ...] along `axis` (a Gather with one constant index)."""
        idx = self.const(f"i{self.n}_{index}", np.array(index, np.int64))
        return self.op("Gather", [x, idx], shape, axis=axis)

    def cols(self, x: str, start: int, stop: int, rows: int) -> str:
        """Columns start..stop of a [rows, n] value (a Slice)."""
        s = self.const(f"s{self.n}", np.array([start], np.int64))
        e = self.const(f"e{self.n}", np.array([stop], np.int64))
        a = self.const(f"a{self.n}", np.array([1], np.int64))
        return self.op("Slice", [x, s, e, a], (rows, stop - start))
