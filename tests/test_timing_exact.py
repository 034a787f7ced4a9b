"""Exact cycle counts of small assembled programs, computed by hand from the timing equations
(reference.duration / core._duration). Each expected number is written as the arithmetic
that produces it. Every case runs on both the numba core and the reference."""

from __future__ import annotations

import numpy as np

from ndpsim.isa import DESC_WIDTH, Counter, assemble
from ndpsim.sim import core
from ndpsim.sim import reference as ref

# A baseline machine; tests override single fields with T._replace(...).
T = core.Timing(
    input_bits_per_cycle=1,
    readout_columns_per_cycle=64,
    macro_pipeline_cycles=4,
    vector_lanes=16,
    vector_pipeline_cycles=2,
    softmax_cycles_per_element=4,
    sram_bytes_per_cycle=8.0,
    ext_mem_bytes_per_cycle=2.0,
    ext_mem_latency_cycles=50,
    instruction_issue_cycles=0,
)


def schedule(text: str, timing: core.Timing = T, n_units: int = 4, n_tokens: int = 4):
    """(start, end, counters of layer 0, unit_busy) of the program, timing only; the core and
    the reference must agree exactly."""
    instrs = assemble(text)
    args = (
        instrs,
        np.zeros((1, DESC_WIDTH), np.int64),
        np.zeros((1, 6), np.int64),
        np.zeros(1, np.float32),
        np.zeros(1, np.int32),
        np.zeros(1, np.int32),
        np.zeros(1, np.int64),
        timing,
        n_units,
        n_tokens,
        1,
        False,
        False,
    )
    c_cnt, c_busy, c_start, c_end = core.run_program(*args)
    r_cnt, r_busy, r_start, r_end = ref.run_program(*args)
    assert (c_cnt == r_cnt).all() and (c_busy == r_busy).all()
    assert (c_start == r_start).all() and (c_end == r_end).all()
    return c_start.tolist(), c_end.tolist(), c_cnt[0], c_busy.tolist()


def test_single_mvm():
    start, end, cnt, busy = schedule("MVM a2=10 cols=64 a_bits=8 w_bits=8")
    # 10 vectors x ceil(8 bits / 1 bit per cycle) x ceil(64 cols / 64 per cycle) + 4 pipeline
    assert end == [10 * 8 * 1 + 4] == [84]
    assert start == [0] and busy[0] == 84
    assert cnt[Counter.MACRO_BUSY_CYCLES] == cnt[Counter.MACRO_COMPUTE_CYCLES] == 84
    assert cnt[Counter.MACRO_INPUT_CYCLES] == 10 * 8


def test_mvm_readout_and_input_bits():
    # 100 columns read out 64 per cycle: ceil(100/64) = 2 readout cycles per input cycle
    assert schedule("MVM a2=10 cols=100 a_bits=8 w_bits=8")[1] == [10 * 8 * 2 + 4]
    # 3 input bits per cycle: ceil(8/3) = 3 input cycles per vector
    assert schedule("MVM a2=10 cols=64 a_bits=8 w_bits=8", T._replace(input_bits_per_cycle=3))[
        1
    ] == [10 * 3 * 1 + 4]
    # 4-bit activations take half the input cycles of 8-bit ones
    assert schedule("MVM a2=10 cols=64 a_bits=4 w_bits=8")[1] == [10 * 4 * 1 + 4]
    # zero columns still take one readout cycle per input cycle: max(1, ceil(0/64))
    assert schedule("MVM a2=10 cols=0 a_bits=8 w_bits=8")[1] == [10 * 8 * 1 + 4]
    # bit-sliced weights: 100 outputs of 4-bit weights are 400 cell columns, read out
    # 64 columns x 8 bits = 512 per cycle: ceil(400/512) = 1 readout cycle (8-bit: 2)
    assert schedule("MVM a2=10 cols=100 a_bits=8 w_bits=4")[1] == [10 * 8 * 1 + 4]
    # 200 outputs of 4-bit weights: ceil(800/512) = 2
    assert schedule("MVM a2=10 cols=200 a_bits=8 w_bits=4")[1] == [10 * 8 * 2 + 4]


def test_mvms_on_different_macros_run_in_parallel():
    start, end, _, busy = schedule(
        "MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8\nMVM unit=1 a2=5 cols=64 a_bits=8 w_bits=8"
    )
    assert start == [0, 0]
    assert max(end) == max(10 * 8 + 4, 5 * 8 + 4) == 84  # makespan = the longer one
    assert busy[:2] == [84, 44]


