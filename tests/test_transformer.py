"""The bundled keyword transformer (models/kws_transformer.onnx, exported from PyTorch by
models/generate_transformer.py): its shape arithmetic folds at import, Q·Kᵀ and A·V run as
products of two activations on the vector unit (MATMUL), it agrees with onnxruntime (float
datapath to 1e-4, int8 post-training quantization at >= 20 dB SQNR) and the report counts
every MAC: heads x tokens x tokens x head_dim per attention product per block, plus the
weight MACs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ndpsim
from ndpsim import SimOptions
from ndpsim.config import load_preset
from ndpsim.errors import UnsupportedOpError
from ndpsim.frontend import load_model
from ndpsim.isa import Counter
from ndpsim.lower import lower
from ndpsim.lower.registry import entry
from ndpsim.quant.bind import bind
from ndpsim.sim.run import read_value, run
from ndpsim.zoo.stats import count_macs

ort = pytest.importorskip("onnxruntime")
MODEL = Path(__file__).resolve().parents[1] / "models" / "kws_transformer.onnx"
GENERIC = load_preset("generic")


def _inputs(seed: int, n: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"input": rng.standard_normal((1, 49, 10)).astype(np.float32)} for _ in range(n)]


def _attention(g) -> tuple[list, int, int, int]:
    """The products of two activations, and (heads, tokens, head_dim) from the first one's
    left operand, Q [1, heads, tokens, head_dim]."""
    products = [n for n in g.nodes if n.op_type == "MatMul" and entry(n, g).unit == "vector"]
    _, heads, tokens, head_dim = g.tensors[products[0].inputs[0]].shape
    return products, heads, tokens, head_dim


def _weight_macs(g) -> int:
    """Rows x K x N of every MatMul / Gemm with a constant weight, from the graph's shapes."""
    total = 0
    for n in g.nodes:
        if n.op_type in ("MatMul", "Gemm") and entry(n, g).unit == "macro":
            w = g.constants[n.inputs[1]].shape
            rows = math.prod(g.tensors[n.inputs[0]].shape[:-1])
            total += rows * w[0] * w[1]
    return total


def test_shape_arithmetic_folds_and_attention_runs_on_the_vector_unit():
    g = load_model(MODEL)
    ops = {n.op_type for n in g.nodes}
    assert not ops & {"Constant", "ConstantOfShape", "Equal", "Where", "Expand", "Shape"}
    products, heads, tokens, head_dim = _attention(g)
    # two blocks of 2-head attention over 49 frames + the class token (the generator's sizes)
    assert (len(products), heads, tokens, head_dim) == (4, 2, 50, 32)
    for p in products:  # Q·Kᵀ: [.., T, hd]·[.., hd, T]; A·V: [.., T, T]·[.., T, hd]
        assert all(v not in g.constants for v in p.inputs)
    assert sum(entry(n, g).unit == "macro" for n in g.nodes) == 10  # embed, 4 per block, head


def test_report_counts_the_activation_products_and_the_weight_macs():
    g = load_model(MODEL)
    products, heads, tokens, head_dim = _attention(g)
    per_product = heads * tokens * tokens * head_dim  # 160,000
    weights = _weight_macs(g)
    r = ndpsim.simulate(MODEL, GENERIC, timing_only=True)
    assert r.macs == len(products) * per_product + weights == 3_948_928
    assert r.macs == count_macs(onnx.load(MODEL))  # ndpsim.zoo's own count from the ONNX
    attn = [lay for lay in r.layers if lay.op_type == "MatMul" and lay.kind == "vector"]
    assert [lay.macs for lay in attn] == [per_product] * len(products)
    assert all(lay.macro_busy_cycles == 0 and lay.vector_busy_cycles > 0 for lay in attn)
    assert sum(lay.macs for lay in r.layers) == r.macs


