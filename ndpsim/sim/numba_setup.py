"""numba's set-up for processes that run only ndpsim's kernels."""

from __future__ import annotations

import sys


def numba_target_without_scipy() -> None:
    """Import numba and set up its CPU target (which every kernel call needs) without scipy:
    numba imports it to check its version, and one of the target's registries imports
    scipy.linalg (0.2-0.5 s together) only to learn whether np.dot and np.linalg may be
    compiled, which no simulator kernel does. For processes of ndpsim's own (the CLI, the
    compile helper), which compile nothing else: an API user's numba is left as it is."""
    blocked = [m for m in ("scipy", "scipy.linalg.cython_blas") if m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # a failed import: numba records "no SciPy, no BLAS"
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        for name in blocked:
            del sys.modules[name]
