"""The command line: each command imports only what it runs."""

from __future__ import annotations

import ast
import subprocess
import sys

from dse.cli import build_parser
from dse.commands import COMMAND_OF, COMMANDS


def test_top_level_help_lists_what_the_modules_register():
    """``dse --help`` lists every command from a table, importing no command module: the
    table says what each module registers."""
    full = build_parser()
    sub = next(a for a in full._actions if a.dest == "command")
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert registered == dict(COMMAND_OF[name] for name in COMMANDS)


def test_a_command_imports_only_its_module():
    code = ("import sys\nfrom dse.cli import main\n"
            "try:\n    main(['boards', 'list'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('dse.commands.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    loaded = ast.literal_eval(out)  # a list of module names
    assert "dse.commands.boards" in loaded
    for name in ("profile", "calibrate", "explore", "matrix", "weights"):
        assert f"dse.commands.{name}" not in loaded, name


def test_explore_without_report_imports_no_plots_nor_log_reader():
    """``dse explore --no-report`` (no --reference) loads neither the plots module nor the
    measurement-log reader: start-up is part of what a person waits for (issue 28)."""
    code = ("import sys\nfrom dse.cli import main\n"
            "main(['explore', '--board', 'kv260', '--no-report', '--top', '1'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('dse.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    loaded = ast.literal_eval(out)
    assert "dse.search.explore" in loaded
    for name in ("dse.report.plots", "dse.model.measurement_log", "dse.search.reference"):
        assert name not in loaded, name


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> int:
        self.text.append(s)
        return len(s)

    def flush(self) -> None:
        pass


def test_progress_bar_only_on_a_terminal(monkeypatch):
    """The bar is drawn on a terminal and nothing at all is built for a pipe (tqdm's own
    rule, without paying for a disabled bar)."""
    from dse.commands.progress import Progress

    for tty in (True, False):
        stream = _Stream(tty)
        monkeypatch.setattr(sys, "stderr", stream)
        with Progress("search", "design", delay_s=0) as update:
            update(3, 10)
        assert any("search" in s and "3/10" in s for s in stream.text) is tty, tty
