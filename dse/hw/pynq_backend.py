"""The ``pynq`` backend: the overlay on a PYNQ board, through ``dse.hw.pynq_driver``.

Wall time per call is what the driver measures around the DMA transfers and the engine; the
PS-side work a real offload adds (quantizing the float activations) is measured here on the
board's CPU and added, so a measurement is what an offloaded layer really costs the PS.

``ps_baseline`` times the same layers on the PS itself (numpy on the A53s, checked against
the golden model), so the on-board CPU baseline is measured, not only scaled from a host.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import DseError
from dse.hw.backend import Job, PsMeasurement, Run, ps_gemv
from dse.model.board import Board
from dse.model.engine import EngineDesign
from dse.packing.quant import golden_gemv, quantize_activations


def check_ready(bitfile: Path | None) -> None:
    """What ``--backend pynq`` needs before any work: the bitstream, its .hwh, and pynq (it
    runs on the PYNQ board itself), each missing one a one-line error."""
    import importlib.util

    if bitfile is None:
        raise DseError("--overlay: expected the overlay's .bit file for --backend pynq")
    if not bitfile.exists():
        raise DseError(f"{bitfile}: no such overlay bitstream")
    if not bitfile.with_suffix(".hwh").exists():
        raise DseError(f"{bitfile.with_suffix('.hwh')}: expected the .hwh beside the .bit "
                       f"(same base name)")
    if importlib.util.find_spec("pynq") is None:
        raise DseError("--backend pynq: expected the pynq package, which runs on the PYNQ "
                       "board itself (there: pip install 'dse[board]'); this Python has none. "
                       "Off the board, use --backend sim or --from LOG")


class PynqBackend:
    """Runs jobs on the ternary_gemv overlay of the board this process runs on."""

    name = "pynq"

    def __init__(self, board: Board, bitfile: Path, timeout_s: float = 10.0,
                 engine: Any = None) -> None:
        """Open ``bitfile``'s overlay; ``engine`` passes an opened driver instead (tests hand
        in the emulated device's)."""
        self.board = board
        self.bitfile = bitfile
        self.timeout_s = timeout_s
        if engine is not None:
            from dse.hw import pynq_driver

            self.driver, self.engine = pynq_driver, engine
            return
        check_ready(bitfile)
        from dse.hw import pynq_driver

        self.driver = pynq_driver
        try:
            self.engine = pynq_driver.open_overlay(str(bitfile),
                                                   port_bits=board.link.port_width_bits)
        except ImportError as exc:
            raise DseError(f"--backend pynq: expected a working pynq ({exc})") from None
        except (RuntimeError, OSError) as exc:  # pynq: "No Devices Found" off the board
            raise DseError(f"{bitfile}: cannot open the overlay ({exc})") from None

    def overlay_design(self) -> EngineDesign:
        c = self.engine.config
        clock = self.engine.clock_mhz or self.board.clock.typical_mhz
        engines = len(getattr(self.engine, "engines", (self.engine,)))   # an EngineGroup
        return EngineDesign(pe=c.pe, simd=c.simd, packing=c.packing, clock_mhz=clock,
                            engines=engines, vectors=c.vmax, stream_bits=c.stream_bits,
                            max_k=c.kmax)

    def provenance(self) -> dict[str, Any]:
        import pynq

        digest = (hashlib.sha256(self.bitfile.read_bytes()).hexdigest()
                  if self.bitfile.exists() else None)
        return {"backend": "pynq", "bitstream": self.bitfile.name, "bitstream_sha256": digest,
                "clock_mhz_set": self.engine.clock_mhz, "pynq_version": pynq.__version__,
                "hp_port_bits": self.board.link.port_width_bits,
                "board_file": self.board.path}

    def run(self, jobs: Sequence[Job], repeats: int, progress=None) -> list[list[Run]]:
        """Every job ``repeats`` times on the overlay; ``progress(done, total)`` per call."""
        out = []
        rng = np.random.default_rng(0)
        for i, job in enumerate(jobs):
            layer = self.engine.load_layer(job.w, job.layer)
            runs = []
            for _ in range(repeats):
                xf = rng.standard_normal((job.m, job.k)).astype(np.float32)
                t0 = time.perf_counter()
                quantize_activations(xf)
                quant_s = time.perf_counter() - t0
                try:
                    y, timing = self.engine.run(layer, job.x, job.vectors, self.timeout_s)
                except self.driver.OverlayError as exc:
                    raise DseError(f"{job.layer} (M={job.m}): {exc}") from None
                runs.append(Run(y, timing.wall_s + quant_s, timing.busy_cycles,
                                timing.stall_in_cycles,
                                {"quantize_s": quant_s,
                                 "stall_out_cycles": float(timing.stall_out_cycles)}))
                if progress:
                    progress(i * repeats + len(runs), len(jobs) * repeats)
            out.append(runs)
        return out

    def ps_baseline(self, jobs: Sequence[Job], repeats: int) -> list[PsMeasurement]:
        """Time every job's layer on the PS (numpy float32 BLAS GEMV), verified bit-exactly."""
        out = []
        for job in jobs:
            w = job.w.astype(np.float32)
            walls = []
            for r in range(repeats):
                t0 = time.perf_counter()
                y = ps_gemv(w, job.x)
                walls.append(time.perf_counter() - t0)
                if not np.array_equal(y, golden_gemv(job.w, job.x)):
                    raise DseError(f"{job.layer} (M={job.m}, repeat {r + 1}): the PS GEMV "
                                   f"differs from the golden model")
            walls.sort()
            out.append(PsMeasurement(job.layer, job.n, job.k, job.m, walls[len(walls) // 2],
                                     walls[-1] - walls[0], repeats, _ps_runtime(),
                                     _blas_threads()))
        return out


def _ps_runtime() -> str:
    return f"numpy {np.__version__} float32 BLAS GEMV (exact for int8 x ternary)"


def _blas_threads() -> int | None:
    """Threads the BLAS may use, as far as the environment says (None: its default)."""
    import os

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) >= 1:
            return int(v)
    return None
