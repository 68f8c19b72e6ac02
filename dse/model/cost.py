"""Cost of one accelerator call (the ternary engine as a device), as a roofline.

An accelerator call runs one Linear (or a fused group sharing one input) for M vectors. Its
time is ``max(compute, DDR, link) + burst + act load + overhead + PS-side work``: the engine,
the DDR reads and the AXI streams overlap; the per-run burst start, the activation load before
the weights stream, the launch and the CPU's read-out of the results (the hand-off) do not.

The hand-off follows what a C driver does per engine run (the published bitnet-kv260 host code,
runtime/bitnet_kria.c ``engine_phase``, describes the operations): arm each engine's result
DMA and activation DMA, wait for the activations to land, then start the weight stream and poll
completion, every step an AXI-Lite register access from the PS to the PL; the int8 inputs are
written through an uncached (write-combining) mapping, so they need no flush, while the int32
results are read through a cached mapping and must be invalidated line by line, then rescaled
to floats. ``handoff`` is the one home of that model; every plan is priced by it.
The largest term names the bound. All functions here are pure.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property

from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.engine import EngineDesign, row_split, split_cycles
from dse.model.packing import DENSE_BYTES_PER_WEIGHT, get_packing
from dse.model.workload import Layer

BOUNDS = ("compute", "ddr", "link", "overhead")


@dataclass(frozen=True)
class CallCost:
    """One accelerator call: its work, its bytes, its times (seconds) and what binds it."""

    n: int
    k: int
    m: int
    cycles: int
    weight_bytes: int
    act_bytes: int
    out_bytes: int
    compute_s: float
    ddr_s: float
    link_s: float
    overhead_s: float
    ps_s: float
    #: The activation load before the weights stream (register accesses + the transfer).
    act_s: float = 0.0
    #: Per-run start of the weight bursts (``run_burst_us`` per pass; 0 unless calibrated).
    burst_s: float = 0.0
    #: Of ``ps_s``: invalidating the results' cache lines (the rest is the rescale).
    readout_s: float = 0.0

    @cached_property
    def stream_s(self) -> float:
        """The weight stream: the overlapped engine/DDR/link time plus the bursts' starts."""
        return max(self.compute_s, self.ddr_s, self.link_s) + self.burst_s

    @cached_property
    def handoff_s(self) -> float:
        """Everything serial around the stream: activation load, launch, read-out, rescale."""
        return self.act_s + self.overhead_s + self.ps_s

    @property
    def rescale_s(self) -> float:
        return self.ps_s - self.readout_s

    @cached_property
    def time_s(self) -> float:
        return self.stream_s + self.handoff_s

    @cached_property
    def bound(self) -> str:
        """The term that binds: the largest overlapped one, or overhead if that is larger."""
        terms = {"compute": self.compute_s, "ddr": self.ddr_s, "link": self.link_s}
        top = max(terms, key=terms.__getitem__)
        return "overhead" if self.handoff_s + self.burst_s > terms[top] else top


def call_cost(design: EngineDesign, board: Board, c: CostConstants, *, n: int, k: int, m: int,
              weight_bytes: int, dense: str | None = None, launch_us: float | None = None,
              rescale: bool = True) -> CallCost:
    """Roofline cost of one call computing an N x K layer for M vectors.

    ``weight_bytes`` are the bytes of one pass over the weights read from DDR (0 when they
    are resident on chip); they are read once per pass of ``design.vectors`` tokens.
    ``dense`` ("int8"/"bf16") runs the call on the DSP head unit instead of ternary lanes.
    ``launch_us`` is what launching the call costs the PS software beyond its register
    accesses (default: the board's ``per_call_overhead_us``, a Python PYNQ driver; see
    ``launch_us``). ``rescale`` False: the consumer scales the int32 results itself (stage 1 of
    a two-stage head folds the per-row scale into its top-K selection).
    """
    if min(n, k, m) < 1:
        raise ValueError("call_cost: N, K and M must be >= 1")
    act_w = design.stream_bits // 8
    latency = int(c.pipeline_latency_cycles)
    port_bytes = board.link.port_width_bits / 8
    if dense:
        macs = max(1, design.head_macs)
        cycles = math.ceil(k * m / act_w) + math.ceil(n * k * m / macs) + latency
        passes = 1
        rows = ((0, n),)
    else:
        # The driver's split (row_split): the call takes as long as its busiest engine.
        cycles = max(split_cycles(design, n, k, m, latency))
        passes = math.ceil(m / design.vectors)
        rows = row_split(n, design.pe, design.engines)
    w_bytes = weight_bytes * passes
    # every engine that runs reads the whole activation vectors through its own DMA
    act_bytes = m * k * len(rows)
    out_bytes = m * n * 4
    # one HP port per engine: each stream at the narrower of its width and its port; the
    # busiest engine (most rows) binds
    lane_rate = min(act_w, port_bytes) * design.clock_hz
    if dense:
        # a dense head unit (a what-if: the shipped overlay has none) reads over all ports
        lane_rate = min(design.engines * act_w, board.link.hp_ports * port_bytes
                        ) * design.clock_hz
    share = max(stop - start for start, stop in rows) / n
    link_s = max((w_bytes * share + m * k) / (lane_rate * c.mm2s_efficiency),
                 out_bytes * share / (lane_rate * c.s2mm_efficiency))
    ddr_s = (w_bytes + act_bytes + out_bytes) / board.ddr_bytes_per_s
    launch = board.link.per_call_overhead_us if launch_us is None else launch_us
    h = handoff(design, board, c, n=n, k=k, m=m, launch_us=launch, rescale=rescale,
                engines=len(rows), passes=passes)
    return CallCost(n, k, m, cycles, w_bytes, act_bytes, out_bytes, cycles / design.clock_hz,
                    ddr_s, link_s, h.run_s, h.readout_s + h.rescale_s, h.act_load_s,
                    passes * c.run_burst_us * 1e-6, h.readout_s)


