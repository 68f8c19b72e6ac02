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
