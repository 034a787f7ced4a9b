"""Dask failures are the engine's, never a point's: a scheduler killed mid-sweep stops it
with one line (exit 1), no point is stored as failed, and a resume runs the rest; a task
whose workers keep dying stops the run; a cluster without workers says it is waiting.
Real scheduler and worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

pytest.importorskip("distributed")
from tests.test_sweep_run import _compiled_core  # noqa: F401  (the numba core, compiled once)

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sweep_10k.yaml"
TOTAL = 10_800


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args: str, log: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(exe), *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _scheduler(port: int, tmp: Path) -> subprocess.Popen:
    proc = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                 log=tmp / f"scheduler-{port}.log")  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the scheduler did not start")


def _workers(port: int, tmp: Path, n: int = 2) -> subprocess.Popen:
    return _dask("worker", f"tcp://127.0.0.1:{port}", "--nworkers", str(n), "--nthreads", "1",
                 "--no-dashboard", log=tmp / f"workers-{port}.log")  # fmt: skip


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _rows(out: Path) -> list[dict]:
    columns = ["config_id", "model_sha256", "status"]
    return pq.read_table(out / "points", columns=columns).to_pylist()


def _ndpsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndpsim", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)  # fmt: skip


def test_losing_the_scheduler_stops_the_sweep_stores_no_failure_and_a_resume_completes(tmp_path):
    port = _free_port()
    scheduler = _scheduler(port, tmp_path)
    workers = _workers(port, tmp_path)
    out = tmp_path / "r"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "ndpsim", "sweep", str(SPEC), "-o", str(out),
         "--scheduler", f"tcp://127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob("points/*/part-*.parquet")):
            assert time.monotonic() < deadline and sweep.poll() is None, sweep.communicate()
            time.sleep(0.05)
        os.killpg(scheduler.pid, signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = sweep.communicate(timeout=120)
        stop_s = time.monotonic() - killed
    finally:
        _stop(scheduler, workers)
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: lost the connection to Dask scheduler tcp://127.0.0.1:")
    assert "the same command resumes" in last
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert not [line for line in stderr.splitlines() if "distributed." in line]  # no Dask logs
    rows = _rows(out)
    assert 0 < len(rows) < TOTAL
    assert {r["status"] for r in rows} == {"ok"}  # nothing stored as a failure
    dry = _ndpsim("sweep", str(SPEC), "-o", str(out), "--dry-run")
    assert f"{len(rows)} already in {out}; {TOTAL - len(rows)} to run" in dry.stdout
    resume = _ndpsim("sweep", str(SPEC), "-o", str(out), "-q", "--jobs", "2")
    assert resume.returncode == 0, resume.stderr
    assert f"{TOTAL - len(rows)} points" in resume.stdout and "0 failed" in resume.stdout
    keys = [(r["model_sha256"], r["config_id"]) for r in _rows(out)]
    assert len(keys) == len(set(keys)) == TOTAL
    print(f"the sweep stopped {stop_s:.1f} s after the scheduler was killed")


def _kills_its_worker_on_3(x: int) -> int:
    if x == 3:
        os._exit(1)
    return x


def test_a_task_whose_workers_keep_dying_stops_the_run_with_no_point_reported():
    import dask

    from ndpsim.sweep import run_points
    from ndpsim.sweep.dask_engine import DaskEngine
    from ndpsim.sweep.engine import InfrastructureError

    seen = []
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with pytest.raises(InfrastructureError, match="workers died too often"):
            for point, value, error in run_points(
                _kills_its_worker_on_3, range(8), DaskEngine(local_workers=2), chunk_size=1
            ):
                seen.append((point, value, error))  # fmt: skip
    assert all(error is None and value == point for point, value, error in seen)
    assert 3 not in [p for p, _, _ in seen]


def test_no_workers_is_said_and_the_sweep_runs_when_one_joins(tmp_path):
    port = _free_port()
    scheduler = _scheduler(port, tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"models": [str(ROOT / "models" / "kws_dscnn.onnx")],
                                    "parameters": {"macro_cols": [16, 32, 64]}}))  # fmt: skip
    sweep = subprocess.Popen(
        [sys.executable, "-m", "ndpsim", "sweep", str(spec), "-o", str(tmp_path / "r"),
         "--scheduler", f"tcp://127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    workers = None
    try:
        lines = []
        while not any("waiting for a worker" in line for line in lines):
            line = sweep.stderr.readline()
            assert line, f"no waiting line: {lines}"
            lines.append(line)
        workers = _workers(port, tmp_path, 1)
        stdout, stderr = sweep.communicate(timeout=180)
    finally:
        _stop(scheduler, *([workers] if workers else []))
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, stderr
    assert "3 points" in stdout and "0 failed" in stdout
    assert not [line for line in lines + stderr.splitlines() if "distributed." in line]