def with_launch(cc: CallCost, launch_s: float) -> CallCost:
    """``cc`` with the PS runtime's launch added to its run overhead: what ``call_cost`` gives
    with ``launch_us`` set (its run term is register accesses plus the launch), so a call
    priced once without a launch serves every runtime."""
    return CallCost(cc.n, cc.k, cc.m, cc.cycles, cc.weight_bytes, cc.act_bytes, cc.out_bytes,
                    cc.compute_s, cc.ddr_s, cc.link_s, cc.overhead_s + launch_s, cc.ps_s,
                    cc.act_s, cc.burst_s, cc.readout_s)


def launch_us(board: Board, c: CostConstants, runtime: str) -> float:
    """Launching one accelerator call from the PS runtime: the board's figure for a Python
    (PYNQ) driver under ``torch``; a C driver's under ``native``."""
    return c.native_call_overhead_us if runtime == "native" else board.link.per_call_overhead_us


@dataclass(frozen=True)
class Handoff:
    """The serial work around one call's weight stream, seconds, by what it is."""

    #: Arm the result and activation DMAs, wait for the activations: register accesses plus
    #: the activation vectors crossing one HP port per engine.
    act_load_s: float
    #: Start the weight stream and poll completion (register accesses) plus the driver's own
    #: software cost per call (``launch_us``) and any extra DMA setup.
    run_s: float
    #: Invalidate the int32 results' cache lines before the CPU reads them; with several
    #: vectors a pass, copy each vector's results out of the interleaved ones (``gather``).
    readout_s: float
    #: Rescale the int32 results to floats.
    rescale_s: float


def handoff(design: EngineDesign, board: Board, c: CostConstants, *, n: int, k: int, m: int,
            launch_us: float, rescale: bool = True, engines: int | None = None,
            passes: int = 1) -> Handoff:
    """The hand-off of one call (see the module docstring): each of the ``engines`` that run
    costs ``regs_act_load_per_engine`` + ``regs_run_per_engine`` AXI-Lite accesses; the
    activations (M x K int8) cross each engine's port at its beat rate after the DMA's first-beat
    latency; the M x N int32 results are invalidated at ``cache_maint_bytes_per_s`` and
    rescaled at ``rescale_ns_per_elem``. (Quantizing the input is an operator of the workload,
    priced on the PS by ``dse.model.cpu``.) Each of ``passes`` engine runs (M vectors in groups
    of ``design.vectors``) re-arms the DMAs and the engines. With several vectors a pass, a
    runtime that consumes the results vector by vector first copies each one's out of the
    interleaved results (``gather_ns_per_elem``, or ``gather_q_ns_per_elem`` where a vector's
    PE results fill a 128-bit register), unless the consumer reads them itself (``rescale``
    False: the head's top-K walks the scores where they lie)."""
    e = design.engines if engines is None else engines
    access = c.axi_lite_access_us * 1e-6
    port = min(design.stream_bits // 8, board.link.port_width_bits / 8) * design.clock_hz
    act = (passes * (e * c.regs_act_load_per_engine * access + c.dma_first_beat_us * 1e-6)
           + m * k / (port * c.mm2s_efficiency))
    run = passes * e * c.regs_run_per_engine * access + (launch_us + c.dma_setup_us) * 1e-6
    readout = m * n * 4 / c.cache_maint_bytes_per_s
    if rescale and min(m, design.vectors) > 1:
        per = c.gather_q_ns_per_elem if design.pe >= 4 else c.gather_ns_per_elem
        readout += m * n * per * 1e-9
    scale = m * n * c.rescale_ns_per_elem * 1e-9 if rescale else 0.0
    return Handoff(act, run, readout, scale)


def layer_weight_bytes(layer: Layer, design: EngineDesign) -> int:
    """Bytes of one pass over the layer's weights in the engine's format.

    The dense head runs on the design's head unit in its format; without one it runs
    two-stage: stage 1 streams a ternary copy of the head through the engines (see
    ``dse.model.cpu.head_rescore`` for stage 2).
    """
    return _weight_bytes(layer.n, layer.k, layer.ternary, design.packing, design.head)


@functools.lru_cache(maxsize=8192)
def _weight_bytes(n: int, k: int, ternary: bool, packing: str, head: str | None) -> int:
    """``layer_weight_bytes`` by shape (a forward repeats a few shapes many times)."""
    if not ternary and head:
        return n * k * DENSE_BYTES_PER_WEIGHT[head]
    return get_packing(packing, "engine.packing").matrix_bytes(n, k)
