"""The graph IR: what the frontend produces and the passes and lowering consume."""

from ndpsim.ir.graph import Graph, Node, TensorInfo

__all__ = ["Graph", "Node", "TensorInfo"]
