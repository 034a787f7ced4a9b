"""docs/architecture.md's recipe, run: a new unary function op is one registry entry plus its
test. In a copy of the sources this adds Softplus (which ndpsim does not otherwise support)
as one TABLE entry in ndpsim/lower/registry.py and its case in tests/test_ops_funcs.py, and
checks that those are the only files edited, that the copy's tests of Softplus pass there
(float datapath within 1e-4 of onnxruntime, int8 PTQ by SQNR, its work counted, its table
within its interpolation bound) and that the op-coverage check of tests/test_ops.py holds."""

from __future__ import annotations

import os
import subprocess
import sys

from source_copy import ROOT, changed, copy_sources, insert

from ndpsim.lower.registry import SUPPORTED_OPS

# softplus(x) = log(1 + e^x): below -20 it is under 2.1e-9 (slope 0), above 20 it is x within
# 2.1e-9 (slope 1); h = 40/2048, f'' <= 1/4: interpolation error <= 1.2e-5
ENTRY = '    "Softplus": _table(lambda x: np.logaddexp(0.0, x), -20.0, 20.0, 2049, (0.0, 1.0)),\n'
CASE = '    "Softplus": _unary("Softplus"),\n'
INPUTS = '    "Softplus": (_normal(10.0), _normal(2.0)),\n'


def test_a_new_unary_function_is_one_registry_entry_and_its_test(tmp_path):
    assert "Softplus" not in SUPPORTED_OPS  # else this proves nothing
    copy = tmp_path / "repo"
    copy_sources(copy, ("ndpsim", "isa", "tests"))
    insert(copy / "ndpsim" / "lower" / "registry.py",
           '    "Tanh": _table(np.tanh, -8.0, 8.0, 2049),\n', ENTRY, after=True)
    tests = copy / "tests" / "test_ops_funcs.py"
    insert(tests, '    "Neg": _unary("Neg"),\n', CASE, after=True)
    insert(tests, '    "Neg": (_normal(10.0), _normal(1.0)),\n', INPUTS, after=True)
    assert changed(ROOT, copy) == ["ndpsim/lower/registry.py", "tests/test_ops_funcs.py"]
    env = {**os.environ, "PYTHONPATH": str(copy)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "Softplus",
         "tests/test_ops_funcs.py"],
        capture_output=True, text=True, cwd=copy, env=env, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    # float datapath, integer datapath, work counted, the table's bound
    assert "4 passed" in run.stdout, run.stdout[-2000:]
    cover = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_ops.py::test_cases_cover_exactly_the_supported_ops"],
        capture_output=True, text=True, cwd=copy, env=env, timeout=900,
    )  # fmt: skip
    assert cover.returncode == 0 and "1 passed" in cover.stdout, cover.stdout[-2000:]
