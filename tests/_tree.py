"""What a command may not change: the checkout's git status and the board library's bytes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_state() -> tuple[str, dict[str, str]]:
    """git status of the checkout and the sha256 of every file under boards/."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=ROOT, capture_output=True, text=True, check=False).stdout
    boards = {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted((ROOT / "boards").rglob("*")) if p.is_file()}
    return status, boards
