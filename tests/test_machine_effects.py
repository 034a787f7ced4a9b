"""Effects the seed articles report must come out of the machine model's equations:
latency steps at multiples of the parallelism factor; depthwise convs use macros poorly."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

import ndpsim
from ndpsim import SimOptions
from ndpsim.config import load_preset


def _conv_model(cin: int, cout: int, hw: int = 16, k: int = 3, group: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((cout, cin // group, k, k)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[k // 2] * 4, group=group)],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, hw, hw])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.reshape(-1))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _latency(model, hw) -> int:
    return ndpsim.simulate(model, hw, SimOptions(timing_only=True)).latency_cycles


def test_latency_is_a_staircase_in_cout():
    hw = load_preset("generic").with_(macro_cols=32, macros_per_core=1)
    pf = hw.parallelism_factor
    lat = {c: _latency(_conv_model(16, c), hw) for c in range(8, 4 * pf + 1, 8)}
    for c in lat:
        step = -(-c // pf)
        same_step = [d for d in lat if -(-d // pf) == step]
        # within a step, latency is flat up to the channel-proportional vector work
        assert max(lat[d] for d in same_step) < 1.25 * min(lat[d] for d in same_step)
    chans = sorted(lat)
    in_step = [
        lat[b] - lat[a]
        for a, b in zip(chans, chans[1:], strict=False)
        if -(-a // pf) == -(-b // pf)
    ]
    for m in range(1, 4):  # crossing a multiple of the parallelism factor is a step up,
        jump = lat[m * pf + 8] - lat[m * pf]  # an order of magnitude above in-step slopes
        assert jump > 10 * max(in_step), (m, jump, max(in_step))


def test_depthwise_uses_macros_worse_than_a_standard_conv_of_equal_macs():
    hw = load_preset("generic")
    # depthwise 3x3 over 256 channels at 16x16: 256*9*256 MACs; standard 3x3 16->16 at 16x16
    # has 16*16*9*256 MACs = the same count
    dw = ndpsim.simulate(_conv_model(256, 256, group=256), hw, SimOptions(timing_only=True))
    std = ndpsim.simulate(_conv_model(16, 16), hw, SimOptions(timing_only=True))
    assert dw.macs == std.macs
    dw_util = next(lay.macro_utilization for lay in dw.layers if lay.kind == "mac")
    std_util = next(lay.macro_utilization for lay in std.layers if lay.kind == "mac")
    assert dw_util < std_util / 2, (dw_util, std_util)
    assert dw.latency_cycles > std.latency_cycles


def test_fewer_activation_bits_are_faster_and_cheaper():
    model = _conv_model(32, 64)
    r8 = ndpsim.simulate(model, load_preset("generic"), SimOptions(timing_only=True))
    r4 = ndpsim.simulate(
        model, load_preset("generic").with_(activation_bits=4), SimOptions(timing_only=True)
    )
    assert r4.latency_cycles < r8.latency_cycles
    assert r4.energy_uj < r8.energy_uj
