"""Per-layer precision specs: `PATTERN=BITS` rules, resolved onto the layers of a model
(beside the hardware config, whose `precision:` section holds such rules).

A rule's PATTERN is `default`, an op type (`Conv`, `Gemm`, ..., `Input`, `Output`) or a glob
over layer names (`conv*`, `input:*`); BITS is any of `w<bits>` (weights of MAC layers),
`a<bits>` (the activations the layer writes) and `acc<bits>` (its accumulator), e.g. `w4a8`.
Resolution is field by field: name globs beat op types, op types beat `default`, `default`
beats the hardware's `weight_bits` / `activation_bits` / `accumulator_bits`; among rules of
the same kind the later one wins. Every layer's bits are checked against the hardware.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ndpsim.errors import ConfigError
from ndpsim.files import SUFFIXES, read_mapping


class HardwareBits(Protocol):
    """What the rules need of a hardware description (config.HardwareConfig has it): this
    module sits beside the config, which checks its own `precision:` section with it."""

    name: str
    weight_bits: int
    activation_bits: int
    accumulator_bits: int
    supported_weight_bits: tuple[int, ...]
    supported_activation_bits: tuple[int, ...]

    @property
    def cell_columns(self) -> int: ...

    def outputs_per_pass(self, weight_bits: int) -> int: ...


_BITS = re.compile(r"^(?:w(?P<w>\d+))?(?:a(?P<a>\d+))?(?:acc(?P<acc>\d+))?$")
# the op types of the graph's input and output rows (the lowering adds every supported op)
IO_TYPES = frozenset({"Input", "Output"})
ACC_RANGE = (16, 48)  # HardwareConfig.accumulator_bits' bounds


@dataclass(frozen=True)
class Bits:
    """A (partial) precision: None fields are left to less specific rules."""

    w: int | None = None
    a: int | None = None
    acc: int | None = None

    def over(self, base: Bits) -> Bits:
        """These bits where set, `base`'s elsewhere."""
        return Bits(
            self.w if self.w is not None else base.w,
            self.a if self.a is not None else base.a,
            self.acc if self.acc is not None else base.acc,
        )

    def text(self) -> str:
        parts = [f"{k}{v}" for k, v in (("w", self.w), ("a", self.a), ("acc", self.acc)) if v]
        return "".join(parts)


@dataclass(frozen=True)
class Rule:
    pattern: str
    bits: Bits
    source: str  # how the user wrote it, for error messages

    def kind(self, op_types: frozenset[str]) -> int:
        """0 default, 1 op type (one of `op_types`), 2 layer-name glob (more specific)."""
        if self.pattern == "default":
            return 0
        return 1 if self.pattern in op_types | IO_TYPES else 2


def parse_bits(text: str, where: str) -> Bits:
    m = _BITS.match(text.strip().lower())
    if not text.strip() or m is None:
        raise ConfigError(
            f"{where}: cannot read precision {text!r} (expected e.g. w4a8, w4, a16, w8a8acc24)"
        )
    return Bits(*(int(m[k]) if m[k] is not None else None for k in ("w", "a", "acc")))


def parse_rules(items: Mapping[str, str] | Iterable[str] | None, origin: str) -> list[Rule]:
    """Rules from a mapping {pattern: bits} (config files) or `pattern=bits` strings (CLI)."""
    if not items:
        return []
    pairs: list[tuple[str, str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v), f"{origin} {k}: {v}") for k, v in items.items()]
    else:
        for item in items:
            pattern, sep, bits = str(item).rpartition("=")
            if not sep or not pattern.strip():
                raise ConfigError(
                    f"{origin} expects PATTERN=BITS (e.g. 'conv*=w4a8'), got {item!r}"
                )
            pairs.append((pattern, bits, f"{origin} {item!r}"))
    return [Rule(p.strip(), parse_bits(b, src), src) for p, b, src in pairs]


def check_precision_rules(items: Mapping[str, str], hw: HardwareBits) -> None:
    """Config-time check of a `precision:` section: syntax, and explicit bits the hardware
    supports (the per-layer check happens when a model is lowered)."""
    for rule in parse_rules(items, "precision"):
        _check_bits(rule.bits, hw, rule.source, weights=True)