def test_attention_products_are_timed_by_the_vector_lanes():
    """Doubling the lanes halves an attention product's vector cycles (but the pipeline's);
    the macros' busy cycles do not change."""

    def cycles(hw):
        r = ndpsim.simulate(MODEL, hw, timing_only=True)
        busy = {lay.name: lay.vector_busy_cycles for lay in r.layers}
        mac = {lay.name: lay.macro_busy_cycles for lay in r.layers if lay.kind == "mac"}
        return busy, mac

    (v16, m16), (v32, m32) = cycles(GENERIC), cycles(GENERIC.with_(vector_lanes=32))
    assert m16 == m32
    names = [n for n in v16 if n.endswith(("attn/MatMul", "attn/MatMul_1"))]
    assert len(names) == 4
    for n in names:  # 50 instructions of 3,200 MACs: 200 + 2 cycles at 16 lanes, 100 + 2 at 32
        assert (v16[n], v32[n]) == (10_100, 5_100)


def _with_logits(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """A copy whose graph also outputs the head's logits (the Softmax's input)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    logits = next(n for n in m.graph.node if n.output[0] == "output").input[0]
    shape = load_model(model).tensors[logits].shape
    m.graph.output.append(helper.make_tensor_value_info(logits, TensorProto.FLOAT, shape))
    return m, logits


def test_float_datapath_matches_onnxruntime():
    model, logits = _with_logits(onnx.load(MODEL))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    program = lower(load_model(model), GENERIC)
    params = bind(program, None)
    for x in _inputs(5, 3):
        want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, x), strict=True))
        res = run(program, GENERIC, params, x)
        for name in ("output", logits):
            got = read_value(program, res, name, None).reshape(want[name].shape)
            np.testing.assert_allclose(got, want[name], rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("preset", ["generic", "ndp120"])
def test_int8_ptq_agrees_with_onnxruntime(preset):
    """The project's post-training quantization (calibrated on 8 seeded random inputs, held
    out from the 4 compared) against onnxruntime's float output."""
    r = ndpsim.simulate(MODEL, preset, SimOptions(inputs=_inputs(9, 4), calibration_samples=8))
    (agreement,) = r.agreement
    assert agreement.reference == "onnxruntime" and agreement.samples == 4
    assert agreement.sqnr_db >= 20.0, agreement


