"""Sample the process's and the system's memory in a background thread while a run goes on.

The seed report's memory timeline and per-phase deltas come from here. The sampler reads
psutil (process RSS and VMS, system used/total) every ``interval_s`` and, through ``mark``, at
each phase boundary, so a phase's memory change is RSS at its end minus RSS at its start
however short it was. Reading /proc costs tens of microseconds, which is why the decode loop
takes a token's memory from ``last_rss_mb`` (the latest sample) instead of reading it again.
Peak RSS is the larger of the sampled maximum and the kernel's high-water mark
(``ru_maxrss``), which also catches a spike between two samples.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from dse.profile.format import MemorySample

MB = 2**20


@dataclass(frozen=True)
class Mark:
    """A sample taken at a named moment (``prefill:start``, ``decode:end``, ...)."""

    label: str
    sample: MemorySample


def kernel_peak_rss_mb() -> float | None:
    """The process's peak RSS since it started, from getrusage (Linux: KiB; macOS: bytes)."""
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB


class MemorySampler:
    """A daemon thread sampling memory; use as a context manager around the run."""

    def __init__(self, interval_s: float = 0.25) -> None:
        import psutil

        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self._proc = psutil.Process()
        self._vm = psutil.virtual_memory
        self._t0 = time.perf_counter()
        self._samples: list[MemorySample] = []
        self._marks: list[Mark] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_rss_mb = 0.0

    def sample(self) -> MemorySample:
        """Read memory now (any thread) and append it to the timeline."""
        info = self._proc.memory_info()
        vm = self._vm()
        s = MemorySample(t_s=time.perf_counter() - self._t0, rss_mb=info.rss / MB,
                         vms_mb=info.vms / MB, sys_used_mb=(vm.total - vm.available) / MB,
                         sys_total_mb=vm.total / MB)
        with self._lock:
            self._samples.append(s)
        self.last_rss_mb = s.rss_mb
        return s

    def mark(self, label: str) -> MemorySample:
        """Sample now and remember it under ``label``."""
        s = self.sample()
        with self._lock:
            self._marks.append(Mark(label, s))
        return s

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> MemorySampler:
        if self._thread is None:
            self.sample()
            self._thread = threading.Thread(target=self._loop, name="dse-memory", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sample()

    def __enter__(self) -> MemorySampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def samples(self) -> tuple[MemorySample, ...]:
        with self._lock:
            return tuple(sorted(self._samples, key=lambda s: s.t_s))

    @property
    def marks(self) -> tuple[Mark, ...]:
        with self._lock:
            return tuple(self._marks)

    def peak_rss_mb(self) -> float:
        sampled = max((s.rss_mb for s in self.samples), default=0.0)
        return max(sampled, kernel_peak_rss_mb() or 0.0)


def phase_delta_mb(marks: tuple[Mark, ...], phase: str) -> float | None:
    """RSS at ``<phase>:end`` minus RSS at ``<phase>:start``; None if either is missing."""
    by = {m.label: m.sample.rss_mb for m in marks}
    start, end = by.get(f"{phase}:start"), by.get(f"{phase}:end")
    return None if start is None or end is None else end - start


__all__ = ["MB", "Mark", "MemorySampler", "kernel_peak_rss_mb", "phase_delta_mb"]