def _check_bits(b: Bits, hw: HardwareBits, what: str, weights: bool) -> None:
    if weights and b.w is not None:
        if b.w not in hw.supported_weight_bits:
            raise ConfigError(
                f"{what}: {b.w}-bit weights are not supported by {hw.name!r} "
                f"(supported_weight_bits: {', '.join(map(str, hw.supported_weight_bits))})"
            )
        if hw.outputs_per_pass(b.w) < 1:
            raise ConfigError(
                f"{what}: a {b.w}-bit weight is wider than a macro's "
                f"{hw.cell_columns} bit-cell columns"
            )
    if b.a is not None and b.a not in hw.supported_activation_bits:
        raise ConfigError(
            f"{what}: {b.a}-bit activations are not supported by {hw.name!r} "
            f"(supported_activation_bits: {', '.join(map(str, hw.supported_activation_bits))})"
        )
    if b.acc is not None and not ACC_RANGE[0] <= b.acc <= ACC_RANGE[1]:
        raise ConfigError(f"{what}: accumulator bits must be {ACC_RANGE[0]}..{ACC_RANGE[1]}")


@dataclass(frozen=True)
class LayerRef:
    """What a rule can match: a report row's name, op type and kind (mac/vector/io)."""

    name: str
    op_type: str
    kind: str


def resolve(
    layers: list[LayerRef], rules: list[Rule], hw: HardwareBits, op_types: frozenset[str]
) -> dict[str, Bits]:
    """Full bits of every layer (w only meaningful for MAC layers), checked against `hw`;
    `op_types` are the op types a rule may name (the lowering's op registry). A name glob
    that matches no layer is an error (a typo would otherwise do nothing)."""
    base = Bits(hw.weight_bits, hw.activation_bits, hw.accumulator_bits)
    kinds = [r.kind(op_types) for r in rules]
    for rule, kind in zip(rules, kinds, strict=True):
        if kind == 2 and not any(fnmatch.fnmatchcase(x.name, rule.pattern) for x in layers):
            names = ", ".join(x.name for x in layers if x.kind in ("mac", "vector", "io"))
            raise ConfigError(f"{rule.source}: matches no layer (layers: {names[:400]})")
    # stable: later rules of a kind win
    ordered = sorted(zip(kinds, rules, strict=True), key=lambda kr: kr[0])
    out: dict[str, Bits] = {}
    for layer in layers:
        bits, why = base, f"hardware {hw.name!r} defaults"
        for kind, rule in ordered:
            hit = (
                kind == 0
                or (kind == 1 and rule.pattern == layer.op_type)
                or (kind == 2 and fnmatch.fnmatchcase(layer.name, rule.pattern))
            )
            if hit:
                bits, why = rule.bits.over(bits), rule.source
        _check_bits(bits, hw, f"layer {layer.name!r} ({layer.op_type}, {why})", layer.kind == "mac")
        out[layer.name] = bits
    return out


def expand_rule_args(items: list[str] | None) -> list[str]:
    """`--precision` values: `PATTERN=BITS`, or a .yaml/.toml/.json file holding a
    `precision:` mapping (as `ndpsim precision --save` writes) whose rules are taken in order."""
    out: list[str] = []
    for item in items or []:
        if item.lower().endswith(SUFFIXES) and "=" not in item:
            data = read_mapping(Path(item), "precision spec")
            rules = data.get("precision", data)
            if not isinstance(rules, dict):
                raise ConfigError(f"{item}: expected a `precision:` mapping of PATTERN: BITS")
            out += [f"{k}={v}" for k, v in rules.items()]
        else:
            out.append(item)
    return out


def rules_text(rules: Mapping[str, str]) -> str:
    """A precision spec file (YAML, `precision:` section) that `--config` / `--precision-file`
    read back."""
    lines = ["precision:"]
    lines += [f'  "{k}": {v}' for k, v in rules.items()]
    return "\n".join(lines) + "\n"
