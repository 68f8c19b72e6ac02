"""Every command printed in the README, the examples and the plan files' comments runs as
written (from a scratch folder that sees the repository's boards/ and examples/), exits 0, and
writes nothing into the repository."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from dse.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: Where printed commands live: Markdown code blocks and ``#   dse ...`` comments.
DOCS = ("README.md", "examples/README.md", "docs/measurement-log.md")
COMMENTED = ("examples/**/*.yaml", "boards/*.yaml", "overlays/*.yaml")


def _blocks(text: str) -> list[str]:
    """Lines of the bash code blocks of a Markdown text, continuation lines joined."""
    out: list[str] = []
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S):
        out += block.replace("\\\n", " ").splitlines()
    return out


def _commented(text: str) -> list[str]:
    """Commands in a YAML file's comments: indented after the ``#`` (``#   dse ...``, prose
    is not), continuation lines joined."""
    out: list[str] = []
    for ln in text.splitlines():
        m = re.match(r"#\s{2,}(\S.*)$", ln)
        if m and out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1] + " " + m.group(1)
        elif m:
            out.append(m.group(1))
    return out


def printed_commands() -> list[tuple[str, str]]:
    """(where, command) of every ``dse`` command printed in the docs and the files' comments;
    ``a && dse b`` yields ``dse b`` (set-up steps before it are the shell's, not dse's)."""
    found: list[tuple[str, str]] = []
    sources = [(ROOT / d, _blocks) for d in DOCS]
    sources += [(p, _commented) for g in COMMENTED for p in sorted(ROOT.glob(g))]
    for path, lines_of in sources:
        if not path.is_file():
            continue
        for line in lines_of(path.read_text(encoding="utf-8")):
            for part in line.split("&&"):
                cmd = part.split("  #", 1)[0].strip()
                if cmd.startswith("dse "):
                    found.append((str(path.relative_to(ROOT)), cmd))
    return found


COMMANDS = printed_commands()


def test_the_docs_print_commands():
    wheres = {w for w, _ in COMMANDS}
    assert {"README.md", "examples/README.md", "examples/plans/bitnet-kv260.yaml"} <= wheres
    assert ("README.md", "dse explore --board boards/zcu104.yaml") in COMMANDS


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder seeing the repository's inputs, where the commands' outputs land; one for
    all, so a printed sequence (explore, calibrate, explore) runs as a reader would."""
    d = tmp_path_factory.mktemp("examples")
    for name in ("boards", "examples", "overlays"):
        (d / name).symlink_to(ROOT / name, target_is_directory=True)
    return d


def _tracked_state() -> dict[str, float]:
    """Every file of the repository's top level and its tracked input folders (a command
    run from elsewhere must add, change or remove none)."""
    files = [p for p in ROOT.iterdir() if p.is_file()]
    files += [p for folder in ("boards", "examples", "dse", "reports", "overlays")
              for p in (ROOT / folder).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and "sim_build" not in p.parts]
    return {str(p): p.stat().st_mtime for p in files}


@pytest.mark.parametrize("where,command", COMMANDS, ids=[c for _, c in COMMANDS])
def test_printed_command_runs_as_written(where, command, scratch, monkeypatch, capsys):
    monkeypatch.chdir(scratch)
    before = _tracked_state()
    rc = main(shlex.split(command)[1:])
    _, err = capsys.readouterr()
    assert rc == 0, f"{where}: {command}: exit {rc}: {err.strip()[-400:]}"
    assert "Traceback" not in err
    assert _tracked_state() == before, f"{where}: {command} wrote into the repository"
