"""User-facing errors.

Every mistake a user can make (a bad file, a bad field, a bad option) is raised as a
``DseError`` whose message is one line naming the file, the field and what was expected.
The CLI prints it and exits with code 2; anything else escaping is a bug in dse.
"""

from __future__ import annotations

import re

#: Where each field of the YAML files read so far is: file -> {dotted field path: line}.
#: ``dse.io.parse_yaml`` fills it; ``located`` reads it, so every loader's error names the
#: line without the loaders passing lines around. Only the most recent files are kept.
_LINES: dict[str, dict[str, int]] = {}
_LINES_KEPT = 64


def register_lines(path: object, lines: dict[str, int]) -> None:
    """Remember where each field of the YAML file ``path`` is (its dotted path -> line)."""
    key = str(path)
    _LINES.pop(key, None)
    _LINES[key] = lines
    while len(_LINES) > _LINES_KEPT:
        _LINES.pop(next(iter(_LINES)))


def line_of(path: object, field: str) -> int | None:
    """The line of ``field`` (``engine.clock_mhz``, ``offload[0]``, ``sources.0.fields``) in
    the YAML file ``path``, or of its nearest enclosing mapping; None if not known."""
    lines = _LINES.get(str(path))
    if not lines or not field:
        return None
    parts = [p for p in re.sub(r"\[(\d+)\]", r".\1", field).split(".") if p]
    while parts:
        hit = lines.get(".".join(parts))
        if hit is not None:
            return hit
        parts.pop()
    return None


class DseError(Exception):
    """A user error: printed as one line, exit code 2, never a traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def located(path: object, field: str, expected: str, got: object | None = None) -> DseError:
    """Build the standard one-line error: ``FILE: FIELD: expected ..., got ...``, with
    ``line N:`` after the file when it is a YAML file whose field is known."""
    line = line_of(path, field)
    where = f"{path}: line {line}" if line is not None else f"{path}"
    msg = f"{where}: {field}: expected {expected}" if field else f"{where}: expected {expected}"
    if got is not None:
        shown = repr(got)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg += f", got {shown}"
    return DseError(msg)
