"""Every MAC layer's cycles are at least its compute bound and its memory bound, and large
regular layers stay within a documented factor of the larger bound (docs/machine_model.md,
"Consistency bounds")."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ndpsim.api import SimOptions, simulate
from ndpsim.config import load_preset

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.onnx"))
REGULAR_FACTOR = 2.2  # cycles <= 2.2 x max(bounds) for layers filling their tiles (>= 90 %)
LARGE_CYCLES = 2000  # ... whose larger bound is at least this many cycles
MIN_PIXELS = 16  # ... and that stream many input vectors (a batch-1 FC applies one per MVM)
# the recurrent models' time axis is symbolic: one second of 20 ms frames
SHAPES = {"kws_lstm": {"input": (1, 49, 10)}, "kws_gru": {"input": (1, 49, 10)}}


def _bounds(lay, hw):
    compute = lay.macs / hw.peak_macs_per_cycle
    ports = min(lay.tiles, hw.total_macros) + hw.cores  # each macro / vector unit: one port
    sram = (lay.sram_read_bytes + lay.sram_write_bytes) / (hw.sram_bytes_per_cycle * ports)
    ext = (lay.ext_read_bytes + lay.ext_write_bytes) / hw.ext_mem_bytes_per_cycle
    return compute, max(sram, ext)


@pytest.mark.parametrize("preset", ["generic", "ndp120", "neural-engine"])
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_layer_cycles_respect_bounds(preset, model):
    hw = load_preset(preset)
    r = simulate(model, hw, SimOptions(timing_only=True, input_shapes=SHAPES.get(model.stem)))
    regular = 0
    for lay in (x for x in r.layers if x.kind == "mac"):
        compute, memory = _bounds(lay, hw)
        assert lay.cycles >= compute and lay.cycles >= memory, lay.name
        pixels = math.prod(lay.output_shape[2:]) if len(lay.output_shape) > 2 else 1
        big = max(compute, memory) >= LARGE_CYCLES and pixels >= MIN_PIXELS
        if lay.macro_utilization >= 0.9 and big:
            regular += 1
            assert lay.cycles <= REGULAR_FACTOR * max(compute, memory), lay.name
    if preset == "ndp120" and model.stem in ("ic_resnet8", "vww_mobilenetv1_025"):
        assert regular > 0  # the factor check is exercised