def test_same_unit_runs_in_order():
    start, end, _, busy = schedule(
        "MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8\nMVM unit=0 a2=5 cols=64 a_bits=8 w_bits=8"
    )
    assert start == [0, 84]
    assert end == [84, 84 + (5 * 8 + 4)] == [84, 128]  # makespan = the sum
    assert busy[0] == 128


def test_wait_on_token_delays_start_until_signaler_ends():
    start, end, _, _ = schedule(
        "MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8 signal=0\nELTWISE unit=1 work=32 wait0=0"
    )
    # the vector op waits for token 0 (ready at 84), then ceil(32/16) x 1 + 2 cycles
    assert start == [0, 84]
    assert end[1] == 84 + (32 // 16 * 1 + 2) == 88


def test_token_with_two_signalers_is_ready_when_both_finished():
    start, _, _, _ = schedule(
        "MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8 signal=1\n"
        "MVM unit=1 a2=20 cols=64 a_bits=8 w_bits=8 signal=1\n"
        "NOP unit=2 wait2=1"
    )
    assert start[2] == max(10 * 8 + 4, 20 * 8 + 4) == 164


def test_waits_see_only_earlier_signalers():
    # Token 0 is signaled only by a later instruction: the waiter does not wait for it.
    # Token 3 is never signaled: ready at cycle 0.
    start, _, _, _ = schedule(
        "NOP unit=1 wait0=0 wait1=3\nMVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8 signal=0"
    )
    assert start == [0, 0]


def test_max_of_three_waits():
    start, _, _, _ = schedule(
        "MVM unit=0 a2=1 cols=1 a_bits=8 w_bits=8 signal=0\n"
        "MVM unit=1 a2=2 cols=1 a_bits=8 w_bits=8 signal=1\n"
        "LOAD_W unit=2 bytes_in=10 signal=2\n"
        "NOP unit=3 wait0=0 wait1=1 wait2=2"
    )
    # max(1*8+4, 2*8+4, 50 + ceil(10/2))
    assert start[3] == max(1 * 8 + 4, 2 * 8 + 4, 50 + 5) == 55


def test_instruction_issue_delays_dispatch():
    t = T._replace(instruction_issue_cycles=5)
    # Zero-cycle NOPs on different units: instruction i cannot start before i x 5.
    start, _, _, _ = schedule("NOP unit=0\nNOP unit=1\nNOP unit=2", t)
    assert start == [0 * 5, 1 * 5, 2 * 5]
    # On one unit the later of (i x issue, unit free) wins: the second MVM waits for the unit,
    # the third NOP on another unit only for its issue slot.
    start, end, _, _ = schedule(
        "MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8\n"
        "MVM unit=0 a2=1 cols=64 a_bits=8 w_bits=8\nNOP unit=1",
        t,
    )
    assert start == [0, max(1 * 5, 84), 2 * 5] == [0, 84, 10]
    assert end[1] == 84 + (1 * 8 + 4)


def test_sram_bandwidth_bound_mvm():
    _, end, cnt, _ = schedule("MVM a2=1 cols=64 a_bits=8 w_bits=8 bytes_in=1000")
    # compute 1*8*1 + 4 = 12 cycles; SRAM ceil(1000 / 8 bytes per cycle) = 125
    assert end == [max(1 * 8 + 4, -(-1000 // 8))] == [125]
    assert cnt[Counter.MACRO_BUSY_CYCLES] == 125
    assert cnt[Counter.MACRO_COMPUTE_CYCLES] == 12  # the compute-bound part only
    # a fractional bandwidth: ceil(100 / 3.5) = ceil(28.57) = 29
    _, end, _, _ = schedule(
        "MVM a2=1 cols=64 a_bits=8 w_bits=8 bytes_in=100", T._replace(sram_bytes_per_cycle=3.5)
    )
    assert end == [29]


def test_dma_load_w_latency_plus_bandwidth():
    _, end, cnt, busy = schedule("LOAD_W unit=2 bytes_in=1001")
    # latency 50 + ceil(1001 bytes / 2 bytes per cycle) = 50 + 501
    assert end == [50 + 501] == [551]
    assert cnt[Counter.DMA_BUSY_CYCLES] == busy[2] == 551
    assert cnt[Counter.EXT_READ_BYTES] == cnt[Counter.WEIGHT_WRITE_BYTES] == 1001


def test_dma_spill_and_host_transfers():
    # STORE_A moves bytes_out: 50 + ceil(7 / 2) = 54
    assert schedule("STORE_A unit=2 bytes_out=7")[1] == [50 + 4]
    # LOAD_A with a quarter-byte-per-cycle link: 50 + ceil(3 / 0.25) = 62
    assert schedule("LOAD_A unit=2 bytes_in=3", T._replace(ext_mem_bytes_per_cycle=0.25))[1] == [
        50 + 12
    ]
    # the host writes through SRAM: ceil(100 / 8) = 13, no external latency
    assert schedule("HOST_IN unit=2 bytes_in=100")[1] == [13]
    assert schedule("HOST_OUT unit=2 bytes_out=17")[1] == [3]  # ceil(17 / 8)


def test_vector_op_lanes_and_pipeline():
    _, end, cnt, _ = schedule("ELTWISE unit=1 work=100")
    # ceil(100 elements / 16 lanes) x 1 cycle + 2 pipeline = 7 + 2
    assert end == [7 * 1 + 2] == [9]
    assert cnt[Counter.VECTOR_BUSY_CYCLES] == cnt[Counter.VECTOR_COMPUTE_CYCLES] == 9
    # the same op with 300 bytes of SRAM traffic is bandwidth bound: ceil((200 + 100) / 8)
    _, end, cnt, _ = schedule("COPY unit=1 work=100 bytes_in=200 bytes_out=100")
    assert end == [-(-300 // 8)] == [38]
    assert cnt[Counter.VECTOR_BUSY_CYCLES] == 38 and cnt[Counter.VECTOR_COMPUTE_CYCLES] == 9
    # REQUANT's SRAM time counts its reads too, though only its writes are counted as bytes
    _, end, cnt, _ = schedule("REQUANT unit=1 work=16 bytes_in=80 bytes_out=16")
    assert end == [max(16 // 16 + 2, -(-(80 + 16) // 8))] == [12]
    assert cnt[Counter.SRAM_READ_BYTES] == 0 and cnt[Counter.SRAM_WRITE_BYTES] == 16


def test_softmax_per_element_factor():
    _, end, cnt, _ = schedule("SOFTMAX unit=1 work=100")
    # ceil(100 / 16 lanes) x 4 cycles per element + 2 pipeline
    assert end == [7 * 4 + 2] == [30]
    assert cnt[Counter.VECTOR_LUT_OPS] == 100 and cnt[Counter.VECTOR_ELEMENT_OPS] == 3 * 100


def test_nop_takes_no_time():
    start, end, cnt, _ = schedule("MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8\nNOP unit=0")
    assert start[1] == end[1] == 84  # it waits for the unit, then takes 0 cycles
    assert cnt[Counter.INSTRUCTIONS] == 2


def test_double_buffering_overlaps_load_and_compute():
    # Load tile 1 while tile 0 computes: the second MVM waits only for its own load.
    text = """
        LOAD_W unit=2 bytes_in=100 signal=0
        LOAD_W unit=2 bytes_in=100 signal=1
        MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8 wait0=0
        MVM unit=0 a2=10 cols=64 a_bits=8 w_bits=8 wait0=1
    """
    start, end, _, _ = schedule(text)
    load = 50 + 100 // 2  # 100 cycles each, back to back on the DMA unit
    assert end[:2] == [load, 2 * load]
    assert start[2:] == [load, max(load + 84, 2 * load)] == [100, 200]
    assert max(end) == 2 * load + 84  # not 2 x (100 + 84): the second load hid the first MVM


def test_layer_setup_nop_takes_layer_setup_cycles():
    t = T._replace(layer_setup_cycles=30)
    # a0 = 1 marks a layer setup: it occupies its unit; the MVM waiting on it starts after
    start, end, cnt, busy = schedule("NOP unit=2 a0=1 signal=0\nMVM unit=0 a2=1 cols=64 "
                                     "a_bits=8 wait0=0\nNOP unit=2", t)  # fmt: skip
    assert end[0] == 30 and start[1] == 30 and end[1] == 30 + 1 * 8 + 4
    assert start[2] == end[2] == 30  # a plain NOP still takes 0 cycles
    assert busy[2] == 30


def test_layer_setup_nop_adds_position_cycles_per_output_position():
    t = T._replace(layer_setup_cycles=30, position_cycles=7)
    # a setup's a2 counts the layer's output positions: 30 + 25 x 7 cycles before the MVM
    start, end, _, busy = schedule("NOP unit=2 a0=1 a2=25 signal=0\nMVM unit=0 a2=1 cols=64 "
                                   "a_bits=8 wait0=0\nNOP unit=2 a2=25", t)  # fmt: skip
    assert end[0] == 30 + 25 * 7 == 205 and start[1] == 205
    assert start[2] == end[2] == 205  # a plain NOP (a0 = 0) ignores a2: 0 cycles
    assert busy[2] == 205
