"""ndpsim.zoo.families: every family builds, checks, imports and simulates; the reference
configurations have their published parameter and MAC counts; samples are deterministic
and stay within the caps; the functional datapath agrees with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import ndpsim
from ndpsim.api import SimOptions
from ndpsim.config import load_preset
from ndpsim.frontend import load_model
from ndpsim.lower import lower
from ndpsim.session import float_outputs
from ndpsim.zoo import count_macs, count_weights
from ndpsim.zoo.families import (
    MAX_MACS,
    MAX_PARAMS,
    MAX_RECURRENT_STEPS,
    NETWORK_FAMILIES,
    build_network,
    network_stats,
    sample_spec,
)

REPO = Path(__file__).resolve().parents[1]
LIGHT_RESNET50 = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
SAMPLES_PER_FAMILY = 2

# (spec, params as the unfolded network counts them, MACs in G rounded to 3 decimals).
# Params and "_ops" (GMACs) from torchvision's weight metadata (torchvision/models/*.py:
# ResNet18/34/50/101_Weights, ResNeXt50_32X4D / ResNeXt101_32X8D / Wide_ResNet50_2_Weights,
# MobileNet_V2/V3_*_Weights, MNASNet*_Weights, ShuffleNet_V2_*_Weights,
# SqueezeNet1_*_Weights); MobileNetV1 from the Keras / TF-slim model table (4,231,976
# trainable params; the paper's 569 M mult-adds) and osmr/imgclsmob's table for widths
# 0.25-0.75; EfficientNet-lite from d-li14/efficientnet-lite.pytorch's table (params in M
# and GFLOPs to 3 decimals).
PUBLISHED = [
    ({"family": "resnet"}, 11_689_512, 1.814),
    ({"family": "resnet", "depths": [3, 4, 6, 3]}, 21_797_672, 3.664),
    ({"family": "resnet", "block": "bottleneck", "depths": [3, 4, 6, 3]}, 25_557_032, 4.089),
    ({"family": "resnet", "block": "bottleneck", "depths": [3, 4, 23, 3]}, 44_549_160, 7.801),
    (
        {
            "family": "resnet",
            "block": "bottleneck",
            "depths": [3, 4, 6, 3],
            "groups": 32,
            "width_per_group": 4,
        },
        25_028_904,
        4.230,
    ),
    (
        {
            "family": "resnet",
            "block": "bottleneck",
            "depths": [3, 4, 23, 3],
            "groups": 32,
            "width_per_group": 8,
        },
        88_791_336,
        16.414,
    ),
    (
        {"family": "resnet", "block": "bottleneck", "depths": [3, 4, 6, 3], "width_per_group": 128},
        68_883_240,
        11.398,
    ),
    ({"family": "mobilenetv1"}, 4_231_976, 0.569),
    ({"family": "mobilenetv1", "width": 0.25}, 470_072, None),
    ({"family": "mobilenetv1", "width": 0.5}, 1_331_592, None),
    ({"family": "mobilenetv1", "width": 0.75}, 2_585_560, None),
    ({"family": "mobilenetv2"}, 3_504_872, 0.301),
    ({"family": "mobilenetv3"}, 5_483_032, 0.217),
    ({"family": "mobilenetv3", "variant": "small"}, 2_542_856, 0.057),
    ({"family": "mnasnet", "width": 0.5}, 2_218_512, 0.104),
    ({"family": "mnasnet", "width": 0.75}, 3_170_208, 0.215),
    ({"family": "mnasnet"}, 4_383_312, 0.314),
    ({"family": "mnasnet", "width": 1.3}, 6_282_256, 0.526),
    ({"family": "shufflenetv2", "channels": [48, 96, 192]}, 1_366_792, 0.040),
    ({"family": "shufflenetv2"}, 2_278_604, 0.145),
    ({"family": "shufflenetv2", "channels": [176, 352, 704]}, 3_503_624, 0.296),
    (
        {"family": "shufflenetv2", "channels": [244, 488, 976], "last_channels": 2048},
        7_393_996,
        0.583,
    ),
    ({"family": "squeezenet", "version": "1_0"}, 1_248_424, 0.819),
    ({"family": "squeezenet"}, 1_235_496, 0.349),
]
EFFICIENTNET_LITE = [  # (width, depth, resolution): params in M, GMACs, both to 3 decimals
    ((1.0, 1.0, 224), 4.652, 0.385),
    ((1.0, 1.1, 240), 5.417, 0.600),
    ((1.1, 1.2, 260), 6.092, 0.860),
    ((1.2, 1.4, 280), 8.197, 1.383),
    ((1.4, 1.8, 300), 13.007, 2.553),
]
# MLPerf Tiny reference models (BN-folded .tflite tables, see tests/test_zoo.py): the family
# configurations that are those networks have their exact folded params and MACs.
MLPERF = [
    (
        {"family": "mobilenetv1", "width": 0.25, "resolution": 96, "num_classes": 2,
         "act": "relu"},
        210_850,
        7_489_664,
    ),
    ({"family": "dscnn"}, 22_604, 2_656_768),
    (
        {"family": "resnet", "depths": [1, 1, 1], "width": 16, "stem": "cifar",
         "resolution": 32, "num_classes": 10},
        77_706,
        12_501_632,
    ),
]  # fmt: skip
# One small configuration per family for the functional comparison with onnxruntime.
SMALL = {
    "resnet": {"family": "resnet", "block": "bottleneck", "depths": [1, 1, 1, 1], "width": 8,
               "resolution": 48, "num_classes": 10, "padding": "same", "softmax": True,
               "groups": 4, "width_per_group": 16},
    "shufflenetv2": {"family": "shufflenetv2", "channels": [16, 32, 64], "repeats": [2, 2, 1],
                     "last_channels": 64, "stem_channels": 8, "resolution": 32},
    "squeezenet": {"family": "squeezenet", "width": 0.25, "resolution": 48, "num_classes": 10},
    "mobilenetv1": {"family": "mobilenetv1", "width": 0.25, "resolution": 32, "depth": 1},
    "mobilenetv2": {"family": "mobilenetv2", "width": 0.25, "resolution": 32,
                    "depths": [1] * 7, "kernels": [3, 5, 7, 3, 5, 7, 3]},
    "mobilenetv3": {"family": "mobilenetv3", "variant": "small", "width": 0.25,
                    "resolution": 32},
    "mnasnet": {"family": "mnasnet", "width": 0.25, "resolution": 32, "repeats": [1] * 6,
                "se_ratio": 0.25},
    "efficientnet_lite": {"family": "efficientnet_lite", "width": 0.25, "depth": 0.5,
                          "resolution": 32},
    "dscnn": {"family": "dscnn", "filters": 16, "blocks": 2},
    "crnn_kws": {"family": "crnn_kws", "frames": 16, "filters": 8, "hidden": 16, "layers": 1},
    "gru_kws": {"family": "gru_kws", "frames": 12, "hidden": 16, "layers": 2},
    "lstm_kws": {"family": "lstm_kws", "frames": 12, "hidden": 16, "bidirectional": True},
    "nas": {"family": "nas", "genome": {"resolution": 32, "stem_channels": 8, "head_channels": 64,
            "stages": [{"block": "fused", "expansion": 2, "kernel": 3, "channels": 12,
                        "depth": 2, "stride": 2},
                       {"block": "ibn", "expansion": 3, "kernel": 5, "channels": 20,
                        "depth": 1, "stride": 1}]}},
}  # fmt: skip

# The ops that make each family what it is, present in its small configuration.
SIGNATURE_OPS = {
    "resnet": {"Conv", "Add", "Relu", "MaxPool", "Softmax"},
    "shufflenetv2": {"Split", "Concat", "Reshape", "Transpose", "MaxPool", "ReduceMean"},
    "squeezenet": {"Concat", "MaxPool", "GlobalAveragePool"},
    "mobilenetv1": {"Conv", "Clip", "GlobalAveragePool", "Gemm"},
    "mobilenetv2": {"Conv", "Clip", "Add"},
    "mobilenetv3": {"HardSwish", "HardSigmoid", "Mul", "Relu", "Add"},
    "mnasnet": {"Sigmoid", "Mul", "ReduceMean", "Add"},
    "efficientnet_lite": {"Clip", "Add"},
    "dscnn": {"Conv", "AveragePool", "Softmax"},
    "crnn_kws": {"Conv", "Transpose", "Reshape", "GRU", "Gather", "Gemm"},
    "gru_kws": {"GRU", "Squeeze", "Gather"},
    "lstm_kws": {"LSTM", "Transpose", "Reshape", "Gather"},
    "nas": {"Conv", "Add"},
}


def _samples(family: str, n: int = SAMPLES_PER_FAMILY) -> list[dict]:
    rng = np.random.default_rng(2024)
    return [sample_spec(family, rng) for _ in range(n)]


def test_all_families_registered():
    expected = {"resnet", "mobilenetv1", "mobilenetv2", "mobilenetv3", "mnasnet",
                "shufflenetv2", "squeezenet", "efficientnet_lite", "dscnn", "crnn_kws",
                "gru_kws", "lstm_kws", "nas"}  # fmt: skip
    assert set(NETWORK_FAMILIES) == expected
    assert set(SMALL) == expected


@pytest.mark.parametrize("family", NETWORK_FAMILIES)
def test_sampled_specs_build_count_and_simulate(family):
    """Sampled specs: JSON round trip, checker, the stats equal an independent count of the
    ONNX model and ndpsim's own MAC count, within the caps, timing-only on two presets."""
    for spec in _samples(family):
        assert spec["family"] == family
        assert json.loads(json.dumps(spec)) == spec
        stats = network_stats(spec)
        assert stats["macs"] <= MAX_MACS and stats["params"] <= MAX_PARAMS
        assert stats["recurrent_steps"] <= MAX_RECURRENT_STEPS
        model = build_network(spec, seed=1)
        onnx.checker.check_model(model, full_check=True)
        assert (count_weights(model), count_macs(model)) == (stats["params"], stats["macs"])
        graph = load_model(model)
        assert list(graph.tensors[graph.inputs[0]].shape) == stats["input_shape"]
        for preset in ("generic", "ndp120"):
            report = ndpsim.simulate(graph, preset, SimOptions(timing_only=True))
            assert report.latency_cycles > 0 and report.energy_uj > 0
            assert report.macs == stats["macs"]


