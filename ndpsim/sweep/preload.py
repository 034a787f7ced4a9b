"""Preloaded by the local pool's fork server (never imported otherwise): importing it loads
the numba core, so every worker forked from that server starts with the core compiled
(loaded from numba's cache) instead of each loading it again."""

from ndpsim.sweep.point import warm_up

warm_up()
