"""No orphans: the local pool's processes die with the sweep process, even after `kill -9`.

The pool's workers fork from a fork server, which the sweep process starts. Both must go
when the sweep process dies however it dies, or they would run on (the fork server is
~230 MiB, each worker ~120 MiB) and keep its stdout and stderr open, so a reader of the
sweep's output never sees end-of-file. Two links, each watched by the kernel or by a blocked
`select`, never by a timer:

- fork server -> sweep process: Python's own "alive" pipe. The fork server exits when
  every holder of the pipe's write end is gone. Its workers inherit a copy, which would
  keep it alive forever; `watch_parent` closes the worker's copy, so the sweep process is
  the only holder and the fork server sees end-of-file the moment it dies.
- worker -> fork server: `prctl(PR_SET_PDEATHSIG, SIGKILL)` on Linux, so the kernel kills
  a worker when its fork server exits, even inside a numba kernel that holds the GIL.
  Elsewhere a daemon thread polls the parent pid every `POLL_S`.

PR_SET_PDEATHSIG is not used for the fork server itself: it fires when the *thread* that
started the child exits, and a library caller may start a pool from a short-lived thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_S = 0.5  # the fallback's polling period: a parent's death is noticed within it
_SERVER_PID: list[int] = []  # the fork server's pid, recorded there before any fork


def mark_fork_server() -> None:
    """Called in the fork server (its preload): workers compare their parent with this pid,
    which closes the race of a fork server dying between a fork and `watch_parent`."""
    _SERVER_PID[:] = [os.getpid()]


def _close_alive_pipe() -> None:
    from multiprocessing import forkserver

    server = forkserver._forkserver  # the worker's copy of the pipe that keeps it alive
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None


def _poll(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os._exit(1)


def watch_parent(use_prctl: bool | None = None) -> None:
    """In a pool worker, before anything else: die when the parent (the fork server) dies.
    `use_prctl` defaults to Linux; False forces the polling thread (tests use it)."""
    _close_alive_pipe()
    parent = _SERVER_PID[0] if _SERVER_PID else os.getppid()
    if use_prctl is None:
        use_prctl = sys.platform.startswith("linux")
    if use_prctl:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            use_prctl = False  # e.g. a sandbox refusing prctl: fall back to polling
    if not use_prctl:
        threading.Thread(target=_poll, args=(parent,), daemon=True, name="ndpsim-lifeline").start()
    if os.getppid() != parent:  # the parent died before the watch was set
        os._exit(1)
