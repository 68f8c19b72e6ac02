"""The ternary engine: its design point, its cycle count and its resources.

The engine is a matrix-vector unit of ``pe`` output rows x ``simd`` inputs per cycle (one
*lane* per weight consumed per cycle). Weights stream in packed, are decoded to {-1, 0, +1}
selects, and each lane adds, subtracts or skips an int8 activation: no multipliers. It holds
``vectors`` activation vectors per weight pass (VMAX) and answers ``vectors_per_clock`` of them
a clock (VPC), so one pass of the weights serves a round of that many sequences or a prompt
group of that many positions.

``engine_cycles`` is THE cycle formula: the search, the reports and the RTL tests all call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.errors import DseError
from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.fabric import engine_logic, engine_memories, infrastructure
from dse.model.packing import Packing, get_packing
from dse.model.split import row_split

#: Capacity of one block RAM (36 Kb) and one UltraRAM (288 Kb), in bytes of payload.
BRAM36_BYTES = 36 * 1024 // 8
URAM_BYTES = 288 * 1024 // 8


@dataclass(frozen=True)
class EngineDesign:
    """A design point of the ternary engine (and, optionally, a dense DSP unit for lm_head)."""

    pe: int
    simd: int
    packing: str = "i2"
    clock_mhz: float = 250.0
    engines: int = 1
    vectors: int = 1
    #: Width of each engine's AXI4-Stream input (weights, then activations), bits.
    stream_bits: int = 128
    #: Largest K the activation buffer holds (the widest layer input).
    max_k: int = 8192
    #: On-chip weight buffer for resident layers, bytes (URAM first, then BRAM).
    resident_bytes: int = 0
    #: Dense unit for the non-ternary lm_head: None, "int8" or "bf16", with its MAC count.
    head: str | None = None
    head_macs: int = 0
    #: Vectors answered per clock (of the ``vectors`` held per pass): the RTL's VPC, one of
    #: the template's ``parameters.vpc`` (1 or 2; the published KV260 design answers 2).
    vectors_per_clock: int = 1
    #: The engine RTL: ``ternary_gemv`` (ours, overlays/rtl) or a published engine whose
    #: synthesis the fabric evidence holds (``bitnet-kv260``: dse/data/fabric.yaml ``engines``);
    #: its resources and the flow around it follow.
    rtl: str = "ternary_gemv"
    #: True when the engine template says the shipped overlay builds this design (set by the
    #: design space generated from the template, or by ``dse.model.buildable.mark``).
    buildable: bool = False
    #: How to build it (``make kv260 PE=8 SIMD=40 PACKING=base3 VMAX=1 ENGINES=4``) or, for a
    #: what-if, the first rule of the template it breaks.
    build_note: str = ""

    def __post_init__(self) -> None:
        # The template-free rules of the shipped overlay: a copy of a buildable design given a
        # dense head unit or an on-chip weight buffer (dataclasses.replace) stops claiming
        # to be buildable. (Rules that need the template are checked where it is known.)
        if self.buildable and (self.head or self.resident_bytes):
            what = (f"head {self.head}: the overlay has no dense lm_head unit" if self.head
                    else "resident weights: the overlay has no on-chip weight buffer")
            object.__setattr__(self, "buildable", False)
            object.__setattr__(self, "build_note", "what-if: " + what)

    @property
    def lanes(self) -> int:
        """Lanes of one engine (PE x SIMD)."""
        return self.pe * self.simd

    @property
    def total_lanes(self) -> int:
        return self.lanes * self.engines

    @property
    def packing_spec(self) -> Packing:
        return get_packing(self.packing, "engine.packing")

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    def label(self) -> str:
        """Compact description: ``2x 16x32 i2 s128 @250MHz v4`` (s = stream bits per engine)."""
        s = (f"{self.engines}x {self.pe}x{self.simd} {self.packing} s{self.stream_bits} "
             f"@{self.clock_mhz:g}MHz")
        if self.vectors > 1:
            s += f" v{self.vectors}"
        if self.vectors_per_clock > 1:
            s += f"/{self.vectors_per_clock}"
        if self.head:
            s += f" +head {self.head}x{self.head_macs}"
        if self.resident_bytes:
            s += f" res {self.resident_bytes / 2**20:.1f}MiB"
        if self.rtl != "ternary_gemv":
            s += f" [{self.rtl}]"
        return s

    def validate(self, where: str = "engine") -> EngineDesign:
        """Reject impossible design points with a one-line error naming the field."""
        for name in ("pe", "simd", "engines", "vectors", "stream_bits", "max_k",
                     "vectors_per_clock"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise DseError(f"{where}.{name}: expected an integer >= 1, got {v!r}")
        if self.stream_bits % 8:
            raise DseError(f"{where}.stream_bits: expected a multiple of 8, got {self.stream_bits}")
        if not isinstance(self.clock_mhz, (int, float)) or not self.clock_mhz > 0:
            raise DseError(f"{where}.clock_mhz: expected a number > 0, got {self.clock_mhz!r}")
        if self.resident_bytes < 0:
            raise DseError(f"{where}.resident_bytes: expected >= 0, got {self.resident_bytes}")
        if not isinstance(self.rtl, str) or not self.rtl:
            raise DseError(f"{where}.rtl: expected an engine RTL name, got {self.rtl!r}")
        if self.head not in (None, "int8", "bf16"):
            raise DseError(f"{where}.head: expected none, int8 or bf16, got {self.head!r}")
        if self.head and self.head_macs < 1:
            raise DseError(f"{where}.head_macs: expected >= 1 with a head unit, "
                           f"got {self.head_macs}")
        if self.vectors_per_clock > self.vectors:
            raise DseError(f"{where}.vectors_per_clock: expected at most vectors "
                           f"({self.vectors}), got {self.vectors_per_clock}")
        get_packing(self.packing, f"{where}.packing")
        return self


def engine_cycles(n: int, k: int, m: int, pe: int, simd: int, vectors: int,
                  act_bytes_per_cycle: int, latency: int, vectors_per_clock: int = 1) -> int:
    """Busy cycles of one engine computing y = W x for M vectors (W is N x K).

    Per pass of the weights (up to ``vectors`` tokens): load the pass's activations (each
    vector's K int8 padded to whole stream beats of ``act_bytes_per_cycle``), then for each of
    ceil(N/PE) row folds and ceil(K/SIMD) column folds ceil(V_pass / vectors_per_clock)
    cycles, then drain the pipeline (``latency``: the template's ``pipeline.latency_cycles``
    for the shipped RTL). An engine answering one vector per clock spends V cycles per tile on
    a pass of V vectors; one answering 2 (VPC=2) ceil(V/2): the RTL tests hold both exact for
    every pass of 1..VMAX. Stalls on the streams are not counted here: the roofline adds them
    as the DDR or link bound, and the RTL's stall counters measure them.
    """
    if min(n, k, m, pe, simd, vectors, act_bytes_per_cycle, vectors_per_clock) < 1:
        raise ValueError("engine_cycles: all sizes must be >= 1")
    folds = math.ceil(n / pe) * math.ceil(k / simd)
    act = m * math.ceil(k / act_bytes_per_cycle)
    full, rest = divmod(m, vectors)
    per_tile = full * math.ceil(vectors / vectors_per_clock) + math.ceil(rest / vectors_per_clock)
    passes = full + (1 if rest else 0)
    return act + folds * per_tile + passes * int(latency)


def split_cycles(design: EngineDesign, n: int, k: int, m: int, latency: int
                 ) -> tuple[int, ...]:
    """Busy cycles of each engine that runs when ``design`` computes an N x K layer."""
    return tuple(engine_cycles(stop - start, k, m, design.pe, design.simd, design.vectors,
                               design.stream_bits // 8, latency, design.vectors_per_clock)
                 for start, stop in row_split(n, design.pe, design.engines))


@dataclass(frozen=True)
class Resources:
    """PL resources (LUT, FF, BRAM36, URAM, DSP)."""

    lut: float = 0.0
    ff: float = 0.0
    bram36: float = 0.0
    uram: float = 0.0
    dsp: float = 0.0

    KINDS = ("lut", "ff", "bram36", "uram", "dsp")

    def __add__(self, other: Resources) -> Resources:
        return Resources(*(getattr(self, k) + getattr(other, k) for k in self.KINDS))

    def utilization(self, board: Board) -> dict[str, float]:
        """Fraction of the whole device used, per kind (URAM on a part without any: inf)."""
        out = {}
        for kind in self.KINDS:
            have = getattr(board.pl, kind)
            used = getattr(self, kind)
            out[kind] = used / have if have else (math.inf if used > 0 else 0.0)
        return out

    def overflow(self, board: Board) -> list[str]:
        """Kinds whose utilization exceeds the board's cap, worst first, as text."""
        util = self.utilization(board)
        over = [(util[k] / getattr(board.caps, k), k) for k in self.KINDS
                if util[k] > getattr(board.caps, k) + 1e-12]
        over.sort(reverse=True)
        return [f"{k} {util[k]:.0%} > cap {getattr(board.caps, k):.0%}" for _, k in over]


