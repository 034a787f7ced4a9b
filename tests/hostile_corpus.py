"""A corpus of hostile ONNX inputs: each entry is (name, bytes or path, a substring the
ModelError message must contain). Files needing a folder (external data) go in `folder`."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import onnx
from onnx import TensorProto, helper

Case = tuple[str, bytes | Path, str]
HUGE = 10**6  # two such dims declare 10^12 elements


def small_model(opset: int = 13, ir_version: int = 8) -> onnx.ModelProto:
    """x[1,3,8,8] -> Conv(W[4,3,3,3]) -> Relu -> y[1,4,6,6]: the base every case edits."""
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3, 3, 3], [0.1] * 108)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W"], ["c"], name="conv", kernel_shape=[3, 3]),
            helper.make_node("Relu", ["c"], ["y"], name="relu"),
        ],
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [w],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version
    )


def _edit(change: Callable[[onnx.ModelProto], object]) -> bytes:
    model = small_model()
    change(model)
    return model.SerializeToString()


def _set_dims(value: onnx.ValueInfoProto, dims: list[int]) -> None:
    shape = value.type.tensor_type.shape
    shape.Clear()
    for d in dims:
        shape.dim.add().dim_value = d


def _replace_nodes(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> None:
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _external(model: onnx.ModelProto, **entries: str) -> None:
    w = model.graph.initializer[0]
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        w.external_data.add(key=key, value=value)


def _weight(model: onnx.ModelProto) -> TensorProto:
    return model.graph.initializer[0]


def _huge_tensor(name: str = "v") -> TensorProto:
    """Declares 10^12 floats but holds 8 bytes (onnx.helper refuses to build this)."""
    return TensorProto(
        name=name, data_type=TensorProto.FLOAT, dims=[HUGE, HUGE], raw_data=b"\0" * 8
    )


def _graph_field_range(data: bytes, model: onnx.ModelProto) -> tuple[int, int]:
    """Byte range of the serialized graph inside the model bytes."""
    graph_bytes = model.graph.SerializeToString()
    start = data.index(graph_bytes)
    return start, start + len(graph_bytes)


def _structural_cases() -> list[Case]:
    n = helper.make_node
    relu_y = n("Relu", ["c"], ["y"], name="relu")
    conv = n("Conv", ["x", "W"], ["c"], name="conv", kernel_shape=[3, 3])
    cases: list[Case] = [
        ("ir_version_2", _edit(lambda m: setattr(m, "ir_version", 2)), "IR version 2"),
        ("ir_version_future", _edit(lambda m: setattr(m, "ir_version", 99)), "IR version 99"),
        ("opset_future", small_model(opset=99).SerializeToString(), "opset 99"),
        ("opset_26", small_model(opset=26, ir_version=11).SerializeToString(), "opset 26"),
        ("opset_too_old", small_model(opset=6, ir_version=3).SerializeToString(), "opset 6"),
        ("no_default_opset", _edit(lambda m: m.opset_import[0].__setattr__("domain", "ai.onnx.ml")),
         "no default-domain"),
        ("unknown_domain", _edit(lambda m: m.opset_import.add(domain="com.future", version=1)),
         "unknown opset domain 'com.future'"),
        ("vendor_domain", _edit(lambda m: m.opset_import.add(domain="com.microsoft", version=1)),
         "unknown opset domain"),
        ("ml_domain_op", _edit(lambda m: (m.opset_import.add(domain="ai.onnx.ml", version=3),
                                          _replace_nodes(m, [conv, n("Normalizer", ["c"], ["y"],
                                          name="norm", domain="ai.onnx.ml")]))),
         "unsupported op 'ai.onnx.ml::Normalizer'"),
        ("cycle", _edit(lambda m: _replace_nodes(m, [
            n("Add", ["x", "b"], ["a"], name="add"), n("Relu", ["a"], ["b"], name="loop"),
            conv, relu_y])), "cycle"),
        ("self_loop", _edit(lambda m: _replace_nodes(m, [
            conv, n("Add", ["c", "s"], ["s"], name="self"), relu_y])), "cycle"),
        ("missing_initializer", _edit(lambda m: m.graph.ClearField("initializer")),
         "missing initializer or input 'W'"),
        ("missing_input", _edit(lambda m: _replace_nodes(m, [
            conv, n("Add", ["c", "nope"], ["d"], name="add"), n("Relu", ["d"], ["y"])])),
         "missing initializer or input 'nope'"),
        ("output_not_produced", _edit(lambda m: m.graph.output[0].__setattr__("name", "zz")),
         "produced by no node"),
        ("produced_twice", _edit(lambda m: _replace_nodes(m, [conv, n("Relu", ["x"], ["c"]),
                                                              relu_y])), "produced twice"),
        ("zero_dim_input", _edit(lambda m: _set_dims(m.graph.input[0], [1, 3, 0, 8])), "zero dim"),
        ("negative_dim_input", _edit(lambda m: _set_dims(m.graph.input[0], [1, -3, 8, 8])),
         "negative dim"),
        ("zero_dim_output", _edit(lambda m: _set_dims(m.graph.output[0], [1, 0, 6, 6])),
         "zero dim"),
        ("negative_dim_initializer", _edit(lambda m: _weight(m).dims.__setitem__(0, -4)),
         "negative dim"),
        ("huge_initializer", _edit(lambda m: _weight(m).CopyFrom(_huge_tensor("W"))),
         "more than the limit"),
        ("huge_initializer_float_data", _edit(lambda m: _weight(m).dims.extend([HUGE] * 2)),
         "more than the limit"),
        ("huge_input", _edit(lambda m: _set_dims(m.graph.input[0], [1, 3, HUGE, HUGE])),
         "more than the limit"),
        ("huge_output", _edit(lambda m: _set_dims(m.graph.output[0], [HUGE, HUGE, 6, 6])),
         "more than the limit"),
        ("huge_value_info", _edit(lambda m: m.graph.value_info.append(
            helper.make_tensor_value_info("c", TensorProto.FLOAT, [HUGE, HUGE]))),
         "more than the limit"),
        ("huge_constant_node", _edit(lambda m: _replace_nodes(m, [n(
            "Constant", [], ["W2"], value=_huge_tensor()), conv, relu_y])),
         "more than the limit"),
        ("raw_data_short", _edit(lambda m: (_weight(m).ClearField("float_data"),
                                            setattr(_weight(m), "raw_data", b"\0" * 7))),
         "bytes of raw_data"),
        ("float_data_short", _edit(lambda m: m.graph.initializer[0].float_data.__delitem__(0)),
         "holds 107 values"),
        ("unsupported_op", _edit(lambda m: m.graph.node[1].__setattr__("op_type", "Foo")),
         "unsupported op 'Foo' (node 'relu')"),
        ("unsupported_real_op", _edit(lambda m: m.graph.node[1].__setattr__("op_type", "Hardmax")),
         "unsupported op 'Hardmax'"),
        ("expand_on_activation", _edit(lambda m: (m.graph.initializer.append(
            helper.make_tensor("i", TensorProto.INT64, [1], [1])), _replace_nodes(m, [
                conv, n("Expand", ["c", "i"], ["y"], name="g")]))), "unsupported op 'Expand'"),
        ("unknown_attribute", _edit(lambda m: m.graph.node[0].attribute.append(
            helper.make_attribute("foo", 1))), "unknown attribute 'foo'"),
        ("wrong_attribute_type", _edit(lambda m: m.graph.node[0].attribute.append(
            helper.make_attribute("strides", 1.5))), "wrong type"),
        ("attribute_twice", _edit(lambda m: m.graph.node[0].attribute.append(
            helper.make_attribute("kernel_shape", [3, 3]))), "given twice"),
        ("bfloat16_input", _edit(lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type",
                                                   TensorProto.BFLOAT16)),
         "unsupported dtype BFLOAT16"),
        ("string_initializer", _edit(lambda m: m.graph.initializer.append(
            helper.make_tensor("s", TensorProto.STRING, [1], [b"a"]))), "unsupported dtype STRING"),
        ("float8_initializer", _edit(lambda m: setattr(m.graph.initializer[0], "data_type",
                                                       TensorProto.FLOAT8E4M3FN)),
         "unsupported dtype FLOAT8E4M3FN"),
        ("undefined_dtype", _edit(lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type",
                                                    0)), "unsupported dtype UNDEFINED"),
        ("symbolic_dims", _edit(lambda m: [m.graph.input[0].type.tensor_type.shape.dim[i]
                                           .__setattr__("dim_param", "N") for i in (0, 2)]),
         "--input-shape x=1x3x1x8"),
        ("no_input_shape", _edit(lambda m: m.graph.input[0].type.tensor_type.ClearField("shape")),
         "--input-shape x="),
        ("sequence_input", _edit(lambda m: m.graph.input[0].CopyFrom(helper.make_value_info(
            "x", helper.make_sequence_type_proto(helper.make_tensor_type_proto(1, [1]))))),
         "not a tensor"),
        ("checker_relu_two_inputs", _edit(lambda m: m.graph.node[1].input.append("x")),
         "invalid ONNX model"),
        ("shape_mismatch", _edit(lambda m: _set_dims(m.graph.output[0], [1, 5, 6, 6])),
         "invalid ONNX model"),
        ("huge_constant_of_shape", _edit(lambda m: (m.graph.initializer.append(
            helper.make_tensor("shp", TensorProto.INT64, [2], [HUGE, HUGE])), _replace_nodes(m, [
                n("ConstantOfShape", ["shp"], ["big"], name="cos"),
                conv, relu_y]))), "more than the limit"),
        ("huge_expand", _edit(lambda m: (m.graph.initializer.extend([
            helper.make_tensor("shp", TensorProto.INT64, [2], [HUGE, HUGE]),
            helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])]), _replace_nodes(m, [
                n("Expand", ["one", "shp"], ["big"], name="ex"),
                conv, relu_y]))), "more than the limit"),
        ("huge_range", _edit(lambda m: (m.graph.initializer.extend([
            helper.make_tensor("a", TensorProto.INT64, [], [0]),
            helper.make_tensor("b", TensorProto.INT64, [], [10**12]),
            helper.make_tensor("s", TensorProto.INT64, [], [1])]), _replace_nodes(m, [
                n("Range", ["a", "b", "s"], ["big"], name="rg"),
                conv, relu_y]))), "more than the limit"),
        ("sparse_initializer", _edit(lambda m: m.graph.sparse_initializer.append(
            helper.make_sparse_tensor(helper.make_tensor("v", 1, [1], [1.0]),
                                      helper.make_tensor("i", 7, [1], [0]), [4]))), "sparse"),
    ]  # fmt: skip
    return cases


def _external_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    outside = folder / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    secret = outside / "secret.bin"
    secret.write_bytes(b"\0" * 432)

    def write(name: str, data: bytes, extra: dict[str, bytes] | None = None) -> Path:
        model_dir = folder / name
        model_dir.mkdir(exist_ok=True)
        for file_name, content in (extra or {}).items():
            (model_dir / file_name).write_bytes(content)
        path = model_dir / "model.onnx"
        path.write_bytes(data)
        return path

    weights = {"w.bin": b"\0" * 432}
    specs = [
        ("ext_absolute", {"location": str(secret)}, None, "absolute paths are refused"),
        ("ext_dotdot", {"location": "../outside/secret.bin"}, None, "'..' is refused"),
        ("ext_dotdot_backslash", {"location": "..\\outside\\secret.bin"}, None, "'..' is refused"),
        ("ext_windows_drive", {"location": "C:\\secret.bin"}, None, "absolute paths"),
        ("ext_offset_beyond", {"location": "w.bin", "offset": "100000"}, weights, "beyond the end"),
        ("ext_length_beyond", {"location": "w.bin", "offset": "4"}, weights, "beyond the end"),
        ("ext_length_wrong", {"location": "w.bin", "length": "8"}, weights, "do not match"),
        ("ext_offset_negative", {"location": "w.bin", "offset": "-4"}, weights, "do not match"),
        ("ext_offset_text", {"location": "w.bin", "offset": "abc"}, weights, "non-integer"),
        ("ext_missing_file", {"location": "absent.bin"}, None, "cannot read"),
        ("ext_no_location", {"offset": "0"}, None, "no location"),
    ]
    for name, entries, extra, expected in specs:
        data = _edit(lambda m, e=entries: _external(m, **e))
        cases.append((name, write(name, data, extra), expected))
    link_dir = folder / "ext_symlink"
    link_dir.mkdir(exist_ok=True)
    link = link_dir / "w.bin"
    if not link.is_symlink():
        os.symlink(secret, link)
    path = link_dir / "model.onnx"
    path.write_bytes(_edit(lambda m: _external(m, location="w.bin")))
    cases.append(("ext_symlink_outside", path, "resolves outside the model's folder"))
    dir_link = folder / "ext_symlink_dir"
    dir_link.mkdir(exist_ok=True)
    if not (dir_link / "sub").is_symlink():
        os.symlink(outside, dir_link / "sub")
    path = dir_link / "model.onnx"
    path.write_bytes(_edit(lambda m: _external(m, location="sub/secret.bin")))
    cases.append(("ext_symlinked_folder_outside", path, "resolves outside"))
    fifo_dir = folder / "ext_fifo"
    fifo_dir.mkdir(exist_ok=True)
    if not (fifo_dir / "w.bin").exists():
        os.mkfifo(fifo_dir / "w.bin")
    path = fifo_dir / "model.onnx"
    path.write_bytes(_edit(lambda m: _external(m, location="w.bin")))
    cases.append(("ext_fifo", path, "not a regular file"))
    cases.append(("ext_as_bytes", _edit(lambda m: _external(m, location="w.bin")),
                  "load the model from a file path"))  # fmt: skip
    cases.append(("model_is_directory", folder, "not a regular file"))
    cases.append(("model_missing", folder / "nope.onnx", "cannot read model file"))
    return cases


def _byte_cases() -> list[Case]:
    base_model = small_model()
    base = base_model.SerializeToString()
    cases: list[Case] = [
        ("empty", b"", "not an ONNX model"),
        ("text", b"this is plainly not an onnx file\n" * 3, "not an ONNX model"),
        ("json", b'{"ir_version": 8, "graph": {}}', "not an ONNX model"),
        ("zip_header", b"PK\x03\x04" + b"\0" * 60, "not an ONNX model"),
        ("header_only", base[: base.index(base_model.graph.SerializeToString()) - 2],
         "not an ONNX model"),
    ]  # fmt: skip
    rng = random.Random(1234)
    for i in range(25):
        data = bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 64, 500, 4096])))
        cases.append((f"random_{i}", data, "not an ONNX model"))
    start, end = _graph_field_range(base, base_model)
    for offset in range(start + 3, end - 1, max((end - start) // 40, 1)):
        cases.append((f"truncated_at_{offset}", base[:offset], "cannot parse protobuf"))
    return cases


def hostile_cases(folder: Path) -> list[Case]:
    """All hostile cases; files needing a folder are written under `folder`."""
    return _byte_cases() + _structural_cases() + _external_cases(Path(folder))
