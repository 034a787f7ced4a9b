"""A copy of the sources to edit in a test (tests/test_new_instruction.py and
tests/test_new_function.py perform the documented recipes there) and the edits they make."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_sources(dest: Path, parts: tuple[str, ...] = ("ndpsim", "isa", "docs", "tests")) -> None:
    for part in parts:
        skip = shutil.ignore_patterns("__pycache__", "*.png", "*.json")
        shutil.copytree(ROOT / part, dest / part, symlinks=True, ignore=skip)


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def insert(path: Path, at: str, text: str, after: bool = False) -> None:
    """`text` before (or after) the one occurrence of `at` in `path`."""
    source = path.read_text()
    assert source.count(at) == 1, at
    path.write_text(source.replace(at, at + text if after else text + at))


def changed(a: Path, b: Path) -> list[str]:
    """Files under `a` whose copy under `b` differs (the copy's own new files aside)."""
    out = []
    for f in sorted(a.rglob("*")):
        if f.is_file() and not f.is_symlink() and "__pycache__" not in f.parts:
            other = b / f.relative_to(a)
            if other.exists() and other.read_bytes() != f.read_bytes():
                out.append(str(f.relative_to(a)))
    return out
