"""This process's children: found and ended when dse is stopped (SIGTERM, Ctrl-C).

A ``kill PID`` reaches dse alone, not the simulator or compiler it started (``calibrate
--backend sim`` runs Verilator builds and simulations as child processes, some of which start
their own). ``descendants`` snapshots the process tree under dse while it is intact (from
``/proc``: Linux, as on the boards; elsewhere it finds none), and ``end`` stops exactly those
processes, recognised by their start time so a recycled process id is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

Proc = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int | str) -> tuple[int, int] | None:
    """(parent pid, start time) of a running process, from /proc/PID/stat (None if gone or
    a zombie: it has exited and only waits to be reaped)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses
    rest = text[text.rfind(")") + 2:].split()
    try:
        return None if rest[0] == "Z" else (int(rest[1]), int(rest[19]))
    except (IndexError, ValueError):
        return None


def descendants(pid: int | None = None) -> list[Proc]:
    """Every process below ``pid`` (default: this one), children before grandchildren."""
    root = os.getpid() if pid is None else pid
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    children: dict[int, list[Proc]] = {}
    for e in entries:
        st = _stat(e)
        if st is not None:
            children.setdefault(st[0], []).append((int(e), st[1]))
    out: list[Proc] = []
    todo = [root]
    while todo:
        for proc in children.get(todo.pop(0), []):
            out.append(proc)
            todo.append(proc[0])
    return out


def _alive(proc: Proc) -> bool:
    st = _stat(proc[0])
    return st is not None and st[1] == proc[1]


def signal_all(procs: list[Proc], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to each process still running as it was snapshotted."""
    for proc in procs:
        if _alive(proc):
            with contextlib.suppress(OSError):
                os.kill(proc[0], sig)


def end(procs: list[Proc], grace_s: float = 2.0) -> None:
    """SIGTERM each process, wait up to ``grace_s`` for them to exit, then SIGKILL the rest."""
    signal_all(procs, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in procs):
        time.sleep(0.05)
    signal_all(procs, signal.SIGKILL)
