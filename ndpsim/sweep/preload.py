"""Preloaded by the local pool's fork server (never imported otherwise): it records the
server's pid for its workers' parent watch (lifeline.py), then loads the numba core, so
every worker forked from that server starts with the core compiled (loaded from numba's
cache) instead of each loading it again."""

from ndpsim.sweep.lifeline import mark_fork_server

mark_fork_server()

from ndpsim.sweep.point import warm_up  # noqa: E402  (after the pid is recorded)

warm_up()
