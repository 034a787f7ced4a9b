"""The Dask engine: the same chunked tasks as the local pool, on a `distributed` cluster.

Imported only when asked for (`--scheduler`, `--dask-local`), so the local path never pays
for importing Dask. Workers must be able to import ndpsim (same version) and read the model
files at the paths the sweep planned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ndpsim.errors import ConfigError
from ndpsim.sweep.engine import _error, _init_once, _name, apply_chunk_one_thread

Fn = Callable[[Any], Any]


class DaskEngine:
    """A Dask `distributed` cluster: an existing scheduler (`address`), or a LocalCluster of
    `local_workers` single-threaded worker processes started and stopped here."""

    def __init__(self, address: str | None = None, local_workers: int | None = None):
        if (address is None) == (local_workers is None):
            raise ConfigError("give a scheduler address or a number of local Dask workers")
        if local_workers is not None and local_workers < 1:
            raise ConfigError(f"--dask-local must be >= 1, got {local_workers}")
        self.address, self.local_workers = address, local_workers
        import distributed  # noqa: F401  (a missing extra fails here, before any work)

    def describe(self) -> str:
        if self.address:
            return f"Dask scheduler {self.address}"
        return f"Dask LocalCluster, {self.local_workers} workers"

    def _client(self):
        from distributed import Client, LocalCluster

        if self.address:
            try:
                return Client(self.address, timeout="10s"), None
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach Dask scheduler {self.address}: {exc}") from None
        cluster = LocalCluster(
            n_workers=self.local_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        return Client(cluster), cluster

    def run(self, fn: Fn, chunks: Iterator[list[Any]], initializer=None):
        from distributed import as_completed

        client, cluster = self._client()
        try:
            if initializer is not None:
                client.register_plugin(_WarmUp(initializer))
            limit = 4 * max(1, len(client.scheduler_info().get("workers", {})) or 1)
            pending: dict[Any, list[Any]] = {}

            def submit(chunk: list[Any]) -> Any:
                future = client.submit(apply_chunk_one_thread, fn, chunk, initializer, pure=False)
                pending[future] = chunk
                return future

            stream = as_completed([submit(c) for c in _take(chunks, limit)])
            for future in stream:
                chunk = pending.pop(future)
                try:
                    results = future.result()
                except Exception as exc:  # e.g. KilledWorker: the chunk is lost, say so
                    results = [(None, _error(exc))] * len(chunk)
                future.release()
                yield chunk, results
                for nxt in _take(chunks, 1):
                    stream.add(submit(nxt))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _take(chunks: Iterator[list[Any]], n: int) -> list[list[Any]]:
    out = []
    for chunk in chunks:
        out.append(chunk)
        if len(out) >= n:
            break
    return out


class _WarmUp(WorkerPlugin):
    """A Dask worker plugin: the initializer on every worker, as it starts."""

    def __init__(self, initializer: Callable[[], None]):
        self.initializer = initializer
        self.name = f"ndpsim-warm-up-{_name(initializer)}"

    def setup(self, worker) -> None:
        _init_once(self.initializer)
