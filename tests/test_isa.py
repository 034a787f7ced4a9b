"""Drift tests: isa/isa.toml is the one definition of the ISA; everything derived from it
(enums, the instruction dtype, docs/isa.md, digest stamps, the counters each opcode bumps
in both interpreters) must agree with it. Also the assembler / disassembler round trip."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from random_programs import random_program

from ndpsim import isa, isa_gen
from ndpsim.isa import (
    INSTR_DTYPE,
    Act,
    Counter,
    EltwiseKind,
    Opcode,
    PoolKind,
    Unit,
    assemble,
    disassemble,
    empty_program,
)
from ndpsim.isa_gen import render_markdown
from ndpsim.sim import constants, core
from ndpsim.sim import reference as ref

ROOT = Path(__file__).resolve().parents[1]
TOML_BYTES = (ROOT / "isa" / "isa.toml").read_bytes()
TOML = tomllib.loads(TOML_BYTES.decode())
TIMING = core.Timing(1, 64, 4, 16, 2, 4, 8.0, 2.0, 50, 1)


def _members(enum) -> list[tuple[str, int]]:
    return [(m.name, int(m)) for m in enum]


def test_packaged_toml_is_isa_toml():
    # The package reads ndpsim/_data/isa.toml; it must be a byte copy of the source of truth.
    assert (ROOT / "ndpsim" / "_data" / "isa.toml").read_bytes() == TOML_BYTES
    assert isa.ISA_DIGEST == hashlib.sha256(TOML_BYTES).hexdigest()[:16]


def test_enums_match_toml():
    assert _members(Unit) == [(u["name"], i) for i, u in enumerate(TOML["units"])]
    assert _members(Counter) == [(c["name"], i) for i, c in enumerate(TOML["counters"])]
    assert _members(Opcode) == [(o["name"], o["code"]) for o in TOML["opcodes"]]
    assert _members(Act) == [(n, i) for i, n in enumerate(TOML["enums"]["act"])]
    assert _members(EltwiseKind) == [(n, i) for i, n in enumerate(TOML["enums"]["eltwise_kind"])]
    assert _members(PoolKind) == [(n, i) for i, n in enumerate(TOML["enums"]["pool_kind"])]


def test_toml_is_self_consistent():
    codes = [o["code"] for o in TOML["opcodes"]]
    assert len(set(codes)) == len(codes)
    counters = {c["name"] for c in TOML["counters"]}
    units = {u["name"] for u in TOML["units"]}
    classes = {t["name"] for t in TOML["timing_classes"]}
    for o in TOML["opcodes"]:
        assert o["unit"] in units, o["name"]
        assert o["timing"] in classes, o["name"]
        assert isinstance(o["writes_arena"], bool) and isinstance(o["writes_accumulator"], bool)
        assert set(o["counters"]) <= counters, o["name"]
        assert len(set(o["counters"])) == len(o["counters"]), o["name"]


def test_instruction_dtype_matches_toml():
    assert INSTR_DTYPE.names == tuple(f["name"] for f in TOML["fields"])
    for f in TOML["fields"]:
        assert INSTR_DTYPE[f["name"]] == np.dtype(f["type"]), f["name"]
    # Packed records: the layout the docs state (no padding between fields).
    assert INSTR_DTYPE.itemsize == sum(np.dtype(f["type"]).itemsize for f in TOML["fields"])


def test_opcode_tables_match_toml():
    for o in TOML["opcodes"]:
        op = Opcode[o["name"]]
        assert isa.OPCODE_UNIT[op] == Unit[o["unit"]]
        assert [c.name for c in isa.OPCODE_COUNTERS[op]] == o["counters"]
    assert set(isa.OPCODE_UNIT) == set(Opcode)


def test_descriptor_columns_match_toml():
    assert isa.DESC_FIELDS == {
        k: {n: i for i, n in enumerate(v)} for k, v in TOML["descriptors"].items()
    }
    assert isa.DESC_WIDTH == max(len(v) for v in TOML["descriptors"].values())


def test_core_compiled_constants_match_toml():
    # The numba kernels compile these in as plain ints; they must be the toml's.
    names = [c["name"] for c in TOML["counters"]]
    assert [getattr(constants, f"C_{n}") for n in names] == list(range(len(names)))
    assert constants.N_COUNTERS == len(TOML["counters"])
    classes = [t["name"] for t in TOML["timing_classes"]]
    for o in TOML["opcodes"]:
        assert getattr(constants, f"OP_{o['name']}") == o["code"]
        assert constants.OP_TIMING[o["code"]] == classes.index(o["timing"])
    for kind, fields in TOML["descriptors"].items():
        for i, f in enumerate(fields):
            assert getattr(constants, f"{kind.upper()}_{f.upper()}") == i


def test_constants_module_is_generated():
    path = ROOT / isa_gen.CONSTANTS_PATH
    assert path.read_text() == isa_gen.render_constants(), (
        "stale: run `python -m ndpsim.isa_gen`"
    )


def test_docs_isa_md_is_generated():
    doc = ROOT / "docs" / "isa.md"
    assert doc.exists(), "docs/isa.md missing: run `python -m ndpsim.isa_gen`"
    assert doc.read_text() == render_markdown(), "stale: run `python -m ndpsim.isa_gen`"


@pytest.mark.parametrize("path", isa_gen.KERNEL_MODULES)
def test_kernel_modules_carry_the_digest_of_everything_they_compile_in(path):
    # numba's cache of a kernel is keyed on its own file: the stamp must change with the ISA,
    # the constants and every other kernel module
    stamp = f'KERNELS_DIGEST = "{isa_gen.kernels_digest(ROOT)}"'
    assert stamp in (ROOT / path).read_text(), f"{path}: run `python -m ndpsim.isa_gen`"


def test_every_module_with_numba_kernels_is_stamped():
    jitted = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "ndpsim" / "sim").glob("*.py")
        if "@njit" in p.read_text()
    }
    assert jitted == set(isa_gen.KERNEL_MODULES)


def test_the_digest_changes_with_any_kernel_module(tmp_path):
    copy = tmp_path / "repo"
    for path in (*isa_gen.KERNEL_MODULES, isa_gen.CONSTANTS_PATH):
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_text((ROOT / path).read_text())
    before = isa_gen.kernels_digest(copy)
    helper = copy / "ndpsim/sim/kernels_common.py"
    helper.write_text(helper.read_text() + "\n")
    assert isa_gen.kernels_digest(copy) != before


def test_every_opcode_with_arithmetic_has_a_kernel_and_semantics():
    # isa.toml's writes_arena / writes_accumulator decide which opcodes execute; the core's
    # dispatch table (kernels_<unit>.run_<opcode>) and the reference's must cover exactly them
    executes = {Opcode[o["name"]] for o in TOML["opcodes"]
                if o["writes_arena"] or o["writes_accumulator"]}  # fmt: skip
    assert isa.EXECUTES == executes
    assert set(core.ENTRIES) == executes
    for op, entry in core.ENTRIES.items():
        unit = TOML["opcodes"][[o["name"] for o in TOML["opcodes"]].index(op.name)]["unit"]
        assert entry.py_func.__module__ == f"ndpsim.sim.kernels_{unit.lower()}"
        assert entry.py_func.__name__ == f"run_{op.name.lower()}"
    assert set(ref.SEMANTICS) == executes


def test_import_of_the_isa_loads_no_simulator():
    # `import ndpsim.isa` (and `ndpsim isa`) must not pay for the API, onnx or numba
    code = (
        "import sys, ndpsim.isa; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('onnx', 'numba', 'pydantic') or m in ('ndpsim.api', 'ndpsim.session')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- assembler ---------------------------------------------------------------------------


def _random_instrs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Records with every field anywhere in its type's range (opcodes valid)."""
    instrs = np.zeros(n, dtype=INSTR_DTYPE)
    for name in INSTR_DTYPE.names:
        info = np.iinfo(INSTR_DTYPE[name])
        values = rng.integers(info.min, info.max, n, dtype=np.int64, endpoint=True)
        # Defaults (0, -1) are what the disassembler leaves out: hit them often.
        values = np.where(
            rng.random(n) < 0.3, rng.choice([0, -1] if info.min < 0 else [0], n), values
        )
        instrs[name] = values
    instrs["op"] = rng.choice([int(o) for o in Opcode], n)
    return instrs


