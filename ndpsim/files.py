"""The one reader of the project's YAML / TOML / JSON files (hardware configs, precision
specs, sweep specs): a mapping, or a one-line `ConfigError` naming the file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

from ndpsim.errors import ConfigError

SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def read_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """The file's top-level mapping; `what` names the kind of file in errors."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ConfigError(f"{what} {path}: use a .yaml, .toml or .json file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"cannot read {what} {path}: {why}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{what} {path} is not valid {path.suffix[1:]}: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping of field: value")
    return data
