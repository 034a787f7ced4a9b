"""ONNX frontend: read, check and fold an ONNX model into the `ndpsim.ir` Graph."""

from ndpsim.frontend.load import load_model

__all__ = ["load_model"]
