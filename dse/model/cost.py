"""Cost of one accelerator call (the ternary engine as a device), as a roofline.

An accelerator call runs one Linear (or a fused group sharing one input) for M vectors. Its
time is ``max(compute, DDR, link) + overhead + PS-side work``: the engine, the DDR reads and
the AXI streams overlap; the per-call launch and the CPU's rescale and cache work (the
hand-off) do not.
The largest term names the bound. All functions here are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.engine import EngineDesign, row_split, split_cycles
from dse.model.packing import DENSE_BYTES_PER_WEIGHT
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

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.ddr_s, self.link_s) + self.overhead_s + self.ps_s

    @property
    def bound(self) -> str:
        """The term that binds: the largest overlapped one, or overhead if that is larger."""
        terms = {"compute": self.compute_s, "ddr": self.ddr_s, "link": self.link_s}
        top = max(terms, key=terms.__getitem__)
        return "overhead" if self.overhead_s + self.ps_s > terms[top] else top


def call_cost(design: EngineDesign, board: Board, c: CostConstants, *, n: int, k: int, m: int,
              weight_bytes: int, dense: str | None = None, launch_us: float | None = None
              ) -> CallCost:
    """Roofline cost of one call computing an N x K layer for M vectors.

    ``weight_bytes`` are the bytes of one pass over the weights read from DDR (0 when they
    are resident on chip); they are read once per pass of ``design.vectors`` tokens.
    ``dense`` ("int8"/"bf16") runs the call on the DSP head unit instead of ternary lanes.
    ``launch_us`` is what launching the call costs the PS software (default: the board's
    ``per_call_overhead_us``, a Python PYNQ driver; see ``launch_us``).
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
    overhead_s = (launch + c.dma_setup_us) * 1e-6
    ps_s = handoff_ps_s(c, n=n, k=k, m=m)
    return CallCost(n, k, m, cycles, w_bytes, act_bytes, out_bytes, cycles / design.clock_hz,
                    ddr_s, link_s, overhead_s, ps_s)


def launch_us(board: Board, c: CostConstants, runtime: str) -> float:
    """Launching one accelerator call from the PS runtime: the board's figure for a Python
    (PYNQ) driver under ``torch``; a C driver's under ``native``."""
    return c.native_call_overhead_us if runtime == "native" else board.link.per_call_overhead_us


def handoff_ps_s(c: CostConstants, *, n: int, k: int, m: int) -> float:
    """PS-side work of handing one call's data to the PL and back: flush the int8 inputs,
    invalidate the int32 results, rescale them to floats. (Quantizing the input is an operator
    of the workload, priced on the PS by ``dse.model.cpu``.)"""
    return m * n * c.rescale_ns_per_elem * 1e-9 + (m * k + m * n * 4) / c.cache_maint_bytes_per_s


def layer_weight_bytes(layer: Layer, design: EngineDesign) -> int:
    """Bytes of one pass over the layer's weights in the engine's format.

    The dense head runs on the design's head unit in its format; without one it runs
    two-stage: stage 1 streams a ternary copy of the head through the engines (see
    ``dse.model.cpu.head_rescore`` for stage 2).
    """
    if not layer.ternary and design.head:
        return layer.weights * DENSE_BYTES_PER_WEIGHT[design.head]
    return design.packing_spec.matrix_bytes(layer.n, layer.k)
