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


#: Which signal stopped the run (0: none yet), whether the command is at work, and whether
#: a signal was put off; the processes running under dse then.
_STOPPED = {"signal": 0, "working": False, "deferred": False}
_STARTED: list = []


def _resend_later(signum: int) -> None:
    """Put a signal off: send it to this process again in 10 ms."""
    import os
    import threading

    _STOPPED["deferred"] = True
    threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()


def _on_signal(signum, frame) -> None:
    """SIGINT or SIGTERM: tell the processes dse started (a ``kill`` reaches dse alone),
    then unwind the work like Ctrl-C, so temporary files and locks go on the way out. Once
    the work is over (dse is reporting how it ended) the signal is only noted, so nothing is
    raised where nothing can catch it; a second one ends the process at once."""
    import os
    import signal

    from dse import procs

    global _STARTED
    if _STOPPED["signal"] and not _STOPPED["deferred"]:
        os._exit(EXIT_TERMINATED if _STOPPED["signal"] == signal.SIGTERM
                 else EXIT_INTERRUPTED)
    if not _STOPPED["signal"]:
        _STARTED = procs.descendants()
        procs.signal_all(_STARTED, signum)
    _STOPPED.update(signal=signum, deferred=False)
    if _STOPPED["working"]:
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _unraisable(hook):
    """``sys.unraisablehook`` while dse works: the signal's exception, raised where Python
    drops exceptions (a ``__del__``, a weakref or a generator being finalized), is not printed
    but put off, so the command is stopped 10 ms later instead of never."""
    import signal

    def handle(info) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt) and _STOPPED["signal"]:
            _resend_later(signal.SIGTERM if isinstance(info.exc_value, Terminated)
                          else signal.SIGINT)
            return
        hook(info)

    return handle


def _handle_signals():
    """Install the handler of SIGINT and SIGTERM (main thread only); return how to put the
    old ones back."""
    import signal
    import threading

    global _STARTED
    _STOPPED.update(signal=0, working=False, deferred=False)
    _STARTED = []
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    old_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable(old_hook)

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        sys.unraisablehook = old_hook

    return restore


def _work(argv) -> int:
    """The command itself: the only place a signal is raised as an exception."""
    _STOPPED["working"] = True
    try:
        return _run(argv)
    finally:
        _STOPPED["working"] = False


def main(argv=None) -> int:
    """The ``dse`` command: its exit status. ``argv`` None: this process is dse (the signal
    handlers stay until it exits); a list: a call from Python (they are put back)."""
    import signal

    restore = None
    try:
        try:
            try:
                _safe_stdio()
                restore = _handle_signals()
                code = _work(argv)
            except Terminated:
                code = EXIT_TERMINATED
            except KeyboardInterrupt:
                code = EXIT_INTERRUPTED
            except RecursionError:
                _say("error: input nested too deeply (expected at most a few hundred levels "
                     "of nesting)")
                code = EXIT_USER_ERROR
            except OSError as exc:
                where = f"{exc.filename}: " if exc.filename else ""
                _say(f"error: {where}{exc.strerror or exc}")
                code = EXIT_USER_ERROR
            except Exception as exc:
                from dse.errors import DseError

                if isinstance(exc, DseError):
                    _say(f"error: {exc}")
                    code = exc.exit_code
                elif _STOPPED["signal"]:
                    # the signal's exception, turned into another on its way out (an import
                    # interrupted reports "initialization failed"): the run was stopped
                    code = EXIT_INTERRUPTED
                else:
                    raise
            except BaseException as exc:  # a native extension's panic, SystemExit ...
                if isinstance(exc, SystemExit) or not _STOPPED["signal"]:
                    raise
                code = EXIT_INTERRUPTED  # as above: stopped while starting up
        except KeyboardInterrupt:  # before the handlers were installed
            code = EXIT_INTERRUPTED
        if _STOPPED["signal"] or code in (EXIT_TERMINATED, EXIT_INTERRUPTED):
            from dse import procs

            procs.end(_STARTED)
            term = _STOPPED["signal"] == signal.SIGTERM or code == EXIT_TERMINATED
            _say("terminated" if term else "interrupted")
            code = EXIT_TERMINATED if term else EXIT_INTERRUPTED
        return code
    finally:
        if restore is not None and argv is not None:
            restore()


if __name__ == "__main__":
    sys.exit(main())
