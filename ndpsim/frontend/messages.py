"""Helpers that keep error messages on one readable line, whatever a hostile file holds."""

from __future__ import annotations

_MAX_NAME_CHARS = 80
_MAX_DETAIL_CHARS = 200


def quote(name: object) -> str:
    """`name` in single quotes, control and non-ASCII characters escaped, long names cut:
    names come from the file and may hold newlines or megabytes of text."""
    text = str(name)
    if len(text) > _MAX_NAME_CHARS:
        text = text[: _MAX_NAME_CHARS - 3] + "..."
    return "'" + text.encode("unicode_escape").decode("ascii") + "'"


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error (onnx errors span many lines), trimmed."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    if len(line) > _MAX_DETAIL_CHARS:
        line = line[: _MAX_DETAIL_CHARS - 3] + "..."
    return line.encode("ascii", "backslashreplace").decode("ascii")
