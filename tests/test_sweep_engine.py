"""The engines' line between a point's failure and their own: what `fn` raised is the
point's; a point that kills its worker alone twice is the point's; everything else (deaths
no point reproduces, a failed initializer, an unpicklable result) stops the run with an
InfrastructureError and reports nothing for the points in flight. And workers die with
their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ndpsim.sweep import LocalEngine, run_points
from ndpsim.sweep.engine import InfrastructureError
from ndpsim.sweep.tasks import HoldSignals

ROOT = Path(__file__).resolve().parents[1]


def _square(x: int) -> int:
    return x * x


def _boom(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)  # a worker dying on this point, every time
    return x * x


def test_a_point_that_kills_its_worker_alone_twice_is_that_points_failure():
    out = {p: (v, e) for p, v, e in run_points(_boom, range(40), LocalEngine(2), chunk_size=3)}
    assert sorted(out) == list(range(40))
    assert out[3] == (None, "ValueError: three")
    assert out[5][0] is None and "died running this point alone" in out[5][1]
    assert all(out[i] == (i * i, None) for i in range(40) if i not in (3, 5))


def _dies_once_per_marker(x: int, folder: str) -> int:
    """Kills its worker the first time it meets a multiple of 10 (a death that the point
    does not reproduce when it runs again: the machine's fault, not the point's)."""
    if x % 10 == 0:
        try:
            os.close(os.open(os.path.join(folder, str(x)), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return x
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_worker_deaths_no_point_reproduces_stop_the_run_and_blame_no_point(tmp_path):
    import functools

    fn = functools.partial(_dies_once_per_marker, folder=str(tmp_path))
    seen = []
    with pytest.raises(InfrastructureError, match="died 4 times and no point does it alone"):
        for point, value, error in run_points(fn, range(200), LocalEngine(2), chunk_size=2):
            seen.append((point, value, error))
    assert seen and all(error is None and value == point for point, value, error in seen)
    assert len(seen) < 200  # it stopped
    # three such deaths (0, 10, 20) are within the budget: survived, every point runs
    (tmp_path / "again").mkdir()
    fn = functools.partial(_dies_once_per_marker, folder=str(tmp_path / "again"))
    out = list(run_points(fn, range(30), LocalEngine(2), chunk_size=2))
    assert sorted(p for p, _, _ in out) == list(range(30))
    assert all(e is None for _, _, e in out)


def test_a_pool_that_breaks_between_wait_and_submit_loses_no_point(monkeypatch):
    """A worker can die after the pool's last wait and before the next submit: submit then
    raises BrokenProcessPool. That chunk is handled like the ones the broken pool was running
    (re-run on a fresh pool), not raised, and no point is blamed (a race seen under load)."""
    from concurrent.futures.process import BrokenProcessPool

    from ndpsim.sweep import pool as pool_module

    calls = {"submit": 0}
    real_executor = pool_module._Pool._executor

    class BreaksOnce:
        def __init__(self, inner):
            self.inner = inner

        def submit(self, *args, **kwargs):
            calls["submit"] += 1
            if calls["submit"] == 3:
                raise BrokenProcessPool("A child process terminated abruptly")
            return self.inner.submit(*args, **kwargs)

        def shutdown(self, *args, **kwargs):
            return self.inner.shutdown(*args, **kwargs)

    monkeypatch.setattr(pool_module._Pool, "_executor",
                        lambda self: BreaksOnce(real_executor(self)))  # fmt: skip
    out = list(run_points(_square, range(12), LocalEngine(2), chunk_size=2))
    assert calls["submit"] > 3
    assert sorted(p for p, _, _ in out) == list(range(12))
    assert all(e is None and v == p * p for p, v, e in out)


def _fails_to_start() -> None:
    raise OSError("no licence for this worker")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_initializer_stops_the_run_instead_of_failing_every_point(jobs):
    with pytest.raises(InfrastructureError, match="initializer failed: OSError: no licence"):
        for _, _, error in run_points(_square, range(20), LocalEngine(jobs),
                                      initializer=_fails_to_start):  # fmt: skip
            raise AssertionError(f"a point was reported: {error}")


def _unpicklable(x: int):
    return lambda: x  # cannot travel back from a worker


def test_a_result_that_cannot_travel_back_stops_the_run():
    with pytest.raises(InfrastructureError, match="(?i)pickle"):
        list(run_points(_unpicklable, range(4), LocalEngine(2)))


def test_held_signals_are_delivered_after_the_block():
    hits = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: hits.append(s))
    try:
        with HoldSignals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            assert hits == []  # held
        assert hits == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


POLLING_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from ndpsim.sweep import lifeline
    pid = os.fork()
    if pid == 0:  # the worker: watches its parent by polling, then idles
        lifeline.watch_parent(use_prctl={use_prctl})
        time.sleep(60)
        os._exit(0)
    print(pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("use_prctl", [True, False], ids=["prctl", "polling"])
def test_a_watched_worker_dies_with_its_parent(use_prctl):
    if use_prctl and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen([sys.executable, "-c", POLLING_CHILD.format(use_prctl=use_prctl)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    child = psutil.Process(int(proc.stdout.readline()))
    time.sleep(0.3)  # the child has set its watch
    assert child.is_running()
    proc.kill()
    proc.wait()
    assert seconds_until_dead([child], timeout_s=5) < 2.0


def seconds_until_dead(procs, timeout_s: float) -> float:
    """Seconds until every process has exited (a zombie waiting for its new parent to reap
    it has exited); fails after `timeout_s`."""
    import psutil

    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        alive = []
        for p in procs:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"still running after {timeout_s} s: {[p.pid for p in alive]}")
