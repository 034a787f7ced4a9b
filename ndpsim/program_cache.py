"""An on-disk cache of lowered programs, so a repeat run of a model needs no ONNX import, no
passes and no lowering (onnx alone takes about half a second to import).

An entry is one pickled `Program` (which carries its graph after passes), keyed by the
model's sha256, everything else the program depends on (input shapes and values, If
branches, the hardware's structural fields, precision rules: the caller's key parts) and
the code: ndpsim's version and a hash of every source file of the package, so no entry is
trusted across versions or edits. Where:

- `$NDPSIM_CACHE_DIR`, else `$XDG_CACHE_HOME/ndpsim/programs`, else
  `~/.cache/ndpsim/programs`; `NDPSIM_CACHE=0` turns the cache off;
- at most `NDPSIM_CACHE_MAX_MB` (default 512) MB: the least recently used entries go first.

Safe under concurrent processes: an entry is written to a temporary file and renamed into
place (readers see a whole entry or none). An entry that cannot be read (truncated, from
another Python, a stale class) is a miss and is rewritten; it never fails a run.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

DEFAULT_MAX_MB = 512
_SUFFIX = ".program"


def cache_dir() -> Path | None:
    """The cache folder, or None when NDPSIM_CACHE turns the cache off."""
    if os.environ.get("NDPSIM_CACHE", "1").strip().lower() in ("0", "off", "no", "false"):
        return None
    if os.environ.get("NDPSIM_CACHE_DIR"):
        return Path(os.environ["NDPSIM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ndpsim" / "programs"


@functools.cache
def code_digest() -> str:
    """ndpsim's version and a hash of the package's sources and data (a few milliseconds)."""
    import ndpsim

    root = Path(ndpsim.__file__).parent
    h = hashlib.sha256(ndpsim.__version__.encode())
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".toml", ".yaml", ".txt") and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


class ProgramCache:
    """Programs on disk under `directory` (default: `cache_dir()`), at most `max_bytes`."""

    def __init__(self, directory: Path, max_bytes: int | None = None):
        self.directory = Path(directory)
        if max_bytes is None:
            max_bytes = int(float(os.environ.get("NDPSIM_CACHE_MAX_MB", DEFAULT_MAX_MB)) * 2**20)
        self.max_bytes = max_bytes

    @classmethod
    def default(cls) -> ProgramCache | None:
        """The user's cache, or None when it is turned off."""
        directory = cache_dir()
        return None if directory is None else cls(directory)

    def key(self, *parts: Any) -> str:
        """The entry name of `parts` (reprs of plain values) under the current code."""
        return hashlib.sha256(repr((code_digest(), parts)).encode()).hexdigest()

    def get(self, key: str) -> Any | None:
        """The value stored under `key`, or None (missing, unreadable or for another key)."""
        path = self.directory / (key + _SUFFIX)
        try:
            with path.open("rb") as f:
                stored_key, value = pickle.load(f)
            os.utime(path)  # recently used: evicted last
        except Exception:  # noqa: BLE001 - any unreadable entry is a miss, rewritten later
            return None
        return value if stored_key == key else None

    def put(self, key: str, value: Any) -> None:
        """Store `value` under `key` (atomically), then trim the cache to its size. A cache
        that cannot be written (read-only, full disk) is skipped: it only saves time."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    pickler = pickle.Pickler(f, protocol=pickle.HIGHEST_PROTOCOL)
                    # the IR's frozen mappings: rebuilt from a dict when read
                    pickler.dispatch_table = {MappingProxyType: _mapping_proxy}
                    pickler.dump((key, value))
                os.replace(tmp, self.directory / (key + _SUFFIX))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._trim()
        except (OSError, pickle.PicklingError):
            return

    def _trim(self) -> None:
        entries = []
        for path in self.directory.glob("*" + _SUFFIX):
            try:
                st = path.stat()
            except OSError:  # removed by another process meanwhile
                continue
            entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):  # least recently used first
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


def _mapping_proxy(mapping: MappingProxyType) -> tuple:
    return frozen_mapping, (dict(mapping),)


def frozen_mapping(items: dict) -> MappingProxyType:
    """A read-only mapping (what the IR freezes its dicts into), rebuilt when unpickled."""
    return MappingProxyType(items)