@pytest.mark.parametrize("family", NETWORK_FAMILIES)
def test_float_datapath_agrees_with_onnxruntime(family):
    """A small network of each family, full simulation: the float datapath equals
    onnxruntime to float32 rounding, and the 8-bit run is compared with onnxruntime too."""
    ort = pytest.importorskip("onnxruntime")
    spec = SMALL[family]
    model = build_network(spec, seed=3)
    x = np.random.default_rng(0).standard_normal(network_stats(spec)["input_shape"])
    x = x.astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = session.run(None, {"input": x})
    hw = load_preset("generic")
    program = lower(load_model(model), hw)
    (got,) = float_outputs(program, hw, {"input": x}).values()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    (row,) = ndpsim.simulate(model, hw).agreement
    assert row.reference == "onnxruntime" and row.sqnr_db > 15


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name),
                default)  # fmt: skip


@pytest.mark.parametrize("family", NETWORK_FAMILIES)
def test_signature_ops(family):
    model = build_network(SMALL[family])
    nodes = model.graph.node
    assert SIGNATURE_OPS[family] <= {n.op_type for n in nodes}
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    if family == "resnet":  # grouped, not depthwise: several input channels per group
        grouped = [n for n in nodes if n.op_type == "Conv" and _attr(n, "group", 1) > 1]
        assert grouped and all(inits[n.input[1]][1] > 1 for n in grouped)
    if family == "squeezenet":  # torchvision's ceil-mode pools
        assert [_attr(n, "ceil_mode") for n in nodes if n.op_type == "MaxPool"] == [1, 1, 1]
    opset = model.opset_import[0].version
    assert opset == (14 if family == "mobilenetv3" else 13)  # HardSwish is opset 14


