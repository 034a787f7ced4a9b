"""ndpsim.zoo: the generated reference models match the published layer tables exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from ndpsim import zoo

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "models"
SHARED_MLPERF_DIR = REPO.parent / "shared" / "mlperf_tiny_onnx"
LIGHT_RESNET50 = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"

# (params, MACs) from the MLPerf Tiny tables (BN-folded .tflite, biases included).
EXPECTED: dict[str, tuple[int, int]] = {
    "kws_dscnn": (22_604, 2_656_768),
    "vww_mobilenetv1_025": (210_850, 7_489_664),
    "ic_resnet8": (77_706, 12_501_632),
    "ad_fc_autoencoder": (265_864, 264_192),
}
OUTPUT_SHAPES = {
    "kws_dscnn": (1, 12),
    "vww_mobilenetv1_025": (1, 2),
    "ic_resnet8": (1, 10),
    "ad_fc_autoencoder": (1, 640),
}
MAX_FILE_BYTES = 1_200_000
MLPERF = sorted(EXPECTED)


def _run(model: onnx.ModelProto, seed: int = 1) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    x = np.random.default_rng(seed).standard_normal(inp.shape).astype(np.float32)
    (y,) = session.run(None, {inp.name: x})
    return y


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize("name", MLPERF)
def test_fresh_build_matches_table(name: str) -> None:
    model = zoo.MLPERF_TINY[name]()
    assert (zoo.count_params(model), zoo.count_macs(model)) == EXPECTED[name]
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert all(a.name != "auto_pad" for n in model.graph.node for a in n.attribute)


@pytest.mark.parametrize("name", MLPERF)
def test_committed_file_matches_table_and_fresh_build(name: str) -> None:
    path = MODELS_DIR / f"{name}.onnx"
    assert path.stat().st_size < MAX_FILE_BYTES
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert (zoo.count_params(model), zoo.count_macs(model)) == EXPECTED[name]
    # Byte-identical: rerun `python models/generate.py` after changing the zoo.
    assert path.read_bytes() == zoo.MLPERF_TINY[name](seed=0).SerializeToString()


@pytest.mark.parametrize("name", MLPERF)
def test_runs_in_onnxruntime(name: str) -> None:
    y = _run(zoo.MLPERF_TINY[name]())
    assert y.shape == OUTPUT_SHAPES[name]
    assert np.isfinite(y).all()
    if name != "ad_fc_autoencoder":
        assert np.isclose(y.sum(), 1.0, atol=1e-5)
        assert np.ptp(y) > 1e-3  # softmax not degenerate (all-equal)
    else:
        assert np.std(y) > 1e-3


def test_seed_changes_weights_not_shapes() -> None:
    a, b = zoo.kws_dscnn(seed=0), zoo.kws_dscnn(seed=1)
    assert [i.dims for i in a.graph.initializer] == [i.dims for i in b.graph.initializer]
    assert a.SerializeToString() != b.SerializeToString()


def test_kws_first_conv_is_tf_same_padded() -> None:
    conv = next(n for n in zoo.kws_dscnn().graph.node if n.op_type == "Conv")
    attrs = _attrs(conv)
    # 49x10 input, 10x4 kernel, stride 2 -> 25x5; pad totals 9 and 2, extra at the end.
    assert attrs["kernel_shape"] == [10, 4] and attrs["strides"] == [2, 2]
    assert attrs["pads"] == [4, 1, 5, 1]


def test_same_pads_put_extra_pixel_at_end() -> None:
    assert zoo.same_pads((96, 96), (3, 3), (2, 2)) == (0, 0, 1, 1)
    assert zoo.same_pads((24, 24), (3, 3), (1, 1)) == (1, 1, 1, 1)
    assert zoo.same_pads((8, 8), (1, 1), (2, 2)) == (0, 0, 0, 0)


def _mac_layers(model: onnx.ModelProto) -> list[dict[str, object]]:
    """Conv/Gemm/MatMul layers of ``model`` in graph order, with their weight facts.

    Weights may be initializers, ConstantOfShape outputs (light_resnet50) or Transposes
    of initializers (TF exports); a MatMul's bias is the initializer of the Add after it.
    """
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}

    def shape_of(name: str) -> tuple[int, ...] | None:
        if name in inits:
            return tuple(inits[name].shape)
        node = producers.get(name)
        if node is not None and node.op_type == "ConstantOfShape" and node.input[0] in inits:
            return tuple(int(d) for d in inits[node.input[0]])
        if node is not None and node.op_type == "Transpose":
            src = shape_of(node.input[0])
            if src is None:
                return None
            perm = _attrs(node).get("perm") or list(reversed(range(len(src))))
            return tuple(src[p] for p in perm)
        return None

    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    layers = []
    for node in model.graph.node:
        if node.op_type not in zoo.stats.MAC_OPS:
            continue
        shapes = [s for s in map(shape_of, node.input) if s is not None]
        weight = max(shapes, key=np.prod)
        bias = [s for s in shapes if s is not weight]
        if node.op_type == "MatMul":
            for add in consumers.get(node.output[0], []):
                if add.op_type == "Add":
                    bias += [s for s in map(shape_of, add.input) if s is not None]
        attrs = _attrs(node)
        layers.append(
            {
                "op": node.op_type,
                "weight": weight,
                "weight_elems": int(np.prod(weight)),
                "bias_elems": int(sum(map(np.prod, bias))),
                "strides": attrs.get("strides", [1, 1]),
                "group": attrs.get("group", 1),
                "pads": attrs.get("pads", [0, 0, 0, 0]),
            }
        )
    return layers


def test_resnet50_like_conv_shapes_match_light_resnet50() -> None:
    ref = [layer for layer in _mac_layers(onnx.load(LIGHT_RESNET50)) if layer["op"] == "Conv"]
    ours_model = zoo.resnet50_like()
    ours = [layer for layer in _mac_layers(ours_model) if layer["op"] == "Conv"]
    assert len(ours) == len(ref) == 53
    for a, b in zip(ours, ref, strict=True):
        assert (a["weight"], a["strides"], a["pads"]) == (b["weight"], b["strides"], b["pads"])
    ops = {n.op_type for n in ours_model.graph.node}
    assert {"MaxPool", "AveragePool", "Add", "Gemm", "Softmax"} <= ops
    assert "BatchNormalization" not in ops and "Sum" not in ops


@pytest.mark.parametrize(
    "build",
    [zoo.mobilenetv2_like, zoo.squeezenet_like, lambda: zoo.squeezenet_like(resolution=32)],
    ids=["mobilenetv2_like", "squeezenet_like_64", "squeezenet_like_32"],
)
def test_small_extra_models_check_and_run(build: Callable[[], onnx.ModelProto]) -> None:
    model = build()
    onnx.checker.check_model(model, full_check=True)
    y = _run(model)
    assert y.shape == (1, 10) and np.isfinite(y).all()
    assert zoo.count_macs(model) > 0


def test_mobilenetv2_like_has_residuals_and_relu6() -> None:
    ops = [n.op_type for n in zoo.mobilenetv2_like().graph.node]
    # Keras MobileNetV2 has 10 identity shortcuts regardless of the width multiplier.
    assert ops.count("Add") == 10
    assert ops.count("Clip") > 0 and "Relu" not in ops


def test_squeezenet_like_has_fire_concats() -> None:
    ops = [n.op_type for n in zoo.squeezenet_like().graph.node]
    assert ops.count("Concat") == 8 and ops.count("MaxPool") == 3


@pytest.mark.skipif(not SHARED_MLPERF_DIR.is_dir(), reason=f"{SHARED_MLPERF_DIR} absent")
@pytest.mark.parametrize("name", MLPERF)
def test_same_mac_layers_as_trained_reference(name: str) -> None:
    """Per-layer weight and bias element counts equal those of the real trained model.

    The reference files hold 2 more initializer elements than the table (a Reshape shape
    tensor), so whole-model param counts are compared on MAC layers only.
    """
    ref = _mac_layers(onnx.load(SHARED_MLPERF_DIR / f"{name}_ref.onnx"))
    ours = _mac_layers(zoo.MLPERF_TINY[name]())

    def counts(layers: list[dict[str, object]]) -> list[tuple[object, object]]:
        return sorted((la["weight_elems"], la["bias_elems"]) for la in layers)

    assert counts(ours) == counts(ref)
    assert sum(w + b for w, b in counts(ours)) == EXPECTED[name][0]
    # Stronger: same layers in the same order, down to strides, groups and SAME pads.
    keys = ("weight", "strides", "group", "pads")
    assert [tuple(la[k] for k in keys) for la in ours] == [tuple(la[k] for k in keys) for la in ref]
