"""`ndpsim sweep`, `ndpsim plot` and `ndpsim profile --plot`: outputs, files, and one-line
errors with exit code 2. The sweep and its dry run go through a real subprocess; the rest
call the CLI's entry point in this process (same code path, no interpreter start-up)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.test_sweep_run import _compiled_core  # noqa: F401  (the numba core, compiled once)

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "models" / "kws_dscnn.onnx"


def ndpsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ndpsim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`ndpsim ARGS` through the console entry point, in this process."""
    from ndpsim.cli import main

    monkeypatch.setattr(sys, "argv", ["ndpsim", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": [str(KWS), str(ROOT / "models" / "ad_fc_autoencoder.onnx")],
                "per_layer": True,
                "parameters": {"macro_cols": [16, 32, 64], "clock_mhz": [50, 100]},
                "constraints": ["macro_cols * clock_mhz <= 3200"],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def results(spec, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "r"
    p = ndpsim("sweep", str(spec), "-o", str(out), "--jobs", "1")
    assert p.returncode == 0, p.stderr
    assert "10 points" in p.stdout and "0 failed" in p.stdout
    return out


def test_dry_run_counts_points_after_constraints_and_runs_nothing(spec, tmp_path):
    p = ndpsim("sweep", str(spec), "--dry-run", "-o", str(tmp_path / "none"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("10 points = 2 models x 5 configurations")
    assert "1 excluded by constraints" in p.stdout and "10 to run" in p.stdout
    assert not (tmp_path / "none").exists()


def test_a_rerun_skips_everything_and_dry_run_sees_it(spec, results, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "sweep", str(spec), "-o", str(results), "--quiet")
    assert code == 0, err
    assert "0 points" in out and "10 skipped" in out
    assert err == ""  # --quiet: no plan summary, no progress
    code, out, err = cli(monkeypatch, capsys, "sweep", str(spec), "--dry-run", "-o", str(results))
    assert "10 already in" in out and "0 to run" in out


def test_plot_writes_a_png_with_the_pareto_front(results, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "pareto.png"
    args = ["--x", "energy_uj", "--y", "latency_us", "--color", "parallelism_factor"]
    code, out, err = cli(
        monkeypatch, capsys, "plot", str(results), *args, "--pareto", "-o", str(png)
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Pareto front sizes" in out and "kws_dscnn" in out


def test_profile_plot_writes_a_layer_chart(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "layers.png"
    code, out, err = cli(monkeypatch, capsys, "profile", str(KWS), "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG" and "conv_0" in out


def test_plot_without_matplotlib_is_a_one_line_error(results, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    code, _, err = cli(monkeypatch, capsys, "plot", str(results), "-o", str(tmp_path / "x.png"))
    assert (
        code == 2 and err.strip() == "error: plotting needs matplotlib: pip install 'ndpsim[plot]'"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sweep", "missing.yaml"], "sweep spec not found"),
        (["sweep", "{spec}", "--jobs", "2", "--dask-local", "2"], "not several"),
        (["sweep", "{spec}", "--jobs", "0"], "--jobs must be >= 1"),
        (["sweep", str(ROOT / "README.md")], "use a .yaml, .toml or .json"),
        (["plot", "{results}", "--x", "nope"], "no column 'nope'"),
        (["plot", "{results}", "--model", "nope"], "no model 'nope'"),
        (["plot", "missing-dir"], "results not found"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args, needle, spec, results, tmp_path, monkeypatch, capsys
):
    args = [a.format(spec=spec, results=results) for a in args]
    if args[0] == "plot":
        args += ["-o", str(tmp_path / "x.png")]
    code, _, err = cli(monkeypatch, capsys, *args)
    assert code == 2, (code, err)
    assert "Traceback" not in err and needle in err
    assert len(err.strip().splitlines()) == 1


def test_a_spec_error_names_the_field(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"models": [str(KWS)], "parameters": {"macro_col": [8]}}))
    code, _, err = cli(monkeypatch, capsys, "sweep", str(bad), "--dry-run")
    assert code == 2 and "did you mean 'macro_cols'" in err
    bad.write_text(yaml.safe_dump({"models": [str(KWS)], "constraints": ["__import__('os')"]}))
    code, _, err = cli(monkeypatch, capsys, "sweep", str(bad), "--dry-run")
    assert code == 2 and "constraint" in err and "not allowed" in err


def test_a_missing_optional_dependency_names_its_extra(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    args = ["sweep", str(spec), "--dask-local", "2", "-o", str(tmp_path / "r")]
    code, _, err = cli(monkeypatch, capsys, *args)
    assert code == 2
    assert err.strip() == "error: this needs distributed: pip install 'ndpsim[sweep]'"
    assert not (tmp_path / "r").exists()  # refused before any work


def test_ctrl_c_keeps_finished_points_exits_130_and_the_same_command_resumes(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "models": [str(KWS)],
                "parameters": {"macro_cols": [8, 16, 32, 64], "clock_mhz": list(range(10, 110))},
            }
        )
    )
    out = tmp_path / "r"
    args = ["ndpsim", "sweep", str(spec), "-o", str(out), "--jobs", "2"]
    code = (  # the CLI's entry point, with small batches so files appear early
        "import sys; from ndpsim.sweep import store; store.BATCH_POINTS = 20; "
        f"sys.argv = {args!r}; from ndpsim.cli import main; main()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("points/*/part-*.parquet")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted: finished points are stored" in err and "Traceback" not in err
    stored = pq.read_table(out / "points", partitioning="hive").num_rows
    assert 0 < stored < 400
    p = ndpsim("sweep", str(spec), "-o", str(out), "-q", "--jobs", "1")
    assert p.returncode == 0 and f"{400 - stored} points" in p.stdout
    keys = pq.read_table(out / "points", columns=["config_id"]).column(0).to_pylist()
    assert len(keys) == len(set(keys)) == 400


def test_the_small_example_runs_every_model_including_the_recurrent_ones(tmp_path):
    out = tmp_path / "small"
    p = ndpsim("sweep", str(ROOT / "examples" / "sweep_small.yaml"), "-o", str(out), "-q")
    assert p.returncode == 0, p.stderr
    assert "72 points" in p.stdout and "0 failed" in p.stdout
    rows = pq.read_table(out / "points", partitioning="hive").to_pylist()
    gru = [r for r in rows if r["model"] == "kws_gru"]
    assert len(gru) == 12 and all(r["status"] == "ok" for r in gru)
    assert gru[0]["model_inputs"] == '{"input_shapes":{"input":[1,49,10]},"input_values":{}}'
    assert pq.read_table(out / "layers").num_rows == sum(r["layers"] for r in rows)


def _spec(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"models": [str(KWS)], **fields}))
    return path


def test_a_sweep_whose_points_all_failed_exits_1_and_so_does_its_resume(tmp_path):
    # a conv model on hardware without conv support: every point fails
    spec = _spec(tmp_path, parameters={"supports_conv": [False], "macro_cols": [16, 32]})
    out = tmp_path / "r"
    for _ in range(2):  # the run, then a resume that finds only failed points
        p = ndpsim("sweep", str(spec), "-o", str(out), "--jobs", "1")
        assert p.returncode == 1, p.stderr
        assert "error: every point of kws_dscnn failed" in p.stderr
    dry = ndpsim("sweep", str(spec), "-o", str(out), "--dry-run")
    assert (
        "2 already in" in dry.stdout and "(2 failed; --retry-failed runs them again)" in dry.stdout
    )
    spec = _spec(tmp_path, parameters={"supports_conv": [True, False]})  # half fail: data
    p = ndpsim("sweep", str(spec), "-o", str(tmp_path / "half"), "--jobs", "1")
    assert p.returncode == 0 and "1 failed" in p.stdout and "first failure" in p.stderr


def test_changing_per_layer_on_a_results_directory_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    spec = _spec(tmp_path, parameters={"macro_cols": [16]})
    assert ndpsim("sweep", str(spec), "-o", str(out), "--jobs", "1").returncode == 0
    spec = _spec(tmp_path, parameters={"macro_cols": [16]}, per_layer=True)
    for extra in ([], ["--dry-run"]):
        code, _, err = cli(monkeypatch, capsys, "sweep", str(spec), "-o", str(out), *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "written with per_layer: false, this run asks for true" in err


def test_the_first_results_are_stored_within_seconds(tmp_path):
    """Full-mode points take tens of ms: a batch of 1,000 would wait the 10 s limit; the
    first batch goes out a second after its first row instead."""
    grid = {"macro_cols": [16, 32, 64, 128], "clock_mhz": list(range(10, 60))}
    spec = _spec(tmp_path, mode="full", parameters=grid)
    out = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ndpsim", "sweep", str(spec), "-o", str(out), "--jobs", "2"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stderr.readline().startswith("200 points")
        assert proc.stderr.readline().startswith("running 200 points")
        started = time.monotonic()  # planned; the pool starting
        while not list(out.glob("points/*/part-*.parquet")):
            assert proc.poll() is None
            time.sleep(0.02)
        first_s = time.monotonic() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    assert first_s < 10.0, f"the first batch took {first_s:.1f} s"  # was >= 10 s + start-up
    print(f"first batch stored {first_s:.1f} s after the run started (pool start-up included)")


def test_a_spec_fixes_inputs_to_values_and_they_join_the_key(tmp_path):
    from tests.test_control_flow import _model  # y = If(sr == 16000, Relu(x), Hardmax(x))

    model = tmp_path / "ctl.onnx"
    model.write_bytes(_model().SerializeToString())
    fixed = {"path": str(model), "input_shapes": {"x": [1, 4]}, "input_values": {"sr": [16000]}}
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"models": [fixed], "parameters": {"macro_cols": [16, 32]}}))
    out = tmp_path / "r"
    p = ndpsim("sweep", str(spec), "-o", str(out), "--jobs", "1")
    assert p.returncode == 0 and "2 points" in p.stdout and "0 failed" in p.stdout, p.stderr
    rows = pq.read_table(out / "points").to_pylist()
    assert {r["model_inputs"] for r in rows} == {
        '{"input_shapes":{"x":[1,4]},"input_values":{"sr":[16000.0]}}'
    }
    # sr = 8000 takes the other branch, an op ndpsim does not lower: refused before any work
    fixed["input_values"] = {"sr": [8000]}
    spec.write_text(yaml.safe_dump({"models": [fixed], "parameters": {"macro_cols": [16]}}))
    p = ndpsim("sweep", str(spec), "-o", str(tmp_path / "r8k"))
    assert p.returncode == 2 and "sweep model ctl.onnx" in p.stderr and "'Hardmax'" in p.stderr
    assert not (tmp_path / "r8k").exists()
