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
    graph: Graph,
    outputs: list[dict[str, np.ndarray]],
    reference: list[dict[str, np.ndarray]],
    ref_name: str,
) -> list[Agreement]:
    """One row per output, over every sample (`outputs[i]` against `reference[i]`): SQNR
    of all samples' values together, the largest error, and for a softmax output of one
    sample each (class scores) how many samples' top-1 agrees."""
    rows = []
    producers = graph.producers()
    for name in outputs[0]:
        got = [o[name] for o in outputs]
        ref = [r[name].reshape(g.shape) for r, g in zip(reference, got, strict=True)]
        src = producers.get(name)
        agreed = None
        if src is not None and src.op_type == "Softmax" and got[0].size == got[0].shape[-1]:
            agreed = sum(bool(np.argmax(g) == np.argmax(r)) for g, r in zip(got, ref, strict=True))
        all_got, all_ref = (
            np.concatenate([g.ravel() for g in got]),
            np.concatenate([r.ravel() for r in ref]),
        )
        rows.append(
            Agreement(
                reference=ref_name,
                output=name,
                sqnr_db=sqnr_db(all_ref, all_got),
                max_abs_error=float(np.max(np.abs(all_ref - all_got))),
                top1_agreement=None if agreed is None else agreed == len(got),
                samples=len(got),
                top1_agreed=agreed,
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
