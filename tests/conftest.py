"""Test session setup: fresh numba and program caches (so stale compiled kernels or programs
never mask a change), and the `slow` marker skipped in CI unless NDPSIM_SLOW is set."""

from __future__ import annotations

import os
import tempfile

# Before anything imports numba: numba reads NUMBA_CACHE_DIR once, at import.
if not os.environ.get("NDPSIM_KEEP_NUMBA_CACHE"):
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="ndpsim-numba-")
# Lowered programs (ndpsim/program_cache.py) in a fresh folder too: never the user's cache.
os.environ["NDPSIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="ndpsim-programs-")

import pytest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: longer checks (skipped in CI unless NDPSIM_SLOW)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("CI") or os.environ.get("NDPSIM_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: skipped in CI (set NDPSIM_SLOW=1 to run)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
