"""onnx's own checker and shape inference, with their errors turned into one-line
ModelErrors, and the inferred shapes read back as static (shape, dtype) pairs."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnx.checker
import onnx.shape_inference

from ndpsim.errors import ModelError
from ndpsim.frontend.messages import first_line, quote
from ndpsim.frontend.tensors import check_element_count, numpy_dtype, value_dims


def check_and_infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Run the full onnx checker, then strict shape inference with data propagation (which
    resolves the Shape/Gather/Concat chains of PyTorch exports); returns the inferred model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:  # ValidationError, InferenceError, RuntimeError, ...
            raise ModelError(f"invalid ONNX model: {first_line(exc)}") from None
        return infer(model)


def infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Strict shape inference with data propagation; errors become ModelError."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise ModelError(f"shape inference failed: {first_line(exc)}") from None


def value_types(
    model: onnx.ModelProto, max_elements: int
) -> dict[str, tuple[tuple[int, ...] | None, np.dtype]]:
    """(shape or None when not static, dtype) for each value with type information; refuses
    oversize or non-positive inferred shapes and unsupported dtypes."""
    graph = model.graph
    found: dict[str, tuple[tuple[int, ...] | None, np.dtype]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.WhichOneof("value") != "tensor_type":
            raise ModelError(f"value {quote(value.name)} is not a tensor")
        what = f"value {quote(value.name)}"
        elem_type = value.type.tensor_type.elem_type
        if elem_type == 0:  # output declared without a type: inference fills value_info
            continue
        dtype = numpy_dtype(elem_type, what)
        dims = value_dims(value)
        shape = None
        if dims is not None and all(isinstance(d, int) for d in dims):
            check_element_count(dims, max_elements, what)
            shape = tuple(int(d) for d in dims)
        elif dims is not None:
            check_element_count([d for d in dims if isinstance(d, int)], max_elements, what)
        if shape is not None or value.name not in found:
            found[value.name] = (shape, dtype)
    return found