@pytest.mark.parametrize(("spec", "params", "gmacs"), PUBLISHED,
                         ids=[json.dumps(s)[12:-1] for s, _, _ in PUBLISHED])  # fmt: skip
def test_published_params_and_macs(spec, params, gmacs):
    stats = network_stats(spec)
    assert stats["params_with_bn"] == params
    if gmacs is not None:
        assert round(stats["macs"] / 1e9, 3) == gmacs


@pytest.mark.parametrize(("shape", "params_m", "gmacs"), EFFICIENTNET_LITE)
def test_efficientnet_lite_published(shape, params_m, gmacs):
    width, depth, resolution = shape
    spec = {"family": "efficientnet_lite", "width": width, "depth": depth,
            "resolution": resolution}  # fmt: skip
    stats = network_stats(spec)
    assert round(stats["params_with_bn"] / 1e6, 3) == params_m
    assert round(stats["macs"] / 1e9, 3) == gmacs


@pytest.mark.parametrize(("spec", "params", "macs"), MLPERF, ids=["vww", "kws", "ic"])
def test_mlperf_tiny_configurations_exact(spec, params, macs):
    stats = network_stats(spec)
    assert (stats["params"], stats["macs"]) == (params, macs)
    model = build_network(spec)
    assert (count_weights(model), count_macs(model)) == (params, macs)


