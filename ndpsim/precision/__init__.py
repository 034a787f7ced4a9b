"""Precision: per-layer bit specs (spec.py) and the sensitivity analysis behind
`ndpsim precision` (sensitivity.py)."""
