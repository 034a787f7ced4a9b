"""ndpsim: a cycle-approximate simulator of a neural decision processor (NDP)."""

__version__ = "0.1.0"
