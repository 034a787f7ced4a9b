"""The instruction set, derived from isa/isa.toml (the one definition of it).

Everything here is computed from that file at import: the `Opcode`, `Unit`, `Counter`,
`TimingClass`, `Act`, `EltwiseKind`, `PoolKind` and `FuncKind` enums, the numpy instruction
dtype `INSTR_DTYPE`, descriptor columns, what each opcode writes, the assembler and
disassembler. `python -m ndpsim.isa_gen` regenerates what is derived as files
(ndpsim/isa_gen.py): docs/isa.md, the numba kernels' constants (ndpsim/sim/constants.py)
and the digest stamp in every kernel module (numba's cache does not see changes in other
files: the stamp does). Importing this module imports numpy and nothing else of ndpsim.
"""

from __future__ import annotations

import hashlib
import tomllib
from enum import IntEnum
from importlib import resources

import numpy as np

_ISA_BYTES = resources.files("ndpsim").joinpath("_data/isa.toml").read_bytes()
SPEC = tomllib.loads(_ISA_BYTES.decode())
ISA_DIGEST = hashlib.sha256(_ISA_BYTES).hexdigest()[:16]

Unit = IntEnum("Unit", [(u["name"], i) for i, u in enumerate(SPEC["units"])])
Counter = IntEnum("Counter", [(c["name"], i) for i, c in enumerate(SPEC["counters"])])
Opcode = IntEnum("Opcode", [(o["name"], o["code"]) for o in SPEC["opcodes"]])
TimingClass = IntEnum("TimingClass", [(t["name"], i) for i, t in enumerate(SPEC["timing_classes"])])
Act = IntEnum("Act", [(n, i) for i, n in enumerate(SPEC["enums"]["act"])])
EltwiseKind = IntEnum("EltwiseKind", [(n, i) for i, n in enumerate(SPEC["enums"]["eltwise_kind"])])
PoolKind = IntEnum("PoolKind", [(n, i) for i, n in enumerate(SPEC["enums"]["pool_kind"])])
FuncKind = IntEnum("FuncKind", [(n, i) for i, n in enumerate(SPEC["enums"]["func_kind"])])

N_COUNTERS = len(Counter)
INSTR_DTYPE = np.dtype([(f["name"], f["type"]) for f in SPEC["fields"]])
OPCODE_UNIT: dict[Opcode, Unit] = {Opcode[o["name"]]: Unit[o["unit"]] for o in SPEC["opcodes"]}
OPCODE_COUNTERS: dict[Opcode, tuple[Counter, ...]] = {
    Opcode[o["name"]]: tuple(Counter[c] for c in o["counters"]) for o in SPEC["opcodes"]
}
OPCODE_TIMING: dict[Opcode, TimingClass] = {
    Opcode[o["name"]]: TimingClass[o["timing"]] for o in SPEC["opcodes"]
}
# What an opcode's kernel stores into; an opcode in neither set has no arithmetic (timing
# and traffic only). The arena writers end a run of MVMs that may reuse a gathered block.
WRITES_ARENA = frozenset(Opcode[o["name"]] for o in SPEC["opcodes"] if o["writes_arena"])
WRITES_ACCUMULATOR = frozenset(
    Opcode[o["name"]] for o in SPEC["opcodes"] if o["writes_accumulator"]
)
EXECUTES = WRITES_ARENA | WRITES_ACCUMULATOR  # opcodes with a kernel and reference semantics
# Descriptor kind -> {field name: column}. The descriptor table has DESC_WIDTH columns.
DESC_FIELDS: dict[str, dict[str, int]] = {
    kind: {name: i for i, name in enumerate(names)} for kind, names in SPEC["descriptors"].items()
}
DESC_WIDTH = max(len(f) for f in DESC_FIELDS.values())
_DEFAULTS = {"wait0": -1, "wait1": -1, "wait2": -1, "signal": -1}


def empty_program(n: int) -> np.ndarray:
    """`n` instructions, every field at its default (0, and -1 for tokens)."""
    instrs = np.zeros(n, dtype=INSTR_DTYPE)
    for name, value in _DEFAULTS.items():
        instrs[name] = value
    return instrs


def assemble(text: str) -> np.ndarray:
    """Assemble lines of `OPCODE field=value ...` (as `disassemble` prints) into records.
    Blank lines and `#` comments are ignored; an unknown opcode or field is an error."""
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    instrs = empty_program(len(lines))
    for i, line in enumerate(lines):
        head, *pairs = line.split()
        try:
            instrs[i]["op"] = Opcode[head.upper()]
        except KeyError:
            raise ValueError(f"line {i + 1}: unknown opcode {head!r}") from None
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in INSTR_DTYPE.names or key == "op":
                raise ValueError(f"line {i + 1}: bad field {pair!r}")
            instrs[i][key] = int(value)
    return instrs


def disassemble(instrs: np.ndarray) -> str:
    """One line per instruction: the opcode, then every field that differs from its default."""
    out = []
    for ins in instrs:
        parts = [Opcode(int(ins["op"])).name]
        for name in INSTR_DTYPE.names[1:]:
            value = int(ins[name])
            if value != _DEFAULTS.get(name, 0):
                parts.append(f"{name}={value}")
        out.append(" ".join(parts))
    return "\n".join(out)


def render_table() -> str:
    """The opcode table as plain text, for `ndpsim isa`."""
    rows = [f"ndpsim ISA v{SPEC['meta']['version']} ({ISA_DIGEST})", ""]
    for o in SPEC["opcodes"]:
        rows.append(f"{o['code']:>3}  {o['name']:<8} {o['unit']:<7} {o['semantics']}")
    rows += ["", "fields: " + ", ".join(f"{n}:{INSTR_DTYPE[n].str[1:]}" for n in INSTR_DTYPE.names)]
    return "\n".join(rows)


if __name__ == "__main__":
    print(render_table())
