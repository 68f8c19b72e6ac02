"""``dse import REPORT.md -o PROFILE.json``: turn a seed-format Markdown report into a profile."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from dse.errors import DseError
from dse.profile.format import Profile, profile_to_json
from dse.profile.seed_import import import_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import",
                       help="read a profile report (Markdown, zh or en) into a profile JSON")
    p.add_argument("report", type=Path, help="report in the seed's Markdown format")
    p.add_argument("-o", "--output", type=Path, required=True, help="profile JSON to write")
    p.set_defaults(run=run)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``, so a
    reader never sees half a profile and a failed write leaves the old file intact."""
    folder = path.parent
    if not folder.is_dir():
        raise DseError(f"{path}: output folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DseError(f"{path}: cannot write profile ({exc.strerror})") from None


def _mode_for(path: Path) -> int:
    """Keep an existing file's mode; a new file gets the usual 0o666 minus the umask (mkstemp
    alone would leave it private, 0o600)."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def summary(profile: Profile) -> str:
    """One line: what was imported."""
    lin = profile.linears
    flagged = [m.name for m in profile.modules if m.outlier]
    out = f"{len(flagged)} outlier(s) flagged" + (f" ({', '.join(flagged)})" if flagged else "")
    return (f"{len(lin)} Linear layers, Linear total {sum(m.total_ms for m in lin):.2f} ms, "
            f"{len(profile.tokens)} tokens, {out}")


def run(args: argparse.Namespace) -> int:
    profile = import_report(args.report)
    write_atomic(args.output, profile_to_json(profile) + "\n")
    print(f"{args.report} -> {args.output}: {summary(profile)}")
    return 0
