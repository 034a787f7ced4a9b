"""A sweep killed from outside: SIGKILL leaves no process behind and closes its output;
SIGTERM and SIGHUP store what finished and exit like Ctrl-C (128 + the signal); a resume
then stores every point exactly once. Real `ndpsim sweep` processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.test_sweep_engine import seconds_until_dead
from tests.test_sweep_run import _compiled_core  # noqa: F401  (the numba core, compiled once)

psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sweep_10k.yaml"  # 10,800 points: still running when killed
TOTAL = 10_800


def _start(out: Path, *engine: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ndpsim", "sweep", str(SPEC), "-o", str(out), *engine],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
    )  # fmt: skip


def _running(proc: subprocess.Popen, out: Path, workers: int, timeout_s: float = 120):
    """Wait for the first stored batch and the worker processes; return all descendants."""
    main = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = main.children(recursive=True)
        if len(kids) >= workers and list(out.glob("points/*/part-*.parquet")):
            return kids
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.05)
    raise AssertionError("the sweep did not get going")


def _session(sid: int) -> list:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            continue
    return out


def _read_to_eof(stream, marks: dict) -> None:
    marks["text"] = stream.read().decode()
    marks["eof"] = time.monotonic()


def _stored_keys(out: Path) -> list[tuple]:
    table = pq.read_table(out / "points", columns=["model_sha256", "config_id"])
    return list(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))


@pytest.mark.parametrize(
    ("engine", "workers"),
    [((), 4), (("--dask-local", "2"), 2)],  # pool: tracker, fork server, 2 workers
    ids=["pool", "dask-local"],
)
def test_sigkill_of_the_sweep_leaves_no_process_and_closes_its_output(tmp_path, engine, workers):
    out = tmp_path / "r"
    proc = _start(out, *engine)
    kids = _running(proc, out, workers)
    marks: dict = {}
    reader = threading.Thread(target=_read_to_eof, args=(proc.stdout, marks))
    reader.start()
    os.kill(proc.pid, signal.SIGKILL)  # the sweep process only, as `kill -9 PID` does
    killed = time.monotonic()
    proc.wait()
    took_s = seconds_until_dead(kids, timeout_s=10)
    reader.join(10)
    assert "eof" in marks, "a reader of the sweep's output never saw end-of-file"
    assert took_s < 2.0, f"descendants outlived the sweep by {took_s:.2f} s"
    assert marks["eof"] - killed < 2.0
    assert _session(proc.pid) == []  # nothing of its session is left
    print(f"{engine or 'pool'}: {len(kids)} descendants gone {took_s:.2f} s after SIGKILL")


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGHUP, True)],
    ids=["SIGTERM to the sweep (timeout)", "SIGHUP to its group (closed terminal)"],
)
def test_sigterm_and_sighup_store_what_finished_and_exit_like_ctrl_c(tmp_path, sig, group):
    out = tmp_path / "r"
    proc = _start(out, "--jobs", "2")
    kids = _running(proc, out, 4)
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    text = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 128 + sig, text
    assert "interrupted: finished points are stored" in text and "Traceback" not in text
    seconds_until_dead(kids, timeout_s=10)
    stored = _stored_keys(out)
    assert 0 < len(stored) < TOTAL and len(set(stored)) == len(stored)
    again = subprocess.run(
        [sys.executable, "-m", "ndpsim", "sweep", str(SPEC), "-o", str(out), "-q"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"{TOTAL - len(stored)} points" in again.stdout
    keys = _stored_keys(out)
    assert len(keys) == len(set(keys)) == TOTAL
