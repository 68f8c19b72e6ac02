"""The small interface every backend implements (PYNQ board, RTL simulation).

The calibration flow hands a backend ``Job``s (one Linear: ternary weights, int8 activations,
vectors per weight pass) and gets ``Run``s back (int32 results, wall time, PL cycle counters,
PS-side times). The flow, not the backend, checks results against the golden model and fits
the cost model, so both backends are held to the same standard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dse.model.engine import EngineDesign


@dataclass(frozen=True)
class Job:
    """One layer call: W (N x K, int8 in {-1,0,1}) times M int8 activation vectors."""

    layer: str
    w: np.ndarray
    x: np.ndarray
    vectors: int = 1

    @property
    def n(self) -> int:
        return int(self.w.shape[0])

    @property
    def k(self) -> int:
        return int(self.w.shape[1])

    @property
    def m(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Run:
    """What one call returned and what it cost."""

    y: np.ndarray
    wall_s: float
    busy_cycles: int
    stall_cycles: int
    ps_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PsMeasurement:
    """One layer timed on the PS (the on-board CPU baseline)."""

    layer: str
    n: int
    k: int
    m: int
    wall_s: float
    spread_s: float
    repeats: int
    runtime: str
    threads: int | None = None


class BackendError(RuntimeError):
    """A backend could not run a job (timeout, no device, overlay mismatch)."""


class Backend(Protocol):
    """A place that runs layers: the board's overlay, or its RTL in a simulator."""

    name: str

    def overlay_design(self) -> EngineDesign:
        """The engine as built (read back from the IP's config registers)."""
        ...

    def provenance(self) -> dict[str, Any]:
        """What was measured on: board, bitstream hash or simulator version, clock, versions."""
        ...

    def run(self, jobs: Sequence[Job], repeats: int) -> list[list[Run]]:
        """Run every job ``repeats`` times; one list of runs per job, in order."""
        ...


def ps_gemv(w_f32: np.ndarray, x_int8: np.ndarray) -> np.ndarray:
    """The same layer on the PS with numpy: x (M x K) times W^T, as int32.

    Why float32 BLAS: numpy has no int8 GEMV kernel (an int matmul runs a slow generic loop),
    and the A53s' NEON float32 BLAS is what a numpy runtime would use. It is exact here:
    every sum is an integer of magnitude <= K x 128 < 2^24. ``w_f32`` is prepared once per
    layer (as a runtime holds its weights), so only the GEMV is timed.
    """
    return np.rint(x_int8.astype(np.float32) @ w_f32.T).astype(np.int32)
