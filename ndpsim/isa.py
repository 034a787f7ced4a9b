"""The instruction set, derived from isa/isa.toml (the one definition of it).

Everything here is computed from that file at import: the `Opcode`, `Unit`, `Counter`, `Act`,
`EltwiseKind` and `PoolKind` enums, the numpy instruction dtype `INSTR_DTYPE`, descriptor
column indices, the assembler and disassembler, and the text of docs/isa.md.
`python -m ndpsim.isa --write` regenerates docs/isa.md and the digest stamps in the numba
kernel modules (numba's cache does not see changes in other files: the stamp does).
"""

from __future__ import annotations

import hashlib
import tomllib
from enum import IntEnum
from importlib import resources
from pathlib import Path

import numpy as np

_ISA_BYTES = resources.files("ndpsim").joinpath("_data/isa.toml").read_bytes()
SPEC = tomllib.loads(_ISA_BYTES.decode())
ISA_DIGEST = hashlib.sha256(_ISA_BYTES).hexdigest()[:16]

Unit = IntEnum("Unit", [(u["name"], i) for i, u in enumerate(SPEC["units"])])
Counter = IntEnum("Counter", [(c["name"], i) for i, c in enumerate(SPEC["counters"])])
Opcode = IntEnum("Opcode", [(o["name"], o["code"]) for o in SPEC["opcodes"]])
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


def render_markdown() -> str:
    """docs/isa.md, generated from isa/isa.toml."""
    m = SPEC["meta"]
    lines = [
        "# ndpsim ISA",
        "",
        "<!-- generated from isa/isa.toml by `python -m ndpsim.isa --write`; do not edit -->",
        "",
        f"Version {m['version']}, digest `{ISA_DIGEST}`.",
        "",
        " ".join(m["summary"].split()),
        "",
        "## Units",
        "",
        "| unit | what |",
        "|---|---|",
        *[f"| {u['name']} | {u['doc']} |" for u in SPEC["units"]],
        "",
        "## Instruction record",
        "",
        f"One record is {INSTR_DTYPE.itemsize} bytes (numpy dtype, little-endian).",
        "",
        "| field | type | bits | meaning |",
        "|---|---|---:|---|",
        *[
            f"| {f['name']} | {f['type']} | {np.dtype(f['type']).itemsize * 8} | {f['doc']} |"
            for f in SPEC["fields"]
        ],
        "",
        "## Opcodes",
        "",
        "| code | opcode | unit | semantics | counters bumped |",
        "|---:|---|---|---|---|",
        *[
            f"| {o['code']} | {o['name']} | {o['unit']} | {o['semantics']} | "
            f"{', '.join(o['counters'] + ['INSTRUCTIONS'])} |"
            for o in SPEC["opcodes"]
        ],
        "",
        "## Dependency tokens",
        "",
        "Every instruction may wait on up to three tokens (`wait0..2`) and signal one (`signal`).",
        "A token is ready at the latest finish time of the instructions that signal it and come",
        "before the waiter in program order. Instructions are dispatched in program order to their",
        "unit's queue; each unit runs its queue in order.",
        "",
        "## Counters",
        "",
        "| counter | meaning |",
        "|---|---|",
        *[f"| {c['name']} | {c['doc']} |" for c in SPEC["counters"]],
        "",
        "## Descriptors",
        "",
        "Descriptor tables are int64; float-valued fields hold an index into the program's",
        "float32 parameter array.",
        "",
        *[f"- **{kind}**: {', '.join(names)}" for kind, names in SPEC["descriptors"].items()],
        "",
        "## Enumerations",
        "",
        *[f"- **{kind}**: {', '.join(names)}" for kind, names in SPEC["enums"].items()],
        "",
    ]
    return "\n".join(lines)


def render_table() -> str:
    """The opcode table as plain text, for `ndpsim isa`."""
    rows = [f"ndpsim ISA v{SPEC['meta']['version']} ({ISA_DIGEST})", ""]
    for o in SPEC["opcodes"]:
        rows.append(f"{o['code']:>3}  {o['name']:<8} {o['unit']:<7} {o['semantics']}")
    rows += ["", "fields: " + ", ".join(f"{n}:{INSTR_DTYPE[n].str[1:]}" for n in INSTR_DTYPE.names)]
    return "\n".join(rows)


def kernels_digest(root: Path) -> str:
    """Hash of the kernel modules core.py calls into (all of KERNEL_MODULES but core.py):
    numba's cache of core.py's kernels does not notice when those files change, so core.py
    carries this as KERNELS_DIGEST and changes with them."""
    h = hashlib.sha256()
    for path in KERNEL_MODULES[1:]:
        h.update((root / path).read_bytes())
    return h.hexdigest()[:16]


def _write() -> None:
    """Regenerate docs/isa.md and the digest stamps of the numba kernel modules."""
    import re

    root = Path(__file__).resolve().parents[1]
    (root / "docs" / "isa.md").write_text(render_markdown())
    for path in KERNEL_MODULES:
        file = root / path
        text = file.read_text()
        file.write_text(re.sub(r'ISA_DIGEST = "[0-9a-f]*"', f'ISA_DIGEST = "{ISA_DIGEST}"', text))
    core = root / KERNEL_MODULES[0]  # last: the other modules' stamps are part of its digest
    stamp = f'KERNELS_DIGEST = "{kernels_digest(root)}"'
    core.write_text(re.sub(r'KERNELS_DIGEST = "[0-9a-f]*"', stamp, core.read_text()))


# Modules whose numba kernels compile the ISA's constants in; each carries ISA_DIGEST, and the
# first (core.py, which calls the others) also KERNELS_DIGEST.
KERNEL_MODULES = (
    "ndpsim/sim/core.py",
    "ndpsim/sim/kernels_common.py",
    "ndpsim/sim/kernels_mac.py",
    "ndpsim/sim/kernels_ort.py",
    "ndpsim/sim/kernels_rows.py",
    "ndpsim/sim/kernels_vector.py",
    "ndpsim/sim/schedule.py",
)

if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        _write()
    else:
        print(render_table())
