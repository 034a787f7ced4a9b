"""The local engine: a process pool forked from a server that loaded ndpsim once.

Chunks of points run on `jobs` worker processes, at most four chunks per worker in flight.
Workers die with this process (`lifeline`). A worker that dies is survived:

- the points it may have been running are retried one at a time;
- a point that kills its worker when it runs alone, twice, is that point's failure (the
  simulator crashed on it);
- a death that no point reproduces alone (an OOM kill, a `kill` from outside) is the
  machine's: after `max_lost_workers` of those the sweep stops with an
  `InfrastructureError`, and no point is reported failed for them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from typing import Any

import numba

from ndpsim.errors import ConfigError
from ndpsim.sweep.lifeline import watch_parent
from ndpsim.sweep.tasks import (
    HELD_SIGNALS,
    Fn,
    HoldSignals,
    InfrastructureError,
    apply_chunk,
    error_text,
    init_once,
)

CRASHES_TO_BLAME = 2  # runs alone that killed the worker before the point is blamed
DEFAULT_MAX_LOST_WORKERS = 3  # unexplained worker deaths tolerated per run


def _init_worker(initializer: Callable[[], None] | None) -> None:
    """A pool worker: die with the parent, one thread for numba (the pool already runs a
    worker per core; numba's setting is per thread, and this is the thread that runs the
    tasks), then the initializer (a failure is raised by every chunk, see tasks.py)."""
    watch_parent()
    numba.set_num_threads(1)
    try:
        init_once(initializer, worker=True)
    except Exception:
        pass  # kept by init_once and raised for each chunk: the pool itself stays usable


def _start_fork_server() -> None:
    # The server starts with Ctrl-C, SIGTERM and SIGHUP ignored, a disposition its workers
    # inherit: this process alone handles them, stores what finished and stops the pool,
    # and a signal sent to the whole process group does not kill workers mid-chunk.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in HELD_SIGNALS}
    try:
        forkserver.ensure_running()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class LocalEngine:
    """A process pool on this machine (`jobs` processes; 1 runs in this process)."""

    def __init__(self, jobs: int | None = None, max_lost_workers: int = DEFAULT_MAX_LOST_WORKERS):
        if jobs is not None and jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {jobs}")
        self.jobs = jobs or os.cpu_count() or 1
        self.max_lost_workers = max_lost_workers

    def describe(self) -> str:
        return f"local pool, {self.jobs} process{'es' if self.jobs > 1 else ''}"

    def run(self, fn: Fn, chunks: Iterator[list[Any]], initializer=None):
        """Yield (chunk, [(value, error), ...]) in completion order."""
        if self.jobs == 1:
            for chunk in chunks:
                try:
                    results = apply_chunk(fn, chunk, initializer)
                except Exception as exc:  # the initializer, in this process
                    raise InfrastructureError(error_text(exc)) from exc
                yield chunk, results
            return
        yield from _Pool(self, fn, chunks, initializer).run()


class _Pool:
    """One run on a process pool: submissions, completions and worker deaths."""

    def __init__(self, engine: LocalEngine, fn: Fn, chunks: Iterator[list[Any]], initializer):
        self.engine, self.fn, self.chunks, self.initializer = engine, fn, chunks, initializer
        self.pending: dict[Future, tuple[list[Any], int]] = {}  # chunk, its crashes alone
        self.suspects: deque[tuple[list[Any], int]] = deque()  # single points, run alone
        self.lost = 0  # worker deaths no point reproduced alone
        self.wave_explained = True  # the current round of suspects found its culprit

    def _executor(self) -> ProcessPoolExecutor:
        # forkserver: workers fork from a clean server that loaded ndpsim and the compiled
        # core once (fast start, no state or threads inherited from this process, e.g.
        # pyarrow's thread pool)
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ndpsim.sweep.preload"])
        _start_fork_server()
        return ProcessPoolExecutor(
            self.engine.jobs, mp_context=ctx, initializer=_init_worker,
            initargs=(self.initializer,),
        )  # fmt: skip

    def _submit(self, pool: ProcessPoolExecutor, chunk: list[Any], crashes: int) -> None:
        with HoldSignals():
            try:
                future = pool.submit(apply_chunk, self.fn, chunk, self.initializer)
            except BrokenProcessPool as exc:  # a worker died since the last wait: this chunk
                future = Future()  # is handled as one the broken pool was running
                future.set_exception(exc)
        self.pending[future] = (chunk, crashes)

    def _lose_worker(self) -> None:
        self.lost += 1
        if self.lost > self.engine.max_lost_workers:
            raise InfrastructureError(
                f"worker processes died {self.lost} times and no point does it alone "
                "(out of memory? killed from outside?)"
            )

    def run(self):
        limit = 4 * self.engine.jobs
        pool = self._executor()
        exhausted = False
        try:
            while True:
                while not exhausted and not self.suspects and len(self.pending) < limit:
                    chunk = next(self.chunks, None)
                    if chunk is None:
                        exhausted = True
                        break
                    self._submit(pool, chunk, 0)
                if self.suspects and not self.pending:  # isolate: one suspect in flight
                    self._submit(pool, *self.suspects.popleft())
                if not self.pending:
                    return
                done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
                alone = len(self.pending) == 1
                broken = False
                for future in done:
                    chunk, crashes = self.pending.pop(future)
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if not (alone and len(chunk) == 1):
                            self.suspects.append((chunk, 0))
                            self.wave_explained = False
                        elif crashes + 1 >= CRASHES_TO_BLAME:
                            self.wave_explained = True
                            error = f"worker process died running this point alone, {crashes + 1}x"
                            yield chunk, [(None, error)]
                        else:
                            self.suspects.appendleft((chunk, crashes + 1))
                        continue
                    except Exception as exc:  # a failed initializer, an unpicklable result
                        raise InfrastructureError(error_text(exc)) from exc
                    if crashes:  # it had killed a worker alone, and now it ran
                        self._lose_worker()
                    yield chunk, results
                if broken:
                    for chunk, crashes in self.pending.values():
                        self.suspects.append((chunk, crashes))
                    self.pending.clear()
                    self.suspects = deque(
                        ([p], c) for chunk, c in self.suspects for p in chunk
                    )  # fmt: skip
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = self._executor()
                if not self.suspects and not self.pending and not self.wave_explained:
                    self.wave_explained = True
                    self._lose_worker()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
