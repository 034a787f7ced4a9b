"""Weight placement: the closed form (consecutive macros from the placed count) equals
tile-by-tile round-robin placement that skips full macros."""

from __future__ import annotations

import numpy as np

from ndpsim.lower.memory import place_weights


def _round_robin(tiles_per_layer, total_macros, weight_sets):
    """Tile by tile: the next macro with a free set, from a cursor carried across layers."""
    need = sum(tiles_per_layer)
    reserve = 0 if need <= total_macros * weight_sets else min(2, weight_sets)
    capacity = [weight_sets - reserve] * total_macros
    cursor, out = 0, []
    for n in tiles_per_layer:
        if sum(capacity) >= n:
            macros = []
            for _ in range(n):
                while capacity[cursor] == 0:
                    cursor = (cursor + 1) % total_macros
                capacity[cursor] -= 1
                macros.append(cursor)
                cursor = (cursor + 1) % total_macros
            out.append((True, macros))
        else:
            out.append((False, [i % total_macros for i in range(n)]))
    return out, reserve * total_macros


def test_closed_form_equals_round_robin():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        macros = int(rng.integers(1, 9))
        sets = int(rng.integers(1, 7))
        layers = [int(x) for x in rng.integers(1, 3 * macros * sets // 2 + 2, rng.integers(1, 12))]
        plan = place_weights(layers, macros, sets)
        ref, slots = _round_robin(layers, macros, sets)
        assert plan.stream_slots == slots
        for j, (resident, where) in enumerate(ref):
            assert plan.resident[j] == resident
            assert plan.macros(j) == where
