"""The ``dse`` command line.

Each sub-command lives in ``dse/commands/<name>.py``; a missing module (a command not built
yet in this checkout) is simply not offered.

Whatever happens, the user sees one line, never a traceback, for what is not a bug in dse:
a ``DseError`` (bad input: exit 2), an ``OSError`` (a disk full, a file that vanished: exit 2),
a document nested too deeply to parse (exit 2), Ctrl-C (exit 130), a closed pipe (exit 0).
The guard is the first instruction of ``main``, and everything else is imported inside it,
so an interrupt during the imports is caught as well. Anything else escaping is a bug and
keeps its traceback.
"""

from __future__ import annotations

import contextlib
import sys

#: Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
EXIT_USER_ERROR = 2


def build_parser(argv=None):
    """The argparse parser with every sub-command this checkout has.

    Only the module of the command ``argv`` names is imported (its full options); the others
    are listed by name and help alone (``dse.commands.COMMAND_OF``), so ``dse explore`` does
    not pay for importing ``dse profile`` or ``dse calibrate``. ``argv`` None: every module
    (the whole parser, for tests and documentation).

    A usage error (an unknown option, a bad option value) is a ``DseError`` like any other:
    one line, exit 2, instead of argparse's usage block.
    """
    import argparse
    import importlib

    from dse import __version__
    from dse.commands import COMMAND_OF, COMMANDS
    from dse.errors import DseError

    class Parser(argparse.ArgumentParser):
        def error(self, message: str):
            command = self.prog.removeprefix("dse").strip()
            raise DseError(f"{command + ': ' if command else ''}{message} (see {self.prog} "
                           f"--help)")

    parser = Parser(
        prog="dse",
        description="Design-space explorer for ternary-weight LLMs (BitNet b1.58) on FPGAs.",
    )
    parser.add_argument("--version", action="version", version=f"dse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    words = [] if argv is None else [a for a in argv if not a.startswith("-")]
    wanted = None if argv is None else (words[0] if words else "")
    for name in COMMANDS:
        word, help_text = COMMAND_OF[name]
        if wanted is not None and word != wanted:
            sub.add_parser(word, help=help_text, add_help=False)
            continue
        try:
            module = importlib.import_module(f"dse.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dse.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _say(message: str) -> None:
    """One line on stderr (and nothing, not even a traceback, if stderr is gone too)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"dse: {message}", file=sys.stderr, flush=True)


def _run(argv) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USER_ERROR
    return int(args.run(args) or 0)


def _quiet_stdout() -> None:
    """After a closed pipe (``dse ... | head``): no second error when Python flushes stdout."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv=None) -> int:
    try:
        return _run(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except RecursionError:
        _say("error: input nested too deeply (expected at most a few hundred levels of "
             "nesting)")
        return EXIT_USER_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _say(f"error: {where}{exc.strerror or exc}")
        return EXIT_USER_ERROR
    except Exception as exc:
        from dse.errors import DseError

        if isinstance(exc, DseError):
            _say(f"error: {exc}")
            return exc.exit_code
        raise


if __name__ == "__main__":
    sys.exit(main())
