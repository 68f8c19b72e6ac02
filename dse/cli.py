"""The ``dse`` command line.

Each sub-command lives in ``dse/commands/<name>.py``; a missing module (a command not built
yet in this checkout) is simply not offered.

Whatever happens, the user sees one line, never a traceback, for what is not a bug in dse:
a ``DseError`` (bad input: exit 2), an ``OSError`` (a disk full, a file that vanished: exit 2),
a document nested too deeply to parse (exit 2), Ctrl-C (exit 130), SIGTERM (exit 143, the
processes dse started ended too). The guard is the first instruction of ``main``, and
everything else is imported inside it, so an interrupt during the imports is caught as well.
Anything else escaping is a bug and keeps its traceback.

Before any work, the process is made safe to run wherever it was started: a closed standard
descriptor (``2>&-``) is reopened on /dev/null, so no file dse opens can take its number and
receive another program's output; a reader of stdout or stderr that goes away (``| head``)
no longer stops the run (what was asked for is still written, the rest of the text is
dropped); text the terminal's encoding cannot show (``LC_ALL=C``) is escaped, not fatal.
"""

from __future__ import annotations

import contextlib
import sys

#: Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Exit status of a run stopped by SIGTERM (128 + SIGTERM).
EXIT_TERMINATED = 143
EXIT_USER_ERROR = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds like Ctrl-C: temporary files and
    locks are removed on the way out, and ``subprocess.run`` kills the child it waits on."""


def build_parser():
    """The argparse parser with every sub-command this checkout has.

    A usage error (an unknown option, a bad option value) is a ``DseError`` like any other:
    one line, exit 2, instead of argparse's usage block.
    """
    import argparse
    import importlib

    from dse import __version__
    from dse.commands import COMMANDS
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
    for name in COMMANDS:
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USER_ERROR
    return int(args.run(args) or 0)


class _Forgiving:
    """A text stream whose reader may go away: the first broken pipe sends the rest of the
    text to /dev/null (the descriptor too, so Python's last flush is quiet) instead of
    stopping the run half way. Everything else is the wrapped stream's."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (BrokenPipeError, ConnectionResetError):
                self._drop()
            except OSError as exc:
                import errno

                if exc.errno not in (errno.EPIPE, errno.EBADF):
                    raise
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError:
                self._drop()

    def _drop(self) -> None:
        import os

        self.gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _safe_stdio() -> None:
    """Reopen closed standard descriptors on /dev/null, wrap the real stdout and stderr so a
    vanished reader or an encoding that cannot show a character never stops the run."""
    import os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                got = os.open(os.devnull, os.O_RDWR)
            except OSError:
                continue
            if got != fd:  # a lower descriptor was free: it is not ours to keep
                os.close(got)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
            continue
        if stream is not getattr(sys, f"__{name}__") or isinstance(stream, _Forgiving):
            continue  # a test's capture, or already done
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
        setattr(sys, name, _Forgiving(stream))


def _on_sigterm(signum, frame) -> None:
    """SIGTERM: tell the processes dse started (a kill reaches dse alone), then unwind."""
    from dse import procs

    global _STARTED
    _STARTED = procs.descendants()
    procs.signal_all(_STARTED)
    raise Terminated


#: The processes running under dse when SIGTERM arrived (ended before exiting).
_STARTED: list = []


def _handle_sigterm():
    """Install the SIGTERM handler (main thread only); return how to put the old one back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, old)


def main(argv=None) -> int:
    restore = lambda: None  # noqa: E731
    try:
        _safe_stdio()
        restore = _handle_sigterm()
        return _run(argv)
    except Terminated:
        from dse import procs

        procs.end(_STARTED)
        _say("terminated")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
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
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
