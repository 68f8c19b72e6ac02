"""The ``pynq`` backend: the overlay on a PYNQ board, through ``dse.hw.pynq_driver``.

Wall time per call is what the driver measures around the DMA transfers and the engine; the
PS-side work a real offload adds (quantizing the float activations) is measured here on the
board's CPU and added, so a measurement is what an offloaded layer really costs the PS.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import DseError
from dse.hw.backend import Job, Run
from dse.model.board import Board
from dse.model.engine import EngineDesign
from dse.packing.quant import quantize_activations


class PynqBackend:
    """Runs jobs on the ternary_gemv overlay of the board this process runs on."""

    name = "pynq"

    def __init__(self, board: Board, bitfile: Path, timeout_s: float = 10.0) -> None:
        if not bitfile.exists():
            raise DseError(f"{bitfile}: no such overlay bitstream")
        if not bitfile.with_suffix(".hwh").exists():
            raise DseError(f"{bitfile.with_suffix('.hwh')}: expected the .hwh beside the .bit "
                           f"(same base name)")
        try:
            from dse.hw import pynq_driver
        except ImportError as exc:
            raise DseError(f"--backend pynq: expected pynq (pip install 'dse[board]'): {exc}"
                           ) from None
        self.driver = pynq_driver
        try:
            self.engine = pynq_driver.open_overlay(str(bitfile))
        except (RuntimeError, OSError) as exc:  # pynq: "No Devices Found" off the board
            raise DseError(f"{bitfile}: cannot open the overlay ({exc})") from None
        self.board = board
        self.bitfile = bitfile
        self.timeout_s = timeout_s

    def overlay_design(self) -> EngineDesign:
        c = self.engine.config
        clock = self.engine.clock_mhz or self.board.clock.typical_mhz
        engines = len(getattr(self.engine, "engines", (self.engine,)))   # an EngineGroup
        return EngineDesign(pe=c.pe, simd=c.simd, packing=c.packing, clock_mhz=clock,
                            engines=engines, vectors=c.vmax, stream_bits=c.stream_bits,
                            max_k=c.kmax)

    def provenance(self) -> dict[str, Any]:
        import pynq

        digest = hashlib.sha256(self.bitfile.read_bytes()).hexdigest()
        return {"backend": "pynq", "bitstream": self.bitfile.name, "bitstream_sha256": digest,
                "clock_mhz_set": self.engine.clock_mhz, "pynq_version": pynq.__version__,
                "board_file": self.board.path}

    def run(self, jobs: Sequence[Job], repeats: int) -> list[list[Run]]:
        out = []
        rng = np.random.default_rng(0)
        for job in jobs:
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
            out.append(runs)
        return out