def test_reference_models_build_as_counted():
    """network_stats of the 224-px references up to MAX_PARAMS equal the built models'
    counts (the published-figure tests above use the counting builder only)."""
    for spec, params, _ in PUBLISHED:
        if params > MAX_PARAMS:
            continue
        model = build_network(spec)
        stats = network_stats(spec)
        assert (count_weights(model), count_macs(model)) == (stats["params"], stats["macs"])


def _recurrent_layers(model: onnx.ModelProto) -> list[tuple]:
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type in ("LSTM", "GRU"):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            shapes = tuple(inits[i] for i in node.input[1:4])
            layers.append((node.op_type, shapes, attrs["hidden_size"],
                           attrs.get("direction", b"forward"),
                           attrs.get("linear_before_reset", 0)))  # fmt: skip
    return layers


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("kws_gru.onnx", {"family": "gru_kws", "hidden": 64, "layers": 2, "softmax": False}),
        ("kws_lstm.onnx", {"family": "lstm_kws", "hidden": 32, "layers": 2,
                           "bidirectional": True, "softmax": False}),
    ],
)  # fmt: skip
def test_recurrent_matches_pytorch_export(path, spec):
    """The bundled PyTorch exports: same recurrent nodes (W, R, B shapes, attributes), same
    parameter count, and the same plumbing ops around them."""
    ref = onnx.load(REPO / "models" / path)
    ours = build_network(spec)
    assert _recurrent_layers(ours) == _recurrent_layers(ref)
    ref_params = sum(int(np.prod(i.dims)) for i in ref.graph.initializer)
    assert network_stats(spec)["params"] == count_weights(ours) == ref_params
    assert _data_path(ours) == _data_path(ref)


def _data_path(model: onnx.ModelProto) -> list[str]:
    """Op types of the nodes that compute on the input's values (not on its shape)."""
    data, ops = {"input"}, []
    for node in model.graph.node:
        if node.op_type != "Shape" and data & set(node.input):
            data.update(node.output)
            ops.append(node.op_type)
    return ops


