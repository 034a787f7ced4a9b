"""isa/README.md's walkthrough, run: a new vector instruction is three hand-edited files —
its ISA entry (isa/isa.toml), its semantics (sim/reference.py) and its kernel
(sim/kernels_vector.py) — plus `python -m ndpsim.isa_gen`. In a copy of the sources,
this adds ABS (y = |x|, requantized) with exactly those edits, regenerates, and checks that
the ISA drift tests pass there, that ABS is timed and counted as its toml entry says in
both interpreters, and that the numba core computes what the reference does, bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys

from source_copy import ROOT, append, changed, copy_sources, insert

from ndpsim.isa import Opcode
from ndpsim.isa_gen import CONSTANTS_PATH, KERNEL_MODULES

# the next free opcode (engineers append theirs at the end of the list)
ISA_ENTRY = """
[[opcodes]]
name = "ABS"
code = %d
unit = "VECTOR"
timing = "VECTOR"
writes_arena = true
writes_accumulator = false
counters = ["VECTOR_ELEMENT_OPS", "SRAM_READ_BYTES", "SRAM_WRITE_BYTES",
            "VECTOR_BUSY_CYCLES", "VECTOR_COMPUTE_CYCLES"]
semantics = "y = sat(rne(abs(f32(x - zx) * sx) * ry) + zy), elements a1..a1+a2 (func descriptor)"
"""

REFERENCE = """def _abs(ins, d, m: Machine):
    e0, n = int(ins["a1"]), int(ins["a2"])
    g = {k: int(d[v]) for k, v in FN.items()}
    sx, ry = m.fparams[g["sx"]], m.fparams[g["ry"]]
    for e in range(e0, e0 + n):
        f = abs(_F32(m.mem[g["x_base"] + e] - g["zx"]) * sx) * ry
        _store(m.mem, g["y_base"] + e, f, g["zy"], g["qmin"], g["qmax"], m.float_mode)


"""

KERNEL = '''

@njit(cache=True)
def run_abs(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The ABSs among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_ABS:
            d = desc[ins["desc"]]
            sx, ry = fparams[d[FUNC_SX]], fparams[d[FUNC_RY]]
            for e in range(ins["a1"], ins["a1"] + ins["a2"]):
                f = abs(np.float32(mem[d[FUNC_X_BASE] + e] - d[FUNC_ZX]) * sx) * ry
                _store(mem, d[FUNC_Y_BASE] + e, f, d[FUNC_ZY], d[FUNC_QMIN], d[FUNC_QMAX],
                       float_mode)
'''

# ABS between other vector ops, on both datapaths, against the reference
CHECK = '''
import numpy as np
import ndpsim
from ndpsim.isa import DESC_FIELDS, DESC_WIDTH, Counter, Opcode, assemble
from ndpsim.sim import core, reference
from ndpsim.sim.schedule import Timing

assert ndpsim.__file__.startswith(%(copy)r), ndpsim.__file__
rng = np.random.default_rng(0)
timing = Timing(1, 64, 4, 16, 2, 4, 8.0, 2.0, 50, 1)
instrs = assemble("""
    ABS desc=0 a1=0 a2=40 work=40 bytes_in=40 bytes_out=40
    COPY desc=1 a1=0 a2=40 work=40 bytes_in=40 bytes_out=40
    ABS desc=2 a1=0 a2=40 work=40 bytes_in=40 bytes_out=40
""")
desc = np.zeros((3, DESC_WIDTH), np.int64)
fn, cp = DESC_FIELDS["func"], DESC_FIELDS["copy"]
for row, (x, y) in ((0, (0, 40)), (2, (80, 120))):
    for k, v in dict(x_base=x, y_base=y, zx=3, zy=-2, qmin=-128, qmax=127, sx=0, ry=1).items():
        desc[row, fn[k]] = v
for k, v in dict(x_base=40, y_base=80, d0=1, d1=1, d2=1, d3=40, x_s3=1, y_s3=1, qmin=-128,
                 qmax=127, r=2).items():
    desc[1, cp[k]] = v
fparams = np.array([0.7, 1.3, 0.5], np.float32)
for float_mode, dtype in ((True, np.float32), (False, np.int32)):
    mem = (rng.standard_normal(160) * 60).astype(dtype)
    if not float_mode:
        mem = np.clip(mem, -128, 127).astype(dtype)
    outs = []
    for runner in (reference.run_program, core.run_program):
        m = mem.copy()
        res = runner(instrs, desc, np.zeros((1, 6), np.int64), fparams, np.zeros(1, dtype), m,
                     np.zeros(1, np.float32 if float_mode else np.int64), timing, 1, 1, 1, True,
                     float_mode)
        outs.append((m, *res))
    (m_ref, *r_ref), (m_core, *r_core) = outs
    assert m_ref.tobytes() == m_core.tobytes(), float_mode
    assert all(a.tobytes() == b.tobytes() for a, b in zip(r_ref, r_core)), float_mode
    assert not np.array_equal(m_ref[120:160], mem[120:160])  # the second ABS wrote its output
    assert (m_ref[120:160] >= -2).all()  # |x| >= 0, plus the output zero point
print("ABS: reference == core on both datapaths")
'''


def test_a_new_vector_instruction_is_three_hand_edited_files(tmp_path):
    copy = tmp_path / "repo"
    copy_sources(copy)
    # the three hand edits of isa/README.md's walkthrough
    append(copy / "isa" / "isa.toml", ISA_ENTRY % (1 + max(int(op) for op in Opcode)))
    reference = copy / "ndpsim" / "sim" / "reference.py"
    insert(reference, "# The semantics of every opcode with arithmetic", REFERENCE)
    insert(reference, "SEMANTICS = {\n", "    Opcode.ABS: _abs,\n", after=True)
    append(copy / "ndpsim" / "sim" / "kernels_vector.py", KERNEL)
    edited = changed(ROOT, copy)
    assert edited == ["isa/isa.toml", "ndpsim/sim/kernels_vector.py", "ndpsim/sim/reference.py"]
    env = {**os.environ, "PYTHONPATH": str(copy)}

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              cwd=copy, env=env, timeout=600)  # fmt: skip

    stale = python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_isa.py")
    assert stale.returncode != 0, "the drift tests must fail before regenerating"
    wrote = python("-m", "ndpsim.isa_gen")
    assert wrote.returncode == 0, wrote.stderr
    generated = set(changed(ROOT, copy)) - set(edited)
    assert generated == {"docs/isa.md", CONSTANTS_PATH, *KERNEL_MODULES} - set(edited)
    drift = python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_isa.py")
    assert drift.returncode == 0, drift.stdout[-3000:]
    # the per-opcode tests (counters bumped, in both interpreters) now include ABS
    abs_tests = python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_isa.py",
                       "-k", "ABS")  # fmt: skip
    assert abs_tests.returncode == 0 and "4 passed" in abs_tests.stdout, abs_tests.stdout[-2000:]
    check = python("-c", CHECK % {"copy": str(copy)})
    assert check.returncode == 0, check.stderr[-3000:]
    assert "reference == core" in check.stdout
