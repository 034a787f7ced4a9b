"""The Dask engine: the same chunked tasks as the local pool, on a `distributed` cluster.

Imported only when asked for (`--scheduler`, `--dask-local`), so the local path never pays
for importing Dask. Workers must be able to import ndpsim (same version) and read the model
files at the paths the sweep planned.

Only what `fn` raised on a point is that point's failure. A lost scheduler, a cancelled
future, a task whose workers died `distributed.scheduler.allowed-failures` times
(KilledWorker) or any other error of a task stops the run with an `InfrastructureError`;
the points in flight are not reported, so a resume runs them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ndpsim.errors import ConfigError
from ndpsim.sweep.tasks import (
    InfrastructureError,
    apply_chunk_one_thread,
    error_text,
    init_once,
    name_of,
)

Fn = Callable[[Any], Any]
CONNECT_TIMEOUT_S = 10
CLOSE_TIMEOUT_S = 5  # closing a client whose scheduler is gone must not hang the exit
DASK_LOGGERS = ("distributed", "tornado")


def silence_logs() -> None:
    """For a command that owns its process: Dask's log lines (reconnection attempts, the
    tracebacks of a lost scheduler) would interleave with its one-line messages, and the
    failures they describe reach it as exceptions anyway. Loggers Dask configured with
    their own level (e.g. distributed.client) are set one by one."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in DASK_LOGGERS]
    for name in {*DASK_LOGGERS, *names}:
        logging.getLogger(name).setLevel(logging.CRITICAL)


class DaskEngine:
    """A Dask `distributed` cluster: an existing scheduler (`address`), or a LocalCluster of
    `local_workers` single-threaded worker processes started and stopped here.
    `on_status`, when set, receives one-line status messages (e.g. waiting for workers)."""

    def __init__(self, address: str | None = None, local_workers: int | None = None):
        if (address is None) == (local_workers is None):
            raise ConfigError("give a scheduler address or a number of local Dask workers")
        if local_workers is not None and local_workers < 1:
            raise ConfigError(f"--dask-local must be >= 1, got {local_workers}")
        import distributed  # noqa: F401  (a missing extra fails here, before any work)

        if address is not None:
            _check_address(address)
        self.address, self.local_workers = address, local_workers
        self.on_status: Callable[[str], None] | None = None
        self._started: tuple[Any, Any] | None = None  # (client, cluster) of start()

    def start(self) -> None:
        """Connect now (an unreachable scheduler is a usage error before any work); the next
        run uses this connection and closes it."""
        if self._started is None:
            self._started = self._client()

    def close(self) -> None:
        """Close what start() opened, if run() did not."""
        if self._started is not None:
            _close(*self._started)
            self._started = None

    def describe(self) -> str:
        if self.address:
            return f"Dask scheduler {self.address}"
        return f"Dask LocalCluster, {self.local_workers} workers"

    def _client(self):
        from distributed import Client, LocalCluster

        if self.address:
            try:
                return Client(self.address, timeout=f"{CONNECT_TIMEOUT_S}s"), None
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(
                    f"cannot reach Dask scheduler {self.address}: {error_text(exc)}"
                ) from None
        cluster = LocalCluster(
            n_workers=self.local_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
        return Client(cluster), cluster

    def _workers(self, client) -> int:
        count = len(client.scheduler_info().get("workers", {}))
        if count == 0:
            if self.on_status:
                self.on_status(f"waiting for a worker to join {self.describe()} (none yet)")
            client.wait_for_workers(1)
            count = len(client.scheduler_info().get("workers", {}))
        return max(count, 1)

    def run(self, fn: Fn, chunks: Iterator[list[Any]], initializer=None):
        """Yield (chunk, [(value, error), ...]) in completion order."""
        client, cluster = self._started or self._client()
        self._started = None
        try:
            yield from self._run(client, fn, chunks, initializer)
        finally:
            _close(client, cluster)

    def _run(self, client, fn: Fn, chunks: Iterator[list[Any]], initializer):
        from distributed import as_completed

        where = self.describe()
        try:
            if initializer is not None:
                client.register_plugin(_WarmUp(initializer))
            limit = 4 * self._workers(client)
            pending: dict[Any, list[Any]] = {}

            def submit(chunk: list[Any]) -> Any:
                future = client.submit(apply_chunk_one_thread, fn, chunk, initializer, pure=False)
                pending[future] = chunk
                return future

            stream = as_completed([submit(c) for c in _take(chunks, limit)])
            for future in stream:
                chunk = pending.pop(future)
                results = future.result()
                future.release()
                yield chunk, results
                for nxt in _take(chunks, 1):
                    stream.add(submit(nxt))
        except (GeneratorExit, KeyboardInterrupt, InfrastructureError):
            raise
        except Exception as exc:
            raise InfrastructureError(_explain(exc, where)) from exc


def _check_address(address: str) -> None:
    """A usage error before any work: `tcp://host:port` (or another Dask protocol)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        _, location = parse_address(address)
        parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"--scheduler {address!r} is not a Dask address like tcp://host:8786 ({exc})"
        ) from None


def _explain(exc: BaseException, where: str) -> str:
    name = type(exc).__name__
    if name in ("CancelledError", "FutureCancelledError", "ClosedClientError", "CommClosedError"):
        return f"lost the connection to {where} ({name})"
    if name == "KilledWorker":
        return f"{where}: a task's workers died too often ({error_text(exc)})"
    return f"{where}: {error_text(exc)}"


def _close(client, cluster) -> None:
    try:
        client.close(timeout=CLOSE_TIMEOUT_S)
    except Exception:  # the scheduler is gone: nothing left to close cleanly
        pass
    if cluster is not None:
        try:
            cluster.close(timeout=CLOSE_TIMEOUT_S)
        except Exception:
            pass


def _take(chunks: Iterator[list[Any]], n: int) -> list[list[Any]]:
    out = []
    for chunk in chunks:
        out.append(chunk)
        if len(out) >= n:
            break
    return out


class _WarmUp(WorkerPlugin):
    """A Dask worker plugin: the initializer on every worker, as it starts. A failure is
    kept by init_once and raised by each of the worker's tasks (an InfrastructureError)."""

    def __init__(self, initializer: Callable[[], None]):
        self.initializer = initializer
        self.name = f"ndpsim-warm-up-{name_of(initializer)}"

    def setup(self, worker) -> None:
        try:
            init_once(self.initializer, worker=True)
        except Exception:
            pass
