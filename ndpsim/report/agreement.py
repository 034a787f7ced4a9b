"""How a simulated output agrees with a reference: SQNR, max error, top-1; and the
reference itself, onnxruntime's float result when onnxruntime is installed."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ndpsim.ir import Graph
from ndpsim.report.schema import Agreement


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of `got` against `ref`, in dB."""
    noise = float(np.sum((ref - got) ** 2))
    signal = float(np.sum(ref**2))
    return float("inf") if noise == 0 else 10 * np.log10(max(signal, 1e-30) / noise)


def agreement(
    graph: Graph, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], ref_name: str
) -> list[Agreement]:
    """One row per output; top-1 only for a softmax output of one sample (class scores)."""
    rows = []
    producers = graph.producers()
    for name, got in outputs.items():
        ref = reference[name].reshape(got.shape)
        top1 = None
        src = producers.get(name)
        if src is not None and src.op_type == "Softmax" and got.size == got.shape[-1]:
            top1 = bool(np.argmax(got) == np.argmax(ref))
        rows.append(
            Agreement(
                reference=ref_name,
                output=name,
                sqnr_db=sqnr_db(ref, got),
                max_abs_error=float(np.max(np.abs(ref - got))),
                top1_agreement=top1,
            )
        )
    return rows


_ORT_TYPES = {"tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(float)": "float32",
              "tensor(double)": "float64", "tensor(bool)": "bool"}  # fmt: skip


def onnxruntime_outputs(
    model: Any, inputs: dict[str, np.ndarray], fixed: dict | None = None
) -> dict[str, np.ndarray] | None:
    """onnxruntime's float result, or None when onnxruntime is not installed. `fixed`: inputs
    fixed to values (SimOptions.input_values), fed in the dtype the model declares."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    src = (
        str(model)
        if isinstance(model, (str, os.PathLike))
        else (model if isinstance(model, bytes) else model.SerializeToString())
    )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feed = dict(inputs)
    for i in sess.get_inputs():
        if fixed and i.name in fixed:
            dtype = np.dtype(_ORT_TYPES.get(i.type, "float32"))
            shape = [d for d in i.shape if isinstance(d, int)]
            feed[i.name] = np.asarray(fixed[i.name], dtype).reshape(shape)
    return dict(zip(names, sess.run(None, feed), strict=True))
