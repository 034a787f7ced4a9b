"""Read a model safely: bounded file reads, protobuf decoding, and external data that
never leaves the model's folder."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import onnx
from onnx import TensorProto

from ndpsim.errors import ModelError
from ndpsim.frontend.messages import first_line, quote
from ndpsim.frontend.tensors import check_tensor_proto, numpy_dtype

# Protobuf cannot serialize a message over 2 GiB, so a larger .onnx file is not a model.
MAX_MODEL_FILE_BYTES = 2**31 - 1

# A Windows drive prefix ("C:"), absolute even when this runs on POSIX.
_DRIVE = re.compile(r"^[A-Za-z]:")

ModelSource = str | os.PathLike | bytes | onnx.ModelProto


def _regular_file_size(path: Path, what: str) -> int:
    """Size of a regular file; refuses directories, FIFOs and devices (reading /dev/zero
    or a FIFO would never end)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ModelError(f"cannot read {what} {quote(path)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelError(f"{what} {quote(path)} is not a regular file")
    return info.st_size


def parse_model_bytes(data: bytes) -> onnx.ModelProto:
    """Decode serialized bytes into a ModelProto (no external data is touched)."""
    if not data:
        raise ModelError("not an ONNX model: the file is empty")
    if len(data) > MAX_MODEL_FILE_BYTES:
        raise ModelError(f"not an ONNX model: {len(data)} bytes is over the 2 GiB protobuf limit")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # DecodeError, RuntimeWarning-as-error, ... depending on backend
        raise ModelError(
            f"not an ONNX model: cannot parse protobuf (truncated or corrupt file): "
            f"{first_line(exc)}"
        ) from None
    # Any byte string may decode as an almost empty message: require the basics of a model.
    if model.ir_version == 0 or not model.HasField("graph"):
        raise ModelError("not an ONNX model: no IR version or no graph in the file")
    return model


def read_model(source: ModelSource) -> tuple[onnx.ModelProto, Path | None]:
    """The ModelProto and the folder external data may come from (None for bytes/protos)."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)  # we reorder nodes and inline data: never mutate the caller's
        return model, None
    if isinstance(source, bytes | bytearray | memoryview):
        return parse_model_bytes(bytes(source)), None
    if not isinstance(source, str | os.PathLike):
        raise ModelError(f"cannot load a model from a {type(source).__name__}")
    path = Path(source)
    size = _regular_file_size(path, "model file")
    if size > MAX_MODEL_FILE_BYTES:
        raise ModelError(f"not an ONNX model: {quote(path)} is {size} bytes, over the 2 GiB limit")
    with path.open("rb") as f:
        # Read the stat'ed size (+1 to notice growth): read(n) allocates n bytes up front.
        data = f.read(size + 1)
    return parse_model_bytes(data), path.resolve().parent


def _all_tensors(model: onnx.ModelProto) -> list[tuple[TensorProto, str]]:
    """Initializers and Constant-node tensors with a description for messages."""
    graph = model.graph
    found = [(t, f"initializer {quote(t.name)}") for t in graph.initializer]
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                found.append(
                    (attr.t, f"tensor attribute {quote(attr.name)} of node {quote(node.name)}")
                )
    return found


def _external_info(t: TensorProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in t.external_data}


def _safe_external_path(base: Path, location: str, what: str) -> Path:
    """The resolved file for `location`, refused (without opening it) when it could leave
    `base`: absolute paths, '..' parts, or symlinks resolving elsewhere."""
    refuse = f"{what} has external data at {quote(location)}"
    if not location:
        raise ModelError(f"{what} has external data with no location")
    if "\x00" in location:
        raise ModelError(f"{refuse}: NUL in path")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or _DRIVE.match(location):
        raise ModelError(
            f"{refuse}: absolute paths are refused (must be inside the model's folder)"
        )
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        raise ModelError(f"{refuse}: '..' is refused (must be inside the model's folder)")
    resolved = (base / location).resolve()
    if not resolved.is_relative_to(base.resolve()):
        raise ModelError(f"{refuse}: it resolves outside the model's folder")
    return resolved


def load_external_data(model: onnx.ModelProto, base: Path | None, max_elements: int) -> None:
    """Inline every external tensor's bytes into raw_data after bounds checks."""
    for t, what in _all_tensors(model):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        if base is None:
            raise ModelError(
                f"{what} has external data, which needs the model's folder: load the model "
                f"from a file path, not from bytes or a ModelProto"
            )
        count = check_tensor_proto(t, max_elements, what)
        need = count * numpy_dtype(t.data_type, what).itemsize
        info = _external_info(t)
        path = _safe_external_path(base, info.get("location", ""), what)
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else need
        except ValueError:
            raise ModelError(f"{what} has a non-integer external data offset or length") from None
        if offset < 0 or length != need:
            raise ModelError(
                f"{what}: external data offset {offset} / length {length} do not match its "
                f"dims {list(t.dims)} ({need} bytes)"
            )
        size = _regular_file_size(path, f"external data file of {what}")
        if offset + length > size:
            raise ModelError(
                f"{what}: external data offset {offset} + length {length} is beyond the end "
                f"of {quote(info['location'])} ({size} bytes)"
            )
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:  # the file shrank between stat and read
            raise ModelError(f"{what}: external data file {quote(info['location'])} is truncated")
        t.raw_data = data
        t.data_location = TensorProto.DEFAULT
        del t.external_data[:]