def _bram_blocks(width_bits: int, depth: int) -> int:
    """BRAM36 count for a width x depth memory in 512 x 72 mode (UG573), at least 1."""
    return max(1, math.ceil(width_bits / 72)) * max(1, math.ceil(depth / 512))


def resident_storage(nbytes: int, board: Board) -> tuple[int, int]:
    """(URAM, BRAM36) blocks to hold ``nbytes`` of resident weights: URAM first, within caps."""
    if nbytes <= 0:
        return 0, 0
    uram_avail = math.floor(board.pl.uram * board.caps.uram)
    uram = min(uram_avail, math.ceil(nbytes / URAM_BYTES))
    rest = max(0, nbytes - uram * URAM_BYTES)
    return uram, math.ceil(rest / BRAM36_BYTES)


def fabric_key(design: EngineDesign) -> tuple:
    """What ``engine_resources`` reads of a design: every field but its clock and the
    overlay's verdict (designs that differ only in clock share their fabric)."""
    return (design.pe, design.simd, design.packing, design.engines, design.vectors,
            design.stream_bits, design.max_k, design.resident_bytes, design.head,
            design.head_macs, design.vectors_per_clock, design.rtl)


def engine_resources(design: EngineDesign, board: Board, c: CostConstants) -> Resources:
    """Resources of the whole accelerator: engines, head unit, buffers, DMA, interconnect.

    An engine answering V vectors per clock has V lanes of PE dot products and accumulators
    sharing one weight decoder, and V activation buffers of ceil(VMAX / V) vectors each
    (overlays/rtl/ternary_gemv.v's g_lane and g_act).

With fabric evidence in force (``c.fabric``): the engines from synthesis of their RTL
    scaled to Vivado (``synthesized_engine``) and the infrastructure their flow instantiates
    from published Vivado rows (``dse.model.fabric.infrastructure``); without it, the
    estimated constants of ``dse.model.constants``."""
    if c.fabric is not None:
        one = synthesized_engine(design, c)
        if one is not None:
            lut, ff, bram, _ = infrastructure(c.fabric, engine_flow(design, c), design.engines)
            total = Resources(*(getattr(one, k) * design.engines for k in Resources.KINDS))
            total = total + Resources(lut=lut, ff=ff, bram36=bram)
            return total + _head_and_resident(design, board, c)
    p = design.packing_spec
    lanes = design.lanes
    v = design.vectors_per_clock
    lut = lanes * (v * c.lane_lut + p.decoder_lut_per_lane) + design.pe * (
        v * c.pe_lut + p.block_scale_lut_per_pe) + c.engine_lut
    ff = (lanes * (v * c.lane_ff + p.decoder_ff_per_lane) + v * design.pe * c.pe_ff
          + c.engine_ff)
    # The buffer is written a whole stream beat per cycle and read SIMD bytes per cycle, so it
    # is as wide as the wider of the two (the RTL's is a beat wide: 14.5 BRAM36 at i2 16x32).
    width = max(design.simd * 8, design.stream_bits)
    held = math.ceil(design.vectors / v)
    act_buf = v * _bram_blocks(width, math.ceil(design.max_k * held * 8 / width))
    bram = act_buf + c.engine_bram36
    dsp = design.pe * p.block_scale_dsp_per_pe
    per_engine = Resources(lut, ff, bram, 0, dsp)
    total = Resources()
    for _ in range(design.engines):
        total = total + per_engine
    ports = min(board.link.hp_ports, max(1, math.ceil(
        design.engines * design.stream_bits / board.link.port_width_bits)))
    total = total + Resources(
        lut=design.engines * c.dma_lut + ports * c.interconnect_lut_per_port,
        ff=design.engines * c.dma_ff + ports * c.interconnect_ff_per_port,
        bram36=design.engines * c.dma_bram36,
    )
    return total + _head_and_resident(design, board, c)


