"""Write the four MLPerf Tiny reference models (seed 0) next to this script.

Usage: python models/generate.py  (from anywhere; no install needed)
The files are a pure function of ndpsim.zoo and the seed; tests/test_zoo.py fails if a
committed file differs byte for byte from a fresh build.
"""

from __future__ import annotations

import sys
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
SEED = 0


def main() -> int:
    """Build each model with seed 0 and write ``models/<name>.onnx``; print a summary."""
    # Run as a script, sys.path[0] is models/; make the repo's ndpsim importable uninstalled.
    sys.path.insert(0, str(MODELS_DIR.parent))
    from ndpsim.zoo import MLPERF_TINY, count_macs, count_params

    for name, build in MLPERF_TINY.items():
        model = build(seed=SEED)
        path = MODELS_DIR / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        print(
            f"{path.name:28s} params={count_params(model):>9,d} macs={count_macs(model):>12,d} "
            f"size_bytes={path.stat().st_size:>9,d}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