@pytest.mark.parametrize("seed", range(20))
def test_assemble_disassemble_round_trip(seed):
    rng = np.random.default_rng(seed)
    p = _random_instrs(rng, int(rng.integers(0, 40)))
    text = disassemble(p)
    again = assemble(text)
    assert again.dtype == INSTR_DTYPE
    assert again.tobytes() == p.tobytes()
    assert disassemble(again) == text


def test_round_trip_of_generated_programs():
    for seed in range(20):
        p = random_program(seed).instrs
        assert assemble(disassemble(p)).tobytes() == p.tobytes()


def test_assemble_defaults_comments_and_case():
    p = assemble("""
        # a comment line
        mvm a0=3 a2=10 rows=64   # trailing comment

        NOP signal=2 wait1=0
    """)
    expected = empty_program(2)
    expected[0]["op"], expected[0]["a0"], expected[0]["a2"], expected[0]["rows"] = 1, 3, 10, 64
    expected[1]["signal"], expected[1]["wait1"] = 2, 0
    assert p.tobytes() == expected.tobytes()
    assert disassemble(p) == "MVM a0=3 a2=10 rows=64\nNOP wait1=0 signal=2"
    assert (
        empty_program(3)[["wait0", "wait1", "wait2", "signal"]].tolist() == [(-1, -1, -1, -1)] * 3
    )


