"""The command line: each command imports only what it runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from dse.cli import build_parser
from dse.commands import COMMAND_OF, COMMANDS

ROOT = Path(__file__).resolve().parents[1]


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
    for name in ("dse.report.plots", "dse.model.measurement_log", "dse.search.reference",
                 "dse.report.explore_md", "dse.commands.project"):
        assert name not in loaded, name


#: The third-party packages each timed run may import (bench/bench_startup.py's floors import
#: the same: numpy, yaml, pydantic with what its models load, and for explore scipy's MILP).
_PYDANTIC = {"pydantic", "pydantic_core", "annotated_types", "typing_extensions",
             "typing_inspection"}
_THIRD_PARTY = {
    "project": {"numpy", "yaml", *_PYDANTIC},
    "explore": {"numpy", "yaml", *_PYDANTIC, "scipy"},
}


@pytest.mark.parametrize("argv", [
    ["project", "--board", "kv260", "--plan", str(ROOT / "examples/plans/bitnet-kv260.yaml")],
    ["explore", "--board", "kv260", "--no-report", "--top", "1"],
], ids=["project", "explore"])
def test_third_party_imports_are_the_benchmarks_floor(argv):
    """What the commands import beyond the standard library is what bench_startup's floor
    imports: a new import (tqdm off a terminal, matplotlib, torch) would make the floor a
    lie and the command slower (issue 28)."""
    code = ("import sys, io, contextlib\nbase = set(sys.modules)\nfrom dse.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    main({argv!r})\n"
            "tops = {m.split('.')[0] for m in set(sys.modules) - base}\n"
            "print(sorted(t for t in tops if t not in sys.stdlib_module_names and "
            "not t.startswith('_') and t not in ('dse', 'cython_runtime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    got = set(ast.literal_eval(out))
    # scipy's own dependencies (loaded by scipy.optimize, in the floor too) are scipy's
    got -= {"charset_normalizer"} if "scipy" in got else set()
    assert got == _THIRD_PARTY[argv[0]]


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
