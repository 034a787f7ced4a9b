"""Two cores, one truth: the numba core matches the reference interpreter (the spec) bit for
bit on random valid programs — counters, unit busy cycles, start and end of every
instruction, and the memory arena and accumulators after the run. The one exception is
documented in kernels_mac: float MVM tiles of FLOAT_DOT_MIN_ROWS rows or more sum in SIMD
partial sums, so there the float datapath agrees to float32 rounding (the schedule and
counters still to the bit). And timing parameters never change functional outputs."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_programs import KINDS, RandomProgram, random_program, random_timing

from ndpsim.isa import (
    DESC_FIELDS,
    DESC_WIDTH,
    EXECUTES,
    Counter,
    EltwiseKind,
    Opcode,
    PoolKind,
    assemble,
)
from ndpsim.sim import core
from ndpsim.sim import reference as ref
from ndpsim.sim.kernels_mac import FLOAT_DOT_MIN_ROWS

OUTPUTS = ("counters", "unit_busy", "start", "end", "mem", "acc")
INT_SEEDS = range(250)
FLOAT_SEEDS = range(10_000, 10_060)
DEEP_SEEDS = range(20_000, 20_200)
DEEP_KINDS = ("conv", "conv", "conv", *KINDS)  # convs more often, other ops reading their outputs
# Float programs with long tiles: |core - reference| <= this x the array's largest |value|.
# The largest seen over 1,000 such programs was 2.5e-6 (reassociating sums of ~300 products).
FLOAT_DOT_RTOL = 1e-4


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    """Bitwise equality: floats must agree to the bit (sign of zero and NaN payload too)."""
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    return x.tobytes() == y.tobytes()


def mismatches(p: RandomProgram) -> list[str]:
    """Names of the outputs on which the core and the reference differ."""
    want, got = p.run(ref.run_program), p.run(core.run_program)
    return [n for n, a, b in zip(OUTPUTS, want, got, strict=True) if not _same(a, b)]


@pytest.mark.parametrize("seed", INT_SEEDS)
def test_integer_datapath_bit_exact(seed):
    p = random_program(seed)
    assert mismatches(p) == [], f"seed {seed}: core != reference"


@pytest.mark.parametrize("seed", range(40))
def test_integer_datapath_bit_exact_with_sums_beyond_32_bits(seed):
    p = random_program(seed, size=4, kinds=("conv",), wide=True)
    assert mismatches(p) == [], f"wide seed {seed}: core != reference"


def longest_tile_rows(p: RandomProgram) -> int:
    """The most k rows any MVM of the program reduces over (0 without MVMs)."""
    mvms = p.instrs[p.instrs["op"] == Opcode.MVM]
    rows = p.tiles[mvms["a0"], 3] - p.tiles[mvms["a0"], 2]
    return int(rows.max()) if rows.size else 0


@pytest.mark.parametrize("seed", range(40))
def test_integer_datapath_bit_exact_with_long_tiles(seed):
    p = random_program(seed, deep=True, kinds=DEEP_KINDS)
    assert mismatches(p) == [], f"deep seed {seed}: core != reference"


@pytest.mark.parametrize("seed", FLOAT_SEEDS)
def test_float_datapath_bit_exact(seed):
    p = random_program(seed, float_mode=True)
    assert longest_tile_rows(p) < FLOAT_DOT_MIN_ROWS, "a long tile would not be bit-exact"
    assert mismatches(p) == [], f"float seed {seed}: core != reference"


def _float_gap(want: np.ndarray, got: np.ndarray) -> float:
    """max |got - want| over the finite values, relative to the largest |want|; inf when the
    non-finite values (NaN, +-inf) differ in place or sign."""
    finite = np.isfinite(want)
    if not (np.isfinite(got) == finite).all() or not _same(want[~finite], got[~finite]):
        return np.inf
    if not finite.any():
        return 0.0
    w, g = want[finite].astype(np.float64), got[finite].astype(np.float64)
    return float(np.abs(g - w).max() / max(np.abs(w).max(), np.finfo(np.float32).tiny))


def test_float_datapath_long_tiles_agree_to_float32_rounding():
    long_tiles = 0
    for seed in DEEP_SEEDS:
        p = random_program(seed, float_mode=True, deep=True, kinds=DEEP_KINDS)
        long_tiles += longest_tile_rows(p) >= FLOAT_DOT_MIN_ROWS
        want, got = p.run(ref.run_program), p.run(core.run_program)
        for name, a, b in zip(OUTPUTS[:4], want[:4], got[:4], strict=True):
            assert _same(a, b), f"deep float seed {seed}: {name} differs"
        for name, a, b in zip(OUTPUTS[4:], want[4:], got[4:], strict=True):
            gap = _float_gap(a, b)
            assert gap <= FLOAT_DOT_RTOL, f"deep float seed {seed}: {name} off by {gap:.2e}"
    assert long_tiles >= len(DEEP_SEEDS) // 4, f"only {long_tiles} programs had long tiles"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 4), float_mode=st.booleans())
def test_random_programs_hypothesis(seed, size, float_mode):
    p = random_program(seed, float_mode=float_mode, size=size)
    assert mismatches(p) == []


def test_timing_never_changes_functional_outputs():
    rng = np.random.default_rng(7)
    changed = 0
    for seed in range(40):
        p = random_program(seed, float_mode=seed % 4 == 0)
        a = p.run(core.run_program, timing=random_timing(rng))
        b = p.run(core.run_program, timing=random_timing(rng))
        assert _same(a[4], b[4]) and _same(a[5], b[5]), f"seed {seed}: timing changed outputs"
        changed += int(a[3].max() != b[3].max())
    assert changed >= 20, "random timings should move the makespan of most programs"


def test_timing_only_mode_times_and_counts_the_same():
    # execute=False skips the arithmetic: counters and the schedule must not move.
    for seed in range(20):
        p = random_program(seed)
        run, skip = p.run(core.run_program), p.run(core.run_program, execute=False)
        for name, a, b in zip(OUTPUTS[:4], run[:4], skip[:4], strict=True):
            assert _same(a, b), f"seed {seed}: {name}"
        assert _same(skip[4], p.mem) and _same(skip[5], p.acc)


def test_schedule_invariants():
    for seed in range(40):
        p = random_program(seed)
        counters, busy, start, end, *_ = p.run(core.run_program)
        assert counters[:, Counter.INSTRUCTIONS].sum() == len(p.instrs)
        assert busy.sum() == (end - start).sum()
        issue = np.arange(len(p.instrs)) * p.timing.instruction_issue_cycles
        assert (start >= issue).all() and (end >= start).all()
        for u in range(p.n_units):  # each unit runs its queue in order, one at a time
            on_u = np.flatnonzero(p.instrs["unit"] == u)
            assert (start[on_u[1:]] >= end[on_u[:-1]]).all()
        for i, ins in enumerate(p.instrs):  # a waiter starts after every earlier signaler
            for w in ins[["wait0", "wait1", "wait2"]].tolist():
                if w >= 0:
                    signalers = np.flatnonzero(p.instrs["signal"][:i] == w)
                    assert (start[i] >= end[signalers]).all()


# --- minimal repros of divergences found and fixed (regression tests) ---------------------


def _run_both(instrs, desc, mem, fparams, weights=None, acc=None, float_mode=True):
    ftype = np.float32 if float_mode else np.int32
    weights = np.zeros(1, ftype) if weights is None else weights
    acc = np.zeros(1, np.float32 if float_mode else np.int64) if acc is None else acc
    out = []
    for runner in (ref.run_program, core.run_program):
        m, a = mem.copy(), acc.copy()
        runner(
            instrs,
            desc,
            np.array([[0, 1, 0, 3, 0, 1]], np.int64),
            fparams,
            weights,
            m,
            a,
            random_timing(np.random.default_rng(0)),
            1,
            1,
            1,
            True,
            float_mode,
        )
        out.append((m, a))
    return out


def _desc(desc_kind: str, /, **values: int) -> np.ndarray:
    d = np.zeros((1, DESC_WIDTH), np.int64)
    for k, v in values.items():
        d[0, DESC_FIELDS[desc_kind][k]] = v
    return d


def _conv_1x1_3ch(**values: int) -> np.ndarray:
    """The descriptor of a 1x1 conv of 3 input channels to 1 output on one pixel, no bias."""
    return _desc(
        "conv", in_sc=1, in_sy=1, in_sx=1, cin=3, h=1, w=1, cout=1, oh=1, ow=1, kh=1, kw=1,
        stride_h=1, stride_w=1, dil_h=1, dil_w=1, groups=1, bias_base=-1, **values,
    )  # fmt: skip


def test_float_mvm_accumulates_in_float32():
    # acc = 1e8 + 1 - 1e8 over a 1x1 conv with cin=3, all weights 1: float32 gives 0.
    desc = _conv_1x1_3ch()
    (_, want), (_, got) = _run_both(
        assemble("MVM a0=0 a1=0 a2=1 rows=3 cols=1"),
        desc,
        np.array([1e8, 1.0, -1e8], np.float32),
        np.zeros(1, np.float32),
        weights=np.ones(3, np.float32),
    )
    assert want[0] == 0.0
    assert _same(want, got)


@pytest.mark.parametrize("kind,cip", [(0, 0), (1, 1)], ids=["max", "avg-count-pad"])
@pytest.mark.parametrize("mem0", [-5.0, np.inf])
def test_all_padding_pool_window_is_zero(kind, cip, mem0):
    desc = _desc(
        "pool",
        kind=kind,
        in_base=0,
        in_sc=1,
        in_sy=1,
        in_sx=1,
        c=1,
        h=1,
        w=1,
        out_base=1,
        out_sc=1,
        out_sy=1,
        out_sx=1,
        oh=1,
        ow=1,
        kh=1,
        kw=1,
        stride_h=1,
        stride_w=1,
        dil_h=1,
        dil_w=1,
        pad_top=1,
        count_include_pad=cip,
    )
    (want, _), (got, _) = _run_both(
        assemble("POOL a1=0 a2=1"), desc, np.array([mem0, 7.0], np.float32), np.ones(1, np.float32)
    )
    assert _same(want, got)


def test_huge_value_saturates_to_qmax():
    desc = _desc("copy", x_base=0, y_base=1, d0=1, d1=1, d2=1, d3=1, qmin=-128, qmax=127, r=0)
    (want, _), (got, _) = _run_both(
        assemble("COPY a1=0 a2=1"),
        desc,
        np.array([1, 0], np.int32),
        np.array([1e19], np.float32),
        float_mode=False,
    )
    assert want[1] == got[1] == 127


def test_an_mvm_regathers_after_a_vector_op_rewrote_its_input():
    # The core reuses the block the previous MVM gathered when the next MVM reads the same
    # one, and weight loads in between do not matter; a vector op storing into the input
    # in between must force a new gather. MVM, LOAD_W, ELTWISE x = y + y, MVM again.
    conv = _conv_1x1_3ch(acc_min=-(2**31), acc_max=2**31 - 1)
    add = _desc(
        "eltwise", kind=0, a_base=3, b_base=3, y_base=0, d0=1, d1=1, d2=1, d3=3, a_s3=1,
        b_s3=1, y_s3=1, ra=0, rb=1, qmin=-1000, qmax=1000,
    )  # fmt: skip
    instrs = assemble(
        "MVM desc=0 a0=0 a1=0 a2=1 rows=3 cols=1\nLOAD_W unit=0 bytes_in=4\n"
        "MVM desc=0 a0=0 a1=0 a2=1 rows=3 cols=1\nELTWISE desc=1 a1=0 a2=3\n"
        "MVM desc=0 a0=0 a1=0 a2=1 rows=3 cols=1"
    )
    for float_mode in (True, False):
        ftype = np.float32 if float_mode else np.int32
        (_, want), (_, got) = _run_both(
            instrs,
            np.vstack([conv, add]),
            np.array([1, 2, 3, 10, 20, 30], ftype),
            np.ones(2, np.float32),
            weights=np.ones(3, ftype),
            acc=np.zeros(1, np.float32 if float_mode else np.int64),
            float_mode=float_mode,
        )
        assert want[0] == 6 + 6 + 120  # two MVMs on (1, 2, 3), one on (20, 40, 60)
        assert _same(want, got)


@pytest.mark.parametrize("seed", range(0, 200, 4))
def test_runs_cover_the_instructions_with_arithmetic_once_in_program_order(seed):
    # the core dispatches one run at a time: maximal stretches of one opcode's arithmetic
    # (MVMs: of one descriptor), which is what makes reusing a gathered block safe
    p = random_program(seed, deep=seed % 8 == 0, kinds=DEEP_KINDS)
    executes = np.isin(p.instrs["op"], sorted(EXECUTES))
    covered, keys = [], []
    for op, i0, i1, macs, lo, hi in core.kernel_runs(p.instrs):
        mine = i0 + np.flatnonzero(executes[i0:i1])
        assert mine[0] == i0 and mine[-1] == i1 - 1
        assert (p.instrs["op"][mine] == op).all()
        sel = p.instrs[mine]
        if op == Opcode.MVM:
            assert len(set(sel["desc"])) == 1
            assert macs == sel["work"].sum()
            assert (lo, hi) == (sel["a1"].min(), (sel["a1"] + sel["a2"].astype(int)).max())
        keys.append((op, sel["desc"][0] if op == Opcode.MVM else -1))
        covered += mine.tolist()
    assert covered == np.flatnonzero(executes).tolist()
    assert all(a != b for a, b in zip(keys, keys[1:], strict=False))  # maximal


def _execute(p: RandomProgram, threads: int, min_macs: int) -> tuple[np.ndarray, np.ndarray]:
    """(mem, acc) after the core's arithmetic with MVM runs of >= min_macs MACs split over
    `threads` (a parallel loop of that many iterations: more than the machine's cores is
    allowed, so the split is exercised on any machine)."""
    mem, acc = p.mem.copy(), p.acc.copy()
    core.execute_program(
        p.instrs, p.desc, p.tiles, p.fparams, p.weights, mem, acc, p.float_mode, min_macs, threads
    )
    return mem, acc


@pytest.mark.parametrize("float_mode", [False, True], ids=["integer", "float"])
def test_mvm_runs_split_over_threads_compute_what_one_thread_does(float_mode):
    split = 0
    for seed in range(30_000, 30_080):
        p = random_program(seed, float_mode=float_mode, deep=True, kinds=DEEP_KINDS)
        mvm = p.instrs["op"] == Opcode.MVM
        split += bool(mvm.any() and p.instrs["a2"][mvm].max() >= 6)  # >= 2 pixels a thread
        want = _execute(p, 1, -1)
        for threads in (2, 3):
            got = _execute(p, threads, 0)
            assert _same(want[0], got[0]) and _same(want[1], got[1]), f"seed {seed}, {threads}"
    assert split >= 40, f"only {split} programs had a run wide enough to split"


def test_split_runs_on_a_lowered_model_match_one_thread(monkeypatch):
    from ndpsim.api import random_inputs
    from ndpsim.config import load_preset
    from ndpsim.frontend import load_model
    from ndpsim.lower import lower
    from ndpsim.quant.bind import bind
    from ndpsim.sim.calibrate import calibrate
    from ndpsim.sim.run import run
    from ndpsim.zoo import ic_resnet8

    if numba.get_num_threads() < 2:
        pytest.skip("numba has one thread here: nothing to split")
    hw = load_preset("generic")
    graph = load_model(ic_resnet8(seed=0))
    program = lower(graph, hw)
    x = random_inputs(graph, 0)
    runs = {}
    for label, min_macs in (("serial", -1), ("split", 0)):
        monkeypatch.setattr(core, "PARALLEL_MIN_MACS", min_macs)
        plan = calibrate(program, hw, [x])
        runs[label] = (run(program, hw, bind(program, None), x).mem, plan,
                       run(program, hw, bind(program, plan), x, plan).mem)  # fmt: skip
    (f1, plan1, i1), (f2, plan2, i2) = runs["serial"], runs["split"]
    assert _same(f1, f2), "float run"
    assert plan1.tensors == plan2.tensors
    assert _same(i1, i2), "integer run"


@pytest.mark.parametrize(
    ("text", "kind", "values"),
    [
        ("ELTWISE a1=0 a2=1", "eltwise", {"kind": int(EltwiseKind.QADD), "d0": 1, "d1": 1,
                                          "d2": 1, "d3": 1}),
        ("POOL a1=0 a2=1", "pool", {"kind": int(PoolKind.AVG_SCALED), "c": 1, "h": 1, "w": 1,
                                    "oh": 1, "ow": 1, "kh": 1, "kw": 1}),
        ("SOFTMAX a1=0 a2=1", "softmax", {"mode": 1, "outer": 1, "length": 1, "inner": 1}),
    ],
    ids=["qadd", "avg-scaled", "softmax-lut"],
)  # fmt: skip
def test_onnxruntime_kinds_are_refused_on_the_float_datapath(text, kind, values):
    # isa.toml: they exist to reproduce onnxruntime's integer kernels; neither interpreter
    # gives them a float meaning (so the float datapath compiles none of them)
    for runner in (ref.run_program, core.run_program):
        with pytest.raises(ValueError, match="integer datapath only"):
            runner(assemble(text), _desc(kind, **values), np.zeros((1, 6), np.int64),
                   np.ones(300, np.float32), np.zeros(1, np.float32), np.zeros(4, np.float32),
                   np.zeros(1, np.float32), random_timing(np.random.default_rng(0)), 1, 1, 1,
                   True, True)  # fmt: skip
