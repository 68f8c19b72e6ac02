"""The ``dse`` command line.

Each sub-command lives in ``dse/commands/<name>.py``; a missing module (a command not built
yet in this checkout) is simply not offered. User errors (``DseError``) print one line on
stderr and exit 2; nothing else is caught, so a bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dse import __version__
from dse.commands import COMMANDS
from dse.errors import DseError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dse",
        description="Design-space explorer for ternary-weight LLMs (BitNet b1.58) on FPGAs.",
    )
    parser.add_argument("--version", action="version", version=f"dse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"dse.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dse.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser




def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except DseError as exc:
        print(f"dse: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dse: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
