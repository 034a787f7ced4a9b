"""Lowering: graph IR -> Program (ISA) for a HardwareConfig."""

from ndpsim.lower.lower import lower
from ndpsim.lower.program import Program

__all__ = ["Program", "lower"]