def _convs(model: onnx.ModelProto) -> list[tuple]:
    """(weight shape, strides, pads) of every Conv; light_resnet50's weights are
    ConstantOfShape outputs, whose shape is their initializer input."""
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "ConstantOfShape":
            shapes[n.output[0]] = tuple(int(d) for d in values[n.input[0]])
    out = []
    for n in model.graph.node:
        if n.op_type == "Conv":
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            out.append((shapes[n.input[1]], list(a.get("strides") or [1, 1]),
                        list(a.get("pads") or [0, 0, 0, 0])))  # fmt: skip
    return out


def test_resnet50_conv_layers_match_light_resnet50():
    """The bottleneck ResNet-50 has the conv shapes, strides and pads of the onnx wheel's
    light_resnet50 (Caffe2's ResNet-50, stride on the 3x3), layer by layer."""
    ours = build_network({"family": "resnet", "block": "bottleneck", "depths": [3, 4, 6, 3]})
    ref = _convs(onnx.load(LIGHT_RESNET50))
    assert len(ref) == 53
    assert _convs(ours) == ref


def test_sampling_is_deterministic_and_varied():
    for family in NETWORK_FAMILIES:
        a, b = _samples(family, 6), _samples(family, 6)
        assert a == b
        assert len({json.dumps(s, sort_keys=True) for s in a}) == 6, family
        macs = [network_stats(s)["macs"] for s in a]
        assert max(macs) > 2 * min(macs), family


def test_build_is_byte_identical_per_seed():
    spec = _samples("mobilenetv3", 1)[0]
    a, b = build_network(spec, seed=5), build_network(spec, seed=5)
    assert a.SerializeToString() == b.SerializeToString()
    c = build_network(spec, seed=6)
    assert c.SerializeToString() != a.SerializeToString()
    assert [i.dims for i in c.graph.initializer] == [i.dims for i in a.graph.initializer]


def test_nas_spec_is_the_search_space_genome():
    from ndpsim.zoo.search_space import Genome, build_onnx

    spec = _samples("nas", 1)[0]
    model = build_onnx(Genome.model_validate(spec["genome"]), seed=2)
    assert build_network(spec, seed=2).SerializeToString() == model.SerializeToString()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"family": "alexnet"}, "unknown network family 'alexnet'"),
        ({}, "unknown network family None"),
        ("resnet", "must be a dict"),
        ({"family": "resnet", "widht": 8}, "bad resnet spec: widht"),
        ({"family": "mobilenetv2", "kernels": [3, 3]}, "bad mobilenetv2 spec: kernels"),
        ({"family": "mobilenetv1", "kernel": 4}, "bad mobilenetv1 spec: kernel"),
        ({"family": "shufflenetv2", "channels": [15, 32, 64]}, "bad shufflenetv2 spec:.*even"),
        ({"family": "dscnn", "first_kernel": [60, 4]}, "bad dscnn spec: first_kernel"),
        ({"family": "nas", "genome": {"resolution": 8}}, "bad nas spec: genome"),
        ({"family": "resnet", "groups": 2}, "bad resnet spec: groups .*bottleneck"),
        (
            {"family": "resnet", "block": "bottleneck", "width": 8, "width_per_group": 4},
            "bad resnet spec: width_per_group 4 leaves no channel",
        ),
    ],
)
def test_bad_specs_raise_value_error_naming_it(spec, message):
    with pytest.raises(ValueError, match=message):
        build_network(spec)
    with pytest.raises(ValueError, match=message):
        network_stats(spec)


def test_oversized_network_is_counted_not_built():
    spec = {"family": "resnet", "block": "bottleneck", "depths": [8, 8, 8, 8], "width": 256}
    assert network_stats(spec)["params"] > 64_000_000
    with pytest.raises(ValueError, match="resnet spec asks for .* parameters; build_network"):
        build_network(spec)


def test_unknown_family_in_sampler():
    with pytest.raises(ValueError, match="unknown network family 'vgg'"):
        sample_spec("vgg", np.random.default_rng(0))
