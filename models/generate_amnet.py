"""Write the AmNet-style branching keyword encoder (models/amnet_kws.onnx, seed 0) next to
this script: an arbitrator scores each hop and an `If` on that score runs the full or the
low-rank encoder branch (ndpsim/zoo/amnet.py has the structure).

Usage: python models/generate_amnet.py  (from anywhere; no install needed)
The file is a pure function of ndpsim.zoo.amnet and the seed; tests/test_amnet.py fails if
the committed file differs byte for byte from a fresh build.
"""

from __future__ import annotations

import sys
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
SEED = 0


def main() -> int:
    """Build the model with seed 0 and write ``models/amnet_kws.onnx``; print its size."""
    sys.path.insert(0, str(MODELS_DIR.parent))  # the repo's ndpsim, uninstalled
    from ndpsim.zoo import count_macs, count_params
    from ndpsim.zoo.amnet import amnet_kws

    model = amnet_kws(seed=SEED)
    path = MODELS_DIR / "amnet_kws.onnx"
    path.write_bytes(model.SerializeToString())
    print(f"{path.name:28s} params={count_params(model):>9,d} macs={count_macs(model):>12,d} "
          f"size_bytes={path.stat().st_size:>9,d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