def _head_and_resident(design: EngineDesign, board: Board, c: CostConstants) -> Resources:
    """A dense head unit's fabric (estimated) and the resident weights' on-chip storage."""
    total = Resources()
    if design.head:
        macs_per_dsp = 2 if design.head == "int8" else 1
        total = total + Resources(
            lut=design.head_macs * c.head_lut_per_mac,
            ff=design.head_macs * c.head_ff_per_mac,
            dsp=math.ceil(design.head_macs / macs_per_dsp),
            bram36=_bram_blocks(64, 1),
        )
    uram, bram_res = resident_storage(design.resident_bytes, board)
    return total + Resources(uram=uram, bram36=bram_res)


def engine_flow(design: EngineDesign, c: CostConstants) -> str:
    """The Vivado flow that builds the design's engines (ours: ``overlay``)."""
    rtl = c.fabric.engine_rtl(design.rtl) if c.fabric is not None else None
    return rtl.flow if rtl is not None else "overlay"


def synthesized_engine(design: EngineDesign, c: CostConstants) -> Resources | None:
    """One engine from synthesis scaled to Vivado, or None when the evidence has no
    synthesis of its RTL (the estimate applies).

    Ours (``ternary_gemv``): the logic LUTs and FFs of a least-squares fit over the
    synthesized points of its packing (``dse.model.fabric.engine_logic``) times the
    Yosys-to-Vivado relation; its memories by Vivado's inference rules from the RTL's
    parameters (``engine_memories``: the activation buffer in block RAM, the accumulators
    and result FIFO in LUT RAM). A published engine RTL: its synthesized counts (the
    relation's module) times the relation, its memories as synthesized."""
    fab = c.fabric
    if fab is None:
        return None
    if design.rtl == "ternary_gemv" and design.vectors_per_clock > 1:
        return None  # our RTL is synthesized at one vector a clock: the V-lane estimate applies
    rel = fab.relation
    if design.rtl != "ternary_gemv":
        rtl = fab.engine_rtl(design.rtl)
        if rtl is None:
            names = ", ".join(["ternary_gemv", *(e.name for e in fab.engines)])
            raise DseError(f"engine.rtl: expected one of {names}, got {design.rtl!r}")
        shape = (design.pe, design.simd, design.packing)
        if shape != (rtl.pe, rtl.simd, rtl.packing) or design.vectors > rtl.vectors:
            raise DseError(f"engine.rtl: {rtl.name} is one engine of {rtl.pe}x{rtl.simd} "
                           f"{rtl.packing} holding up to {rtl.vectors} vectors; the plan "
                           f"asks for {design.pe}x{design.simd} {design.packing} with "
                           f"{design.vectors}")
        y = rel.yosys
        return Resources(lut=y[0] * rel.lut, ff=y[1] * rel.ff, bram36=y[2], uram=y[3])
    if fab.engine is None:
        return None
    code = 1 if design.packing == "base3" else 0 if design.packing == "i2" else None
    if code is None:
        return None
    lut, ff, _ = engine_logic(fab.engine, code, design.pe, design.simd)
    mem = engine_memories(design.pe, design.simd, code, design.vectors, design.max_k)
    return Resources(lut=lut * rel.lut + mem["lut_ram"], ff=ff * rel.ff,
                     bram36=mem["bram36"], uram=mem["uram"])


def link_limit_error(design: EngineDesign, board: Board) -> str | None:
    """Why the board cannot host the design's engines (one per HP port) or clock, or None.

    Each engine has its own AXI DMA on its own HP port; a stream wider than the port is
    narrowed by the SmartConnect and priced as port-bound by the link term, not refused.
    """
    if design.engines > board.link.hp_ports:
        return (f"link: {design.engines} engines need one HP port each, board has "
                f"{board.link.hp_ports}")
    if design.clock_mhz > board.clock.max_mhz:
        return f"clock: {design.clock_mhz:g} MHz > board max {board.clock.max_mhz:g} MHz"
    return None
