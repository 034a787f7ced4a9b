"""Unit tests of the ONNX frontend: defaults, folding, ordering, shapes, names."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.backend.test
import onnx.defs
import pytest
from onnx import TensorProto, helper

from ndpsim.config import load_preset
from ndpsim.errors import InputShapeWarning, ModelError, UnsupportedOpError
from ndpsim.frontend import load_model
from ndpsim.lower import lower
from ndpsim.lower.registry import SUPPORTED_OPS
from tests.hostile_corpus import small_model
from tests.test_hostile import _shape_chain_model

LIGHT = Path(onnx.backend.test.__file__).parent / "data" / "light"


def test_small_model_imports() -> None:
    g = load_model(small_model().SerializeToString())
    assert [n.op_type for n in g.nodes] == ["Conv", "Relu"]
    assert g.inputs == ("x",) and g.outputs == ("y",)
    assert g.tensors["c"].shape == (1, 4, 6, 6) and g.tensors["c"].dtype == "float32"
    assert g.tensors["W"].shape == (4, 3, 3, 3)
    assert g.constants["W"].shape == (4, 3, 3, 3) and g.opset == 13


def test_attribute_defaults_come_from_the_schema() -> None:
    conv = load_model(small_model()).nodes[0]
    schema = onnx.defs.get_schema("Conv", 13, "")
    assert set(conv.attrs) == set(schema.attributes)
    assert conv.attrs["group"] == 1 and conv.attrs["auto_pad"] == "NOTSET"
    assert conv.attrs["kernel_shape"] == (3, 3)
    # The schema gives no default for strides/pads/dilations (the spec derives them from
    # the input rank): the frontend stores None and leaves the meaning to the lowering.
    assert schema.attributes["strides"].default_value.type == 0
    assert conv.attrs["strides"] is None and conv.attrs["pads"] is None


@pytest.mark.parametrize(("opset", "axis"), [(11, 1), (13, -1)])
def test_softmax_default_follows_the_opset(opset: int, axis: int) -> None:
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"])], "sm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)
    assert load_model(model).nodes[0].attrs["axis"] == axis


def test_shape_chain_is_folded_into_a_reshape_constant() -> None:
    g = load_model(_shape_chain_model())
    assert [n.op_type for n in g.nodes] == ["Reshape"]
    np.testing.assert_array_equal(g.constants["shape"], [1, -1])
    assert g.tensors["y"].shape == (1, 6)
    assert set(g.constants) == {"shape"}  # folded intermediates are pruned


def test_light_resnet50_folds_constant_of_shape_and_keeps_sum() -> None:
    g = load_model(LIGHT / "light_resnet50.onnx")
    ops = {n.op_type for n in g.nodes}
    assert "ConstantOfShape" not in ops and "Sum" in ops
    assert g.constants["gpu_0/conv1_w_0"].shape == (64, 3, 7, 7)
    assert np.all(g.constants["gpu_0/conv1_w_0"] == np.float32(0.02))
    assert g.tensors["gpu_0/softmax_1"].shape == (1, 1000)


def test_light_squeezenet_imports_fully() -> None:
    g = load_model(LIGHT / "light_squeezenet.onnx")
    assert {n.op_type for n in g.nodes} <= {"Conv", "Relu", "MaxPool", "Concat", "Dropout",
                                            "GlobalAveragePool", "Softmax"}  # fmt: skip
    assert g.opset == 9
    for node in g.nodes:
        for name in (*node.inputs, *node.outputs):
            assert not name or name in g.tensors


def test_unsupported_op_is_refused_by_name() -> None:
    model = small_model()
    model.graph.node[1].op_type = "Hardmax"  # a real ONNX op outside the supported set
    with pytest.raises(UnsupportedOpError) as info:
        load_model(model, supported=SUPPORTED_OPS)  # as a Session imports
    message = "unsupported op 'Hardmax' (node 'relu'); ndpsim supports: Abs, Add,"
    assert str(info.value).startswith(message)
    graph = load_model(model)  # no op set given: imported, and the lowering refuses it
    with pytest.raises(UnsupportedOpError, match="unsupported op 'Hardmax' .node 'relu'.; ndpsim"):
        lower(graph, load_preset("generic"))


def _symbolic_batch_model() -> onnx.ModelProto:
    model = small_model()
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    return model


def test_a_symbolic_batch_dim_is_one_and_said_so() -> None:
    said = "batch dim 'N' is symbolic.*--input-shape x=1x3x8x8"
    with pytest.warns(InputShapeWarning, match=said):
        g = load_model(_symbolic_batch_model())
    assert g.tensors["x"].shape == (1, 3, 8, 8) and g.tensors["y"].shape == (1, 4, 6, 6)


def test_input_shapes_override_a_symbolic_batch() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # given a shape, nothing is assumed
        g = load_model(_symbolic_batch_model(), input_shapes={"x": [2, 3, 8, 8]})
    assert g.tensors["x"].shape == (2, 3, 8, 8) and g.tensors["y"].shape == (2, 4, 6, 6)


def test_every_input_without_a_static_shape_is_named_in_one_error() -> None:
    model = small_model()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    model.graph.input.append(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, None))
    with pytest.raises(ModelError) as err:
        load_model(model)
    message = str(err.value)
    assert "2 inputs have symbolic or unknown dims" in message
    assert "'x' (shape [1, 3, H, 8]), 'z' (no shape)" in message
    assert message.endswith("--input-shape x=1x3x1x8 --input-shape z=1")


def test_input_shapes_with_an_unknown_name_lists_the_inputs() -> None:
    with pytest.raises(ModelError, match="inputs: 'x'"):
        load_model(_symbolic_batch_model(), input_shapes={"image": [1, 3, 8, 8]})
    with pytest.raises(ModelError, match="rank 2"):
        load_model(_symbolic_batch_model(), input_shapes={"x": [1, 3]})


def test_out_of_order_nodes_are_sorted_and_caller_model_untouched() -> None:
    model = small_model()
    nodes = list(model.graph.node)[::-1]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    g = load_model(model)
    assert [n.name for n in g.nodes] == ["conv", "relu"]
    assert [n.name for n in model.graph.node] == ["relu", "conv"]


def test_empty_and_duplicate_names_are_made_unique() -> None:
    model = small_model()
    model.graph.node[0].name = ""
    model.graph.node[1].name = "Conv_0"
    assert [n.name for n in load_model(model).nodes] == ["Conv_0", "Conv_0_1"]


def test_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    model = small_model()
    w = model.graph.initializer[0]
    values = np.arange(108, dtype=np.float32)
    (tmp_path / "w.bin").write_bytes(b"\0" * 16 + values.tobytes())
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in {"location": "w.bin", "offset": "16", "length": "432"}.items():
        w.external_data.add(key=key, value=value)
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    g = load_model(tmp_path / "m.onnx")
    np.testing.assert_array_equal(g.constants["W"].ravel(), values)
    with pytest.raises(ModelError, match="file path"):
        load_model(model)


def test_ir3_opset7_model_treats_weights_listed_as_inputs_as_constants() -> None:
    model = small_model(opset=7, ir_version=3)
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 3, 3, 3]))
    g = load_model(model)
    assert g.inputs == ("x",) and g.is_constant("W")


def test_constant_node_becomes_a_constant() -> None:
    model = small_model()
    w = model.graph.initializer.pop()
    model.graph.node.insert(0, helper.make_node("Constant", [], ["W"], value=w))
    g = load_model(model)
    assert [n.op_type for n in g.nodes] == ["Conv", "Relu"]
    assert g.constants["W"].shape == (4, 3, 3, 3)
