"""Start-up: the on-disk cache of lowered programs, lazy imports, the first-run notice.
(Times are measured by benchmarks/startup.py, never here.)"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ndpsim import program_cache
from ndpsim.program_cache import ProgramCache

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "models" / "kws_dscnn.onnx"


def run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)  # fmt: skip


# --- the cache itself ---------------------------------------------------------------------


def test_round_trip_and_a_missing_key(tmp_path):
    cache = ProgramCache(tmp_path)
    key = cache.key("model", ("hw",), 3)
    assert cache.get(key) is None
    cache.put(key, {"a": [1, 2]})
    assert cache.get(key) == {"a": [1, 2]}
    assert cache.key("model", ("hw",), 4) != key


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path):
    cache = ProgramCache(tmp_path)
    key = cache.key("m")
    cache.put(key, "value")
    (entry,) = tmp_path.glob("*.program")
    entry.write_bytes(entry.read_bytes()[:10])  # truncated
    assert cache.get(key) is None
    cache.put(key, "value")
    assert cache.get(key) == "value"
    entry.write_bytes(b"not a pickle at all")
    assert cache.get(key) is None


def test_no_entry_survives_a_change_of_the_code(tmp_path, monkeypatch):
    cache = ProgramCache(tmp_path)
    key = cache.key("m")
    cache.put(key, "value")
    monkeypatch.setattr(program_cache, "code_digest", lambda: "another version")
    assert cache.key("m") != key and cache.get(cache.key("m")) is None


def test_code_digest_covers_the_sources():
    digest = program_cache.code_digest()
    assert len(digest) == 64 and digest == program_cache.code_digest()


def test_the_cache_keeps_to_its_size_dropping_the_least_recently_used(tmp_path):
    cache = ProgramCache(tmp_path, max_bytes=3000)
    keys = [cache.key(i) for i in range(6)]
    for i, key in enumerate(keys):
        cache.put(key, bytes(1000))
        os.utime(tmp_path / f"{key}.program", (1000 + i, 1000 + i))
        if i == 3:
            cache.get(keys[0])  # used: now the most recent
    left = {p.stem for p in tmp_path.glob("*.program")}
    assert sum(p.stat().st_size for p in tmp_path.glob("*.program")) <= 3000
    assert keys[-1] in left and keys[1] not in left


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.delenv("NDPSIM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert program_cache.cache_dir() == tmp_path / "xdg" / "ndpsim" / "programs"
    monkeypatch.setenv("NDPSIM_CACHE_DIR", str(tmp_path / "mine"))
    assert program_cache.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("NDPSIM_CACHE", "0")
    assert ProgramCache.default() is None


def test_an_unwritable_cache_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = ProgramCache(blocker / "sub")  # cannot be created under a file
    cache.put(cache.key("m"), "value")
    assert cache.get(cache.key("m")) is None


def _writer(directory: str, rounds: int) -> None:
    cache = ProgramCache(Path(directory))
    for i in range(rounds):
        cache.put(cache.key("shared"), list(range(20_000 + i % 2)))


def test_concurrent_writers_never_show_a_partial_entry(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), 40)) for _ in range(2)]
    for w in writers:
        w.start()
    cache, seen = ProgramCache(tmp_path), 0
    while any(w.is_alive() for w in writers):
        value = cache.get(cache.key("shared"))
        if value is not None:
            assert value[:3] == [0, 1, 2] and len(value) in (20_000, 20_001)
            seen += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert cache.get(cache.key("shared")) is not None
    assert not list(tmp_path.glob("*.tmp"))


# --- a repeat run ----------------------------------------------------------------------------


def test_a_repeat_run_imports_no_onnx(tmp_path):
    code = (
        f"import sys, ndpsim; r = ndpsim.simulate({str(KWS)!r}, timing_only=True); "
        "print(r.latency_cycles, 'onnx' in sys.modules)"
    )
    env = {"NDPSIM_CACHE_DIR": str(tmp_path)}
    first, again = run(code, env), run(code, env)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    cycles, imported = first.stdout.split()
    assert imported == "True" and again.stdout.split() == [cycles, "False"]
    off = run(code, {**env, "NDPSIM_CACHE": "0"})
    assert off.stdout.split() == [cycles, "True"]


def test_an_assumed_batch_dim_is_said_on_every_run(tmp_path):
    import onnx

    model = onnx.load(KWS)
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    path = tmp_path / "kws_batch.onnx"
    onnx.save(model, path)
    cmd = [sys.executable, "-m", "ndpsim", "simulate", str(path), "--timing-only"]
    env = {**os.environ, "NDPSIM_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]  # fmt: skip
    for p in runs:
        assert p.returncode == 0, p.stderr
        notes = [ln for ln in p.stderr.splitlines() if ln.startswith("note:")]
        assert notes == [
            "note: input 'input': its batch dim 'batch' is symbolic; simulating one sample "
            "(--input-shape input=1x1x49x10 sets it)"
        ]
    assert runs[0].stdout == runs[1].stdout and "latency" in runs[0].stdout


# --- imports and the notice ------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["presets"], ["isa"]])
def test_light_commands_load_no_simulator(argv):
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print(sorted(m for m in ('onnx', 'numba', 'ndpsim.api', "
        "'ndpsim.session') if m in sys.modules), file=sys.stderr))\n"
        f"sys.argv = ['ndpsim', *{argv!r}]\n"
        "from ndpsim.cli import main\nmain()\n"
    )
    p = run(code)
    assert p.returncode == 0 and p.stderr.strip().splitlines()[-1] == "[]", p.stderr


def test_the_first_run_says_it_compiles_and_later_runs_do_not(tmp_path):
    cmd = [sys.executable, "-m", "ndpsim", "simulate", str(KWS), "--timing-only"]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NDPSIM_CACHE_DIR": str(tmp_path / "programs")}  # fmt: skip
    first, again = (subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
                    for _ in range(2))  # fmt: skip
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    (line,) = first.stderr.splitlines()
    assert line.startswith("ndpsim: compiling simulator kernels (first run only")
    assert " schedule " in line and line.endswith(" s")
    assert again.stderr == "" and again.stdout == first.stdout


@pytest.mark.slow
def test_the_helper_compiles_the_kernels_a_real_integer_run_loads(tmp_path):
    # precompile.py's helper compiles on dummy arrays: they must have a real run's types, or
    # the binding and the integer run would compile again (numba keys its cache on types)
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NDPSIM_CACHE": "0"}
    ops = run(
        "from ndpsim.session import Session\nfrom ndpsim.config import load_preset\n"
        f"p = Session({str(KWS)!r}).program(load_preset('ndp120'))\n"
        "print(' '.join(str(int(o)) for o in sorted(set(p.instrs['op']))))",
        env,
    )
    assert ops.returncode == 0, ops.stderr
    helper = subprocess.run([sys.executable, "-m", "ndpsim.sim.precompile", "0",
                             *ops.stdout.split()], cwd=ROOT, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert helper.returncode == 0, helper.stderr
    real = run(
        "from ndpsim.session import Session\nfrom ndpsim.config import load_preset\n"
        "from ndpsim.options import SimOptions\nfrom ndpsim.sim import core\n"
        f"Session({str(KWS)!r}).simulate(load_preset('ndp120'), "
        "SimOptions(compare_reference=False))\n"
        "from ndpsim.quant import bind\n"
        "print('quantizer', len(bind._quantize_rows.stats.cache_hits), "
        "len(bind._quantize_rows.stats.cache_misses))\n"
        "for op, entry in core.ENTRIES.items():\n"
        "    for sig in entry.stats.cache_misses: print('miss', op.name, sig)\n"
        "    for sig in entry.stats.cache_hits: print('hit', op.name, sig)\n",
        env,
    )
    assert real.returncode == 0, real.stderr
    lines = real.stdout.splitlines()
    assert lines.pop(0) == "quantizer 1 0"  # quant/bind.py's weight quantizer, compiled too
    arena = "Array(int32, 1, 'C'"  # the integer datapath's arena and weights
    int_lines = [ln for ln in lines if arena in ln]
    assert len(int_lines) == 4 and all(ln.startswith("hit ") for ln in int_lines), real.stdout
    float_lines = [ln for ln in lines if arena not in ln]
    assert len(float_lines) == 4 and all(ln.startswith("miss ") for ln in float_lines)


def test_every_missing_input_shape_in_one_line_with_the_command_to_paste(tmp_path):
    import shlex

    import onnx
    from onnx import TensorProto, helper

    dims = ["N", 4, "T"]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"])], "two_inputs",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("x", "y")],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, dims)],
    )  # fmt: skip
    path = tmp_path / "two_inputs.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    cmd = [sys.executable, "-m", "ndpsim", "simulate", str(path), "--timing-only"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 2 and len(first.stderr.strip().splitlines()) == 1, first.stderr
    assert "2 inputs have symbolic or unknown dims: 'x' (shape [N, 4, T]), 'y'" in first.stderr
    pasted = first.stderr.strip().rsplit("; run: ", 1)[1]
    assert pasted.endswith("--timing-only --input-shape x=1x4x1 --input-shape y=1x4x1")
    again = subprocess.run([sys.executable, "-m", *shlex.split(pasted)], capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0 and "latency" in again.stdout, again.stderr
