"""User-facing errors.

Every mistake a user can make (a bad file, a bad field, a bad option) is raised as a
``DseError`` whose message is one line naming the file, the field and what was expected.
The CLI prints it and exits with code 2; anything else escaping is a bug in dse.
"""

from __future__ import annotations


class DseError(Exception):
    """A user error: printed as one line, exit code 2, never a traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def located(path: object, field: str, expected: str, got: object | None = None) -> DseError:
    """Build the standard one-line error: ``FILE: FIELD: expected ..., got ...``."""
    msg = f"{path}: {field}: expected {expected}" if field else f"{path}: expected {expected}"
    if got is not None:
        shown = repr(got)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg += f", got {shown}"
    return DseError(msg)
