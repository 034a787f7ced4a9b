"""End-to-end CLI runs in a subprocess: exit codes, one-line errors, JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "models" / "kws_dscnn.onnx"
IC = ROOT / "models" / "ic_resnet8.onnx"  # its largest MVM runs are split over threads


def ndpsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ndpsim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_simulate_writes_a_versioned_json_report(tmp_path):
    out = tmp_path / "r.json"
    p = ndpsim("simulate", str(KWS), "--preset", "ndp120", "--json", str(out))
    assert p.returncode == 0, p.stderr
    assert "latency" in p.stdout and "energy" in p.stdout
    report = json.loads(out.read_text())
    assert report["schema_version"] == 6 and report["macs"] == 2_656_768
    assert report["agreement"] and report["agreement"][0]["sqnr_db"] > 20
    assert report["layers"][1]["kind"] == "mac"


def test_profile_prints_a_layer_table():
    p = ndpsim("profile", str(KWS), "--set", "macro_cols=32")
    assert p.returncode == 0, p.stderr
    assert "conv_0" in p.stdout and "bound" in p.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["simulate", "missing.onnx"], "not found"),
        (["simulate", str(KWS), "--set", "macro_cols=-1"], "macro_cols"),
        (["simulate", str(KWS), "--preset", "nope"], "unknown preset"),
        (["simulate", str(KWS), "--preset", "ndp101"], "fully-connected"),
        (["simulate", str(KWS), "--input-shape", "x=1xAx3"], "--input-shape"),
        (["simulate", str(ROOT / "README.md")], ""),
        (["simulate", str(KWS), "--threads", "0"], "--threads must be between 1 and"),
        (["profile", str(KWS), "--threads", "100000"], "--threads must be between 1 and"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, needle):
    p = ndpsim(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    assert needle in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_threads_do_not_change_the_report(tmp_path):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: --threads 2 is refused")
    reports = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}.json"
        p = ndpsim("simulate", str(IC), "--threads", threads, "--json", str(out))
        assert p.returncode == 0, p.stderr
        reports.append(json.loads(out.read_text()))
    assert reports[0]["agreement"] == reports[1]["agreement"]
    assert reports[0]["latency_cycles"] == reports[1]["latency_cycles"]


def test_usage_errors_exit_2():
    assert ndpsim("no-such-command").returncode == 2
    assert ndpsim("simulate").returncode == 2


def test_presets_and_isa_commands():
    p = ndpsim("presets")
    assert p.returncode == 0 and "ndp120" in p.stdout
    p = ndpsim("isa")
    assert p.returncode == 0 and "MVM" in p.stdout