@pytest.mark.parametrize(
    "text",
    [
        "FROB a0=1",  # unknown opcode
        "MVM bogus=1",  # unknown field
        "MVM op=2",  # the opcode is not a field
        "MVM a0",  # no value
        "MVM a0=1\nLOAD a1=2",  # unknown opcode on line 2
    ],
)
def test_assemble_rejects_unknown_opcode_or_field(text):
    with pytest.raises(ValueError):
        assemble(text)


# --- counters each opcode bumps ----------------------------------------------------------


def _alone(op: Opcode, runner) -> np.ndarray:
    """Counters of `op` run alone, with every count-bearing field non-zero (timing only)."""
    ins = assemble(
        f"{op.name} a0=0 a1=0 a2=7 rows=3 cols=5 w_bits=4 a_bits=8 work=11 bytes_in=13 bytes_out=17"
    )
    counters, *_ = runner(
        ins,
        np.zeros((1, isa.DESC_WIDTH), np.int64),
        np.zeros((1, 6), np.int64),
        np.zeros(1, np.float32),
        np.zeros(1, np.int32),
        np.zeros(1, np.int32),
        np.zeros(1, np.int64),
        TIMING,
        1,
        1,
        1,
        False,
        False,
    )
    return counters[0]


def _declared(op: Opcode) -> set[str]:
    (o,) = [o for o in TOML["opcodes"] if o["name"] == op.name]
    return {*o["counters"], "INSTRUCTIONS"}


@pytest.mark.parametrize("runner", [core.run_program, ref.run_program], ids=["core", "reference"])
@pytest.mark.parametrize("op", list(Opcode), ids=lambda o: o.name)
def test_opcode_bumps_only_declared_counters(op, runner):
    counters = _alone(op, runner)
    bumped = {Counter(i).name for i in np.flatnonzero(counters)}
    assert bumped <= _declared(op), f"{op.name} bumps undeclared {bumped - _declared(op)}"
    assert counters[Counter.INSTRUCTIONS] == 1


@pytest.mark.parametrize("runner", [core.run_program, ref.run_program], ids=["core", "reference"])
@pytest.mark.parametrize("op", list(Opcode), ids=lambda o: o.name)
def test_opcode_bumps_every_declared_counter(op, runner):
    # With every field non-zero, a declared counter left at zero means it is never counted.
    bumped = {Counter(i).name for i in np.flatnonzero(_alone(op, runner))}
    assert bumped == _declared(op)
