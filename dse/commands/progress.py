"""Progress on stderr for work a person waits on (a search, a sweep, a simulation, a fit).

Not a sub-command. One bar for every command: it appears only once the work has taken a
second (a quick run prints nothing extra), only on a terminal (a pipe or a log file gets no
control characters), and never with ``--quiet``. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import sys


def add_quiet_option(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress on stderr (results and errors are still printed)."""
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (results and errors are still printed)")


class Progress:
    """A context manager yielding ``update(done, total)``; ``quiet`` shows nothing."""

    def __init__(self, desc: str, unit: str, total: int = 0, quiet: bool = False,
                 delay_s: float = 1.0) -> None:
        self.desc, self.unit, self.total = desc, unit, total
        self.quiet, self.delay_s = quiet, delay_s
        self.bar = None

    def __enter__(self):
        if self.quiet:
            return lambda done, total: None
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, delay=self.delay_s,
                        file=sys.stderr, leave=False, disable=None)

        def update(done: int, total: int) -> None:
            if self.bar.total != total:
                self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

        return update

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def note(text: str, quiet: bool = False) -> None:
    """One line on stderr about a long step that has no count (a build), unless quiet."""
    if not quiet:
        print(text, file=sys.stderr, flush=True)