def _attention_model(scores_only: bool) -> onnx.ModelProto:
    """One 2-head self-attention over 12 tokens of 16 features (Q·Kᵀ only, or through the
    softmax and A·V), seeded weights."""
    rng = np.random.default_rng(0)
    t, d, h = 12, 16, 2
    n = helper.make_node
    nodes = [n("MatMul", ["x", f"w{c}"], [c]) for c in "qkv"]
    perms = {"q": [0, 2, 1, 3], "k": [0, 2, 3, 1], "v": [0, 2, 1, 3]}  # K transposed
    for c in "qkv":
        nodes += [n("Reshape", [c, "heads"], [f"{c}4"]), n("Transpose", [f"{c}4"], [f"{c}h"],
                                                           perm=perms[c])]  # fmt: skip
    nodes += [n("MatMul", ["qh", "kh"], ["s"]), n("Softmax", ["s"], ["a"], axis=-1),
              n("MatMul", ["a", "vh"], ["y"])]  # fmt: skip
    out = ("s", [1, h, t, t]) if scores_only else ("y", [1, h, t, d // h])
    inits = [
        helper.make_tensor(
            f"w{c}", TensorProto.FLOAT, (d, d), (rng.standard_normal(d * d) * 0.3).tolist()
        )
        for c in "qkv"
    ]
    inits.append(helper.make_tensor("heads", TensorProto.INT64, (4,), [1, t, h, d // h]))
    g = helper.make_graph(nodes[: -2 if scores_only else None], "attention",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, d])],
                          [helper.make_tensor_value_info(*out[:1], TensorProto.FLOAT, out[1])],
                          inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.mark.parametrize(
    "fmt, act, scores_only",
    [("QDQ", "QInt8", False), ("QOperator", "QUInt8", False), ("QOperator", "QInt8", False),
     ("QOperator", "QInt8", True)],
)
def test_quantized_attention_is_bit_exact_with_onnxruntime(fmt, act, scores_only, tmp_path):
    """onnxruntime-quantized attention (its quantizer: QLinearMatMul of two activations in
    operator form, DQ -> MatMul -> Q in QDQ) runs on MATMUL to the bit on 10 inputs, through
    the int8 QLinearSoftmax too (a row whose probability rounds to 1 saturates at 127), and
    stopped at the scores."""
    pytest.importorskip("onnxruntime.quantization")
    from test_quantized_onnx import lsb_differences, quantized

    src = tmp_path / "attention.onnx"
    onnx.save(_attention_model(scores_only), src)
    path = quantized(src, tmp_path / f"attention_{fmt}_{act}.onnx", fmt, act=act)
    ops = [nd.op_type for nd in onnx.load(path).graph.node]
    assert ops.count("QLinearMatMul" if fmt == "QOperator" else "MatMul") == 4 + (not scores_only)
    assert lsb_differences(path, range(10)) == [0] * 10


def _product_model(a_shape, b_shape) -> onnx.ModelProto:
    """y = MatMul(a, b), both graph inputs."""
    y_shape = list(np.matmul(np.zeros(a_shape), np.zeros(b_shape)).shape)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")],
        "product",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
         for n, s in (("a", a_shape), ("b", b_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


SHAPES = [  # ONNX MatMul's cases: batches, broadcasting either way, 1-D operands
    ((7, 9), (9, 5)),
    ((1, 2, 50, 32), (1, 2, 32, 50)),  # Q·Kᵀ
    ((2, 1, 3, 4), (3, 4, 5)),
    ((5, 7), (2, 3, 7, 6)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
    ((6,), (6,)),
]


@pytest.mark.parametrize("a_shape, b_shape", SHAPES, ids=str)
def test_products_of_two_activations(a_shape, b_shape):
    """The float datapath within 1e-5 of onnxruntime; the integer datapath (asymmetric int8,
    so zero points are nonzero) equal to the integer arithmetic written out here: exact
    products of (q - zp), summed, scaled by sa sb / sy, rounded half to even, saturated."""
    from ndpsim.quant.ptq import PTQOptions
    from ndpsim.sim.calibrate import calibrate

    model = _product_model(a_shape, b_shape)
    program = lower(load_model(model), GENERIC)
    rng = np.random.default_rng(len(a_shape) * 10 + len(b_shape))
    x = {"a": rng.standard_normal(a_shape).astype(np.float32),
         "b": rng.standard_normal(b_shape).astype(np.float32) + 0.5}  # fmt: skip
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, x)
    got = read_value(program, run(program, GENERIC, bind(program, None), x), "y", None)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
    plan = calibrate(program, GENERIC, [x], PTQOptions(activations="asymmetric"))
    qa, qb, qy = (plan.tensors[v] for v in ("a", "b", "y"))
    assert qa.zero_point != 0 or qb.zero_point != 0
    acc = np.matmul(qa.quantize(x["a"]) - qa.zero_point, qb.quantize(x["b"]) - qb.zero_point)
    r = np.float32(qa.scale * qb.scale / qy.scale)
    exact = np.clip(np.rint(acc.astype(np.float32) * r) + qy.zero_point, qy.qmin, qy.qmax)
    res = run(program, GENERIC, bind(program, plan), x, plan)
    q = read_value(program, res, "y", plan, dequantize=False)
    np.testing.assert_array_equal(q.reshape(exact.shape), exact)
    assert int(res.counters[:, Counter.MACS].sum()) == acc.size * x["a"].shape[-1]  # outputs x K


def test_batch_dims_that_do_not_merge_into_two_are_refused_by_name():
    model = _product_model((2, 1, 2, 3, 4), (1, 2, 1, 4, 5))  # batch strides (s,0,s') / (0,s,0)
    with pytest.raises(UnsupportedOpError, match="MatMul 'mm': more than 2 batch dims"):
        lower(load_model(model), GENERIC)
