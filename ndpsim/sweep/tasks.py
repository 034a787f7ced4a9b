"""The task every engine ships (a chunk of points through one function), and the line
between a point's failure and the engine's.

A point fails when the function raised on it: its error is returned with it. Anything else
(a lost scheduler or worker, a cancelled task, an initializer that failed, a result that
cannot be sent back) is the engine's failure, an `InfrastructureError`: no point is
reported for it, so a resume runs those points again.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numba

Result = tuple[Any, str | None]  # (value, error)
Fn = Callable[[Any], Any]
_INITIALIZED: set[str] = set()
_SETUP_ERROR: list[str] = []  # why this worker's initializer failed, if it did
# the signals that stop a sweep the way Ctrl-C does (SIGHUP: a closed terminal or SSH session)
HELD_SIGNALS = tuple(
    getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)
)


class InfrastructureError(RuntimeError):
    """The engine failed, not a point: the sweep stops, nothing is stored for the points in
    flight, and a resume runs them again."""


class WorkerSetupError(RuntimeError):
    """A worker's initializer raised (raised for every chunk that worker receives)."""


def error_text(exc: BaseException) -> str:
    """`Type: message` on one line (at most 2,000 characters)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]


def name_of(fn: Callable) -> str:
    """A per-process identity of an initializer (functions and functools.partial)."""
    return getattr(fn, "__qualname__", None) or repr(fn)


def init_once(initializer: Callable[[], None] | None, worker: bool = False) -> None:
    """Run `initializer` once in this process. In a `worker` process, a failure is kept and
    raised for every chunk as a WorkerSetupError (a worker that cannot start must not fail
    points one by one); elsewhere it is raised, and the next call tries again."""
    if _SETUP_ERROR:
        raise WorkerSetupError(_SETUP_ERROR[0])
    if initializer is not None and name_of(initializer) not in _INITIALIZED:
        try:
            initializer()
        except Exception as exc:
            message = f"the worker initializer failed: {error_text(exc)}"
            if worker:
                _SETUP_ERROR.append(message)
            raise WorkerSetupError(message) from None
        _INITIALIZED.add(name_of(initializer))


def apply_chunk(fn: Fn, chunk: list[Any], initializer: Callable[[], None] | None) -> list[Result]:
    """Run `fn` on each point of a chunk in this process (the task every engine ships)."""
    init_once(initializer)
    out: list[Result] = []
    for point in chunk:
        try:
            out.append((fn(point), None))
        except Exception as exc:
            out.append((None, error_text(exc)))
    return out


def apply_chunk_one_thread(
    fn: Fn, chunk: list[Any], initializer: Callable[[], None] | None
) -> list[Result]:
    """apply_chunk for workers of a cluster (a process per core): numba on one thread."""
    numba.set_num_threads(1)
    return apply_chunk(fn, chunk, initializer)


def chunks_of(points: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for point in points:
        chunk.append(point)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class HoldSignals:
    """Ctrl-C, SIGTERM and SIGHUP are held back (and delivered after) while a task is
    submitted: a submit may start a worker process, and one interrupted half-way is never
    joined (it then fails noisily after this process has exited). Only signals handled by
    Python code are held; a default or ignored disposition is left alone."""

    def __enter__(self) -> HoldSignals:
        self.hit: list[int] = []
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():  # handlers: main only
            for sig in HELD_SIGNALS:
                handler = signal.getsignal(sig)
                if callable(handler):
                    self.previous[sig] = signal.signal(sig, self._hold)
        return self

    def _hold(self, signum: int, _frame: object) -> None:
        self.hit.append(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        for signum in self.hit[:1]:
            self.previous[signum](signum, None)
