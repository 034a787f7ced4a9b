"""Engines that apply a function to many points: a local process pool or a Dask cluster.

    for point, value, error in run_points(fn, points, LocalEngine(jobs=2)):
        ...

`fn` must be a module-level (picklable) function of one point. Points travel in chunks (one
task per chunk keeps IPC and scheduler overhead per point small), at most a few chunks per
worker in flight (memory stays flat however many points there are), and results come back
in completion order. An exception raised by `fn` is returned as that point's error; a
worker that dies (a crash, an OOM kill) is survived: the points it may have been running
are retried one at a time, and the one that kills a worker alone is reported failed.
`initializer` runs once per worker process before its first point (numba warm-up).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from typing import Any

import numba

from ndpsim.errors import ConfigError

Result = tuple[Any, str | None]  # (value, error)
Fn = Callable[[Any], Any]
_INITIALIZED: set[str] = set()


def _name(fn: Callable) -> str:
    """A per-process identity of an initializer (functions and functools.partial)."""
    return getattr(fn, "__qualname__", None) or repr(fn)


def _init_once(initializer: Callable[[], None] | None) -> None:
    if initializer is not None and _name(initializer) not in _INITIALIZED:
        initializer()
        _INITIALIZED.add(_name(initializer))


def _init_worker(initializer: Callable[[], None] | None) -> None:
    """A pool worker: one thread for numba (the pool already runs a worker per core; numba's
    setting is per thread, and this is the thread that runs the tasks), then the
    initializer."""
    numba.set_num_threads(1)
    _init_once(initializer)


def apply_chunk_one_thread(
    fn: Fn, chunk: list[Any], initializer: Callable[[], None] | None
) -> list[Result]:
    """apply_chunk for workers of a cluster (a process per core): numba on one thread."""
    numba.set_num_threads(1)
    return apply_chunk(fn, chunk, initializer)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]


def apply_chunk(fn: Fn, chunk: list[Any], initializer: Callable[[], None] | None) -> list[Result]:
    """Run `fn` on each point of a chunk in this process (the task every engine ships)."""
    _init_once(initializer)
    out: list[Result] = []
    for point in chunk:
        try:
            out.append((fn(point), None))
        except Exception as exc:
            out.append((None, _error(exc)))
    return out


def _chunks(points: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for point in points:
        chunk.append(point)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _HoldCtrlC:
    """Ctrl-C is held back (and raised after) while a task is submitted: a submit may start a
    worker process, and one interrupted half-way is never joined (it then fails noisily
    after this process has exited)."""

    def __enter__(self) -> _HoldCtrlC:
        self.hit = False
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:  # signal handlers can only be set from the main thread
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, *_: object) -> None:
        self.hit = True

    def __exit__(self, *exc: object) -> None:
        if self.main:
            signal.signal(signal.SIGINT, self.previous)
            if self.hit:
                raise KeyboardInterrupt


class LocalEngine:
    """A process pool on this machine (`jobs` processes; 1 runs in this process)."""

    def __init__(self, jobs: int | None = None):
        if jobs is not None and jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {jobs}")
        self.jobs = jobs or os.cpu_count() or 1

    def describe(self) -> str:
        return f"local pool, {self.jobs} process{'es' if self.jobs > 1 else ''}"

    def run(self, fn: Fn, chunks: Iterator[list[Any]], initializer=None):
        if self.jobs == 1:
            for chunk in chunks:
                yield chunk, apply_chunk(fn, chunk, initializer)
            return
        yield from self._pool(fn, chunks, initializer)

    def _executor(self, initializer) -> ProcessPoolExecutor:
        # forkserver: workers fork from a clean server that loaded ndpsim and the compiled
        # core once (fast start, no state or threads inherited from this process, e.g.
        # pyarrow's thread pool). The server starts with Ctrl-C ignored, a disposition its
        # workers inherit: this process alone handles it, stores what finished and stops
        # the pool, with no worker tracebacks.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ndpsim.sweep.preload"])
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, previous)
        return ProcessPoolExecutor(
            self.jobs, mp_context=ctx, initializer=_init_worker, initargs=(initializer,)
        )

    def _pool(self, fn: Fn, chunks: Iterator[list[Any]], initializer):
        limit = 4 * self.jobs
        suspects: deque[list[Any]] = deque()  # single points to retry, one at a time
        pool = self._executor(initializer)
        pending: dict[Future, list[Any]] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and not suspects and len(pending) < limit:
                    chunk = next(chunks, None)
                    if chunk is None:
                        exhausted = True
                        break
                    with _HoldCtrlC():
                        pending[pool.submit(apply_chunk, fn, chunk, initializer)] = chunk
                if suspects and not pending:  # isolate: one suspect point in flight
                    chunk = suspects.popleft()
                    with _HoldCtrlC():
                        pending[pool.submit(apply_chunk, fn, chunk, initializer)] = chunk
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                isolated = len(pending) == 1 and len(next(iter(pending.values()))) == 1
                broken = False
                for future in done:
                    chunk = pending.pop(future)
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if isolated:  # this point alone killed its worker
                            yield chunk, [(None, "worker process died running this point")]
                        else:
                            suspects.extend([p] for p in chunk)
                        continue
                    except Exception as exc:  # e.g. a result that cannot be pickled back
                        results = [(None, _error(exc))] * len(chunk)
                    yield chunk, results
                if broken:
                    for chunk in pending.values():
                        suspects.extend([p] for p in chunk)
                    pending.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = self._executor(initializer)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def make_engine(jobs: int | None = None, scheduler: str | None = None,
                dask_local: int | None = None):  # fmt: skip
    """The CLI's rule: at most one of --jobs, --scheduler, --dask-local; default a local pool."""
    given = [o for o, v in (("--jobs", jobs), ("--scheduler", scheduler),
                            ("--dask-local", dask_local)) if v is not None]  # fmt: skip
    if len(given) > 1:
        raise ConfigError(f"give one of {', '.join(given)}, not several")
    if scheduler is not None or dask_local is not None:
        from ndpsim.sweep.dask_engine import DaskEngine

        return DaskEngine(scheduler, dask_local)
    return LocalEngine(jobs)


def run_points(
    fn: Fn,
    points: Iterable[Any],
    engine: Any = None,
    *,
    chunk_size: int = 16,
    initializer: Callable[[], None] | None = None,
) -> Iterator[tuple[Any, Any, str | None]]:
    """Apply `fn` to every point on `engine` (a LocalEngine or a DaskEngine; default a local
    pool over all cores); yields
    (point, value, error) in completion order, error being None on success."""
    engine = engine or LocalEngine()
    for chunk, results in engine.run(fn, _chunks(points, chunk_size), initializer):
        for point, (value, error) in zip(chunk, results, strict=True):
            yield point, value, error
