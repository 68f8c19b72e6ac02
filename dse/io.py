"""File output at the edge: atomic writes, so no reader ever sees half a report."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dse.errors import DseError


def check_parent(path: str | Path, what: str = "output") -> Path:
    """Fail early (before any work) when the folder to write into does not exist."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise DseError(f"{p}: {what} folder {parent} does not exist")
    return p


def atomic_write_bytes(path: str | Path, data: bytes, what: str = "output") -> Path:
    """Write to a temporary file beside ``path``, then rename it over ``path``."""
    p = check_parent(path, what)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | Path, text: str, what: str = "output") -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), what)


def read_text(path: str | Path, what: str) -> str:
    """Read a UTF-8 input file, or raise the one-line error every loader gives.

    ``what`` names the kind of file (``board``, ``profile``, ``plan`` ...):
    ``FILE: no such board file``, ``FILE: cannot read board file (Is a directory)``.
    """
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DseError(f"{p}: no such {what} file") from None
    except UnicodeDecodeError:
        raise DseError(f"{p}: cannot read {what} file (not UTF-8 text)") from None
    except OSError as exc:
        raise DseError(f"{p}: cannot read {what} file ({exc.strerror or exc})") from None


def read_yaml(path: str | Path, what: str) -> object:
    """Read and parse a YAML input file (safe loader only), with the one-line error."""
    import yaml

    p = Path(path)
    text = read_text(p, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        raise DseError(f"{p}: {where}: expected valid YAML "
                       f"({getattr(exc, 'problem', exc)})") from None
