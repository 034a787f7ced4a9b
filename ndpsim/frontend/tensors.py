"""Dtypes ndpsim accepts and bounded conversion of TensorProtos to numpy arrays.

Every size is checked from the declared dims *before* anything of that size is
allocated: a 40-byte file may declare a 10^12-element tensor."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ndpsim.errors import ModelError, UnsupportedOpError
from ndpsim.frontend.messages import quote

# ONNX element types with a plain numpy equivalent that the lowering can hold. bfloat16,
# float8/4, int4, strings and complex have no numpy dtype the simulator computes with.
SUPPORTED_DTYPES: dict[int, np.dtype] = {
    TensorProto.FLOAT: np.dtype("float32"),
    TensorProto.FLOAT16: np.dtype("float16"),
    TensorProto.DOUBLE: np.dtype("float64"),
    TensorProto.INT8: np.dtype("int8"),
    TensorProto.UINT8: np.dtype("uint8"),
    TensorProto.INT16: np.dtype("int16"),
    TensorProto.UINT16: np.dtype("uint16"),
    TensorProto.INT32: np.dtype("int32"),
    TensorProto.UINT32: np.dtype("uint32"),
    TensorProto.INT64: np.dtype("int64"),
    TensorProto.UINT64: np.dtype("uint64"),
    TensorProto.BOOL: np.dtype("bool"),
}
_NUMPY_TO_ONNX = {dt: code for code, dt in SUPPORTED_DTYPES.items()}

# Which repeated field holds the values of a non-raw tensor, per element type (onnx.proto).
_TYPED_FIELD = {
    TensorProto.FLOAT: "float_data",
    TensorProto.DOUBLE: "double_data",
    TensorProto.INT64: "int64_data",
    TensorProto.UINT32: "uint64_data",
    TensorProto.UINT64: "uint64_data",
}


def dtype_name(elem_type: int) -> str:
    """The ONNX name of an element type code, for messages ('BFLOAT16', or the number)."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return str(elem_type)


def supported_dtypes_text() -> str:
    """The accepted element types as one sorted line (for messages)."""
    return ", ".join(sorted(dt.name for dt in SUPPORTED_DTYPES.values()))


def numpy_dtype(elem_type: int, what: str) -> np.dtype:
    """The numpy dtype of an ONNX element type, or UnsupportedOpError naming `what`."""
    if elem_type not in SUPPORTED_DTYPES:
        raise UnsupportedOpError(
            f"unsupported dtype {dtype_name(elem_type)} for {what}; "
            f"ndpsim supports: {supported_dtypes_text()}"
        )
    return SUPPORTED_DTYPES[elem_type]


def onnx_elem_type(dtype: np.dtype, what: str) -> int:
    """The ONNX element type of a numpy dtype (for folded constants)."""
    dt = np.dtype(dtype)
    if dt not in _NUMPY_TO_ONNX:
        raise UnsupportedOpError(
            f"unsupported dtype {dt.name} for {what}; ndpsim supports: {supported_dtypes_text()}"
        )
    return _NUMPY_TO_ONNX[dt]


def check_element_count(
    dims: Iterable[int], max_elements: int, what: str, *, allow_zero: bool = True
) -> int:
    """Product of `dims` after refusing negative (and optionally zero) dims and products over
    `max_elements`; Python ints so the product itself cannot overflow."""
    dims = [int(d) for d in dims]
    for axis, d in enumerate(dims):
        if d < 0 or (d == 0 and not allow_zero):
            raise ModelError(
                f"{what} has a {'negative' if d < 0 else 'zero'} dim {d} at axis {axis}"
            )
    count = math.prod(dims)
    if count > max_elements:
        raise ModelError(
            f"{what} declares {count} elements (shape {dims}), more than the limit of "
            f"{max_elements} (max_tensor_elements)"
        )
    return count


def check_tensor_proto(t: TensorProto, max_elements: int, what: str) -> int:
    """Validate a tensor's dims, dtype and stored data length; returns the element count.
    External tensors are checked when their data is read (reader.py)."""
    count = check_element_count(t.dims, max_elements, what)
    dtype = numpy_dtype(t.data_type, what)
    if t.HasField("segment"):
        raise ModelError(f"{what} is a segmented tensor, which ndpsim does not read")
    if t.data_location == TensorProto.EXTERNAL:
        return count
    if t.HasField("raw_data"):
        need = count * dtype.itemsize
        if len(t.raw_data) != need:
            raise ModelError(
                f"{what} has {len(t.raw_data)} bytes of raw_data but its dims "
                f"{list(t.dims)} x {dtype.name} need {need}"
            )
        return count
    # int32_data also holds int8/uint8/int16/uint16/bool/float16 (one value per entry).
    field = _TYPED_FIELD.get(t.data_type, "int32_data")
    have = len(getattr(t, field))
    if have != count:
        raise ModelError(f"{what} holds {have} values but its dims {list(t.dims)} need {count}")
    return count


def tensor_to_array(t: TensorProto, max_elements: int, what: str) -> np.ndarray:
    """A checked TensorProto as a numpy array (the data is already in memory, bounded)."""
    check_tensor_proto(t, max_elements, what)
    if t.data_location == TensorProto.EXTERNAL:
        raise ModelError(f"{what} keeps its data in an external file that was not loaded")
    try:
        return np.asarray(numpy_helper.to_array(t))
    except Exception as exc:  # a malformed proto can fail in many ways inside onnx
        raise ModelError(f"cannot read {what}: {exc}") from None


def array_to_tensor(array: np.ndarray, name: str) -> TensorProto:
    """A numpy array as a TensorProto (for re-running shape inference after folding)."""
    onnx_elem_type(array.dtype, f"constant {quote(name)}")
    # not np.ascontiguousarray: it makes a 0-d array 1-d (a scalar Gather index would then
    # add an axis)
    return numpy_helper.from_array(np.require(array, requirements="C"), name)


def value_dims(value: onnx.ValueInfoProto) -> list[int | str | None] | None:
    """Dims of a tensor ValueInfo: int, symbol name, or None when unknown; None if no shape."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for d in tensor_type.shape.dim:
        kind = d.WhichOneof("value")
        dims.append(d.dim_value if kind == "dim_value" else (d.dim_param or None))
    return dims
