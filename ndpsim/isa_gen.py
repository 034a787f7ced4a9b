"""The files derived from isa/isa.toml, and the digest stamps of the numba kernel modules.

`python -m ndpsim.isa_gen` calls `write_generated()`, which rewrites (only where the text
changes, so numba's caches of untouched files stay valid):
- docs/isa.md (`render_markdown`);
- ndpsim/sim/constants.py (`render_constants`): every integer the kernels compile in, as
  literals, so a kernel module imports no ISA machinery and numba sees plain ints;
- `KERNELS_DIGEST = "..."` in every module of `KERNEL_MODULES`: one hash of isa.toml,
  constants.py and all those modules' sources. numba's cache of a kernel is keyed on the
  kernel's own file alone; the stamp changes that file whenever anything it compiles in
  (constants, or kernels of the other modules) changes. tests/test_isa.py fails on drift.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from ndpsim.isa import _ISA_BYTES, INSTR_DTYPE, ISA_DIGEST, SPEC

ROOT = Path(__file__).resolve().parents[1]
CONSTANTS_PATH = "ndpsim/sim/constants.py"
# Modules with numba kernels: each carries KERNELS_DIGEST. The unit modules
# (kernels_<unit>.py) hold the entry points the core calls from Python; the others, helpers.
KERNEL_MODULES = (
    "ndpsim/sim/schedule.py",
    "ndpsim/sim/kernels_macro.py",
    "ndpsim/sim/kernels_vector.py",
    "ndpsim/sim/kernels_mac.py",
    "ndpsim/sim/kernels_rows.py",
    "ndpsim/sim/kernels_ort.py",
    "ndpsim/sim/kernels_common.py",
)
_STAMP = re.compile(r'KERNELS_DIGEST = "[0-9a-f]*"')


def _names(prefix: str, names: list[str]) -> list[tuple[str, int]]:
    return [(f"{prefix}{n.upper()}", i) for i, n in enumerate(names)]


def constant_table() -> list[tuple[str, list[tuple[str, object]]]]:
    """(section comment, [(name, value)]) of every constant the kernels compile in."""
    ops = SPEC["opcodes"]
    timing = [t["name"] for t in SPEC["timing_classes"]]
    by_code = {o["code"]: timing.index(o["timing"]) for o in ops}
    op_timing = tuple(by_code.get(c, -1) for c in range(max(by_code) + 1))
    sections = [
        ("opcodes", [(f"OP_{o['name']}", o["code"]) for o in ops]),
        ("units", _names("U_", [u["name"] for u in SPEC["units"]])),
        ("timing classes, and each opcode's (indexed by code; -1: no such opcode)",
         [*_names("T_", timing), ("OP_TIMING", op_timing)]),
        ("counters (columns of a report row's counters)",
         [*_names("C_", [c["name"] for c in SPEC["counters"]]),
          ("N_COUNTERS", len(SPEC["counters"]))]),
    ]  # fmt: skip
    for kind, values in SPEC["enums"].items():
        sections.append((f"enum {kind}", _names(f"{kind.upper()}_", values)))
    for kind, fields in SPEC["descriptors"].items():
        sections.append((f"{kind} descriptor columns", _names(f"{kind.upper()}_", fields)))
    width = max(len(f) for f in SPEC["descriptors"].values())
    sections.append(("descriptor table width", [("DESC_WIDTH", width)]))
    seen: set[str] = set()
    for _, pairs in sections:
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"isa.toml: two constants would be named {name}")
            seen.add(name)
    return sections


def render_constants() -> str:
    """ndpsim/sim/constants.py."""
    lines = [
        '"""Integers the numba kernels compile in. Generated from isa/isa.toml by',
        "`python -m ndpsim.isa_gen`: do not edit (tests/test_isa.py fails on drift).",
        '"""',
        "",
        "# ruff: noqa: E501",
    ]
    for title, pairs in constant_table():
        lines += ["", f"# {title}"]
        lines += [f"{name} = {value!r}" for name, value in pairs]
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """docs/isa.md, generated from isa/isa.toml."""
    m = SPEC["meta"]

    def writes(o: dict) -> str:
        return ", ".join(w for w in ("arena", "accumulator") if o[f"writes_{w}"]) or "-"

    lines = [
        "# ndpsim ISA",
        "",
        "<!-- generated from isa/isa.toml by `python -m ndpsim.isa_gen`; do not edit -->",
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
        "| code | opcode | unit | timing | writes | semantics | counters bumped |",
        "|---:|---|---|---|---|---|---|",
        *[
            f"| {o['code']} | {o['name']} | {o['unit']} | {o['timing']} | {writes(o)} | "
            f"{o['semantics']} | {', '.join(o['counters'] + ['INSTRUCTIONS'])} |"
            for o in SPEC["opcodes"]
        ],
        "",
        "## Timing classes",
        "",
        "The duration equation an opcode follows (docs/machine_model.md).",
        "",
        "| class | cycles |",
        "|---|---|",
        *[f"| {t['name']} | {t['doc']} |" for t in SPEC["timing_classes"]],
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


def kernels_digest(root: Path = ROOT, constants: str | None = None) -> str:
    """Hash of isa.toml, constants.py (`constants`: its text, default the file's) and every
    kernel module's source with its own stamp blanked: the stamp every kernel module carries."""
    h = hashlib.sha256(_ISA_BYTES)
    text = constants if constants is not None else (root / CONSTANTS_PATH).read_text()
    h.update(text.encode())
    for path in KERNEL_MODULES:
        h.update(_STAMP.sub('KERNELS_DIGEST = ""', (root / path).read_text()).encode())
    return h.hexdigest()[:16]


def write_generated(root: Path = ROOT) -> list[str]:
    """Rewrite docs/isa.md, constants.py and the kernel modules' stamps where they changed;
    returns the paths written."""
    constants = render_constants()
    stamp = f'KERNELS_DIGEST = "{kernels_digest(root, constants)}"'
    wanted = {"docs/isa.md": render_markdown(), CONSTANTS_PATH: constants}
    for path in KERNEL_MODULES:
        text = (root / path).read_text()
        if not _STAMP.search(text):
            raise ValueError(f"{path}: no KERNELS_DIGEST line to stamp")
        wanted[path] = _STAMP.sub(stamp, text)
    written = []
    for path, text in wanted.items():
        file = root / path
        if not file.exists() or file.read_text() != text:
            file.write_text(text)
            written.append(path)
    return written


if __name__ == "__main__":
    for written in write_generated():
        print(f"wrote {written}")
