"""The streaming wake-word model (MLPerf Tiny v1.3) matches its published layer table exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from ndpsim import zoo

MODEL = Path(__file__).resolve().parents[1] / "models" / "sww_streaming_wakeword.onnx"
# (kernel over time, channels in -> out, groups, output frames, params, MACs) per MAC layer,
# from the v1.3 layer table (BN folded; depthwise biases present and zero)
TABLE = [
    ((3, 1), 40, 40, 40, 28, 160, 3_360),
    ((1, 1), 40, 128, 1, 28, 5_248, 143_360),
    ((5, 1), 128, 128, 128, 24, 768, 15_360),
    ((1, 1), 128, 128, 1, 24, 16_512, 393_216),
    ((10, 1), 128, 128, 128, 15, 1_408, 19_200),
    ((1, 1), 128, 128, 1, 15, 16_512, 245_760),
    ((15, 1), 128, 128, 128, 1, 2_048, 1_920),
    ((1, 1), 128, 32, 1, 1, 4_128, 4_096),
]


def test_totals_equal_the_table():
    model = zoo.sww_streaming_wakeword()
    assert (zoo.count_params(model), zoo.count_macs(model)) == (46_883, 826_368)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert shape == [1, 40, 30, 1]  # 40 features as channels, 30 frames


def test_every_layer_equals_the_table():
    model = onnx.shape_inference.infer_shapes(zoo.sww_streaming_wakeword())
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info
    }
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == len(TABLE)
    for node, (kernel, cin, cout, group, frames, params, macs) in zip(convs, TABLE, strict=True):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        w, b = inits[node.input[1]], inits[node.input[2]]
        assert tuple(attrs["kernel_shape"]) == kernel and attrs["group"] == group
        assert attrs["pads"] == [0, 0, 0, 0]  # valid padding over time
        assert w.shape == (cout, cin // group, *kernel)
        assert w.size + b.size == params
        assert shapes[node.output[0]] == [1, cout, frames, 1]
        assert frames * cout * (cin // group) * kernel[0] == macs
        if group > 1:  # depthwise: zero biases, as deployed
            assert not b.any()
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert inits[gemm.input[1]].shape == (3, 32)
    assert [n.op_type for n in model.graph.node][-1] == "Softmax"


def test_committed_file_is_a_fresh_build():
    fresh = zoo.MLPERF_TINY["sww_streaming_wakeword"](seed=0)
    assert MODEL.read_bytes() == fresh.SerializeToString()


def test_runs_in_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((1, 40, 30, 1)).astype(np.float32)
    (y,) = session.run(None, {"input": x})
    assert y.shape == (1, 3) and np.isclose(y.sum(), 1.0, atol=1e-5)
