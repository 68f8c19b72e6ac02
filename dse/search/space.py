"""The engine design space of a board: generated from the overlay's template x the board.

With an engine template (``overlays/ternary_gemv.yaml``, loaded at the edge and carried by the
``DesignSpace``), every design point is one the shipped RTL and Vivado flow build: a packing
the RTL decodes, a (PE, SIMD) whose derived stream width the AXI DMA takes, one engine per HP
port up to the flow's and the board's count, a clock within both limits. Each point is
marked ``buildable`` with the ``make`` line that builds it. Without a template the space is
the model's free grid (any packing, free stream widths, a dense head unit): every point is
then a what-if the overlay cannot build, labelled so. Both are kept only if their resources
fit the board's caps and the board can host their engines. Small enough to enumerate
exhaustively: a few thousand points, priced in microseconds each by the search.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.engine import (
    EngineDesign,
    Resources,
    engine_resources,
    fabric_key,
    link_limit_error,
)
from dse.model.evidence import beyond_mhz, plan_mhz
from dse.model.fabric import speed_grade, supported_clock
from dse.model.msg import Msg, msg
from dse.model.packing import DENSE_BYTES_PER_WEIGHT, PACKINGS
from dse.model.template import EngineTemplate, design_violations, mark_buildable
from dse.model.units import kinds


@dataclass(frozen=True)
class DesignSpace:
    """The values each design parameter may take.

    With ``template`` set, ``stream_bits`` is derived (PE x row chunk bits), ``simds`` are the
    template's legal SIMDs for each PE and packing (``simds`` here filters them when given),
    ``engines`` is 1..the most the flow builds on the board, and packings and PEs are
    intersected with the template's.
    """

    packings: tuple[str, ...] = tuple(PACKINGS)
    pes: tuple[int, ...] = (4, 8, 16, 32, 64)
    simds: tuple[int, ...] = (8, 16, 32, 64, 128)
    engines: tuple[int, ...] = (1, 2, 4)
    stream_bits: tuple[int, ...] = (64, 128, 256)
    vectors: tuple[int, ...] = (1,)
    #: Vectors answered per clock (VPC; each at most the design's VMAX). With a template: the
    #: template's values for each PE, filtered by these when given.
    vpcs: tuple[int, ...] = (1,)
    #: The lm_head is bf16 in BitNet; an int8 head re-quantizes it (accuracy unchecked), so it
    #: is offered only when asked for (``dse explore --int8-head``).
    heads: tuple[str | None, ...] = (None, "bf16")
    template: EngineTemplate | None = None

    def size(self) -> int:
        if self.template is not None:
            shapes = sum(len(self.template.lane_shapes(p)) for p in self.packings)
            return (shapes * self.template.max_engines * len(self.vectors)
                    * len(self.template.vpc_values) * len(self.heads) * 2)
        return (len(self.packings) * len(self.pes) * len(self.simds) * len(self.engines)
                * len(self.stream_bits) * len(self.vectors) * len(self.vpcs) * len(self.heads)
                * 2)


#: Vectors held per pass (VMAX) the search tries for prompts: powers of two (a prompt group G
#: is at most VMAX; the search chooses G among them too, ``dse.search.optimize``).
PROMPT_VMAX = (1, 2, 4, 8, 16, 32)
#: Vectors answered per clock of the free grid (what-ifs): one, or two as the published
#: KV260 design.
FREE_VPCS = (1, 2)


def default_space(phase_kind: str, int8_head: bool = False,
                  template: EngineTemplate | None = None, sequences: int = 1,
                  prompt_group: int | None = None) -> DesignSpace:
    """Vectors per pass (VMAX) and per clock (VPC) only matter when a weight pass carries more
    than one vector: a round of ``sequences`` (an objective without a prompt, ``phase_kind``
    decode, throughput, energy or edp: VMAX = the round, the least that holds it in one pass)
    or a prompt in groups (any other kind: VMAX among ``PROMPT_VMAX`` from the round up, at
    least the fixed ``prompt_group``).

    With a template: only what the overlay builds (its packings, PEs and VPCs, no dense head
    unit: the shipped overlay has none, so the lm_head stays on the CPU).
    """
    if phase_kind in ("decode", "throughput", "energy", "edp"):
        vectors: tuple[int, ...] = (sequences,)
    else:
        least = max(sequences, prompt_group or 1)
        vectors = tuple(sorted({least, *(v for v in PROMPT_VMAX if v >= least)}))
    batched = max(vectors) > 1
    if template is not None:
        vectors = tuple(v for v in vectors
                        if template.vmax_range[0] <= v <= template.vmax_range[1])
        return DesignSpace(packings=tuple(p.name for p in template.packings),
                           pes=template.pe_values, simds=(), engines=(),
                           stream_bits=(), vectors=vectors, heads=(None,), template=template,
                           vpcs=() if batched else (1,))
    heads: tuple[str | None, ...] = (None, "bf16", "int8") if int8_head else (None, "bf16")
    return DesignSpace(vectors=vectors, heads=heads, vpcs=FREE_VPCS if batched else (1,))


def head_macs_for(board: Board, clock_mhz: float, head: str) -> int:
    """MACs a dense head unit needs to keep up with DDR (power of two, at least 16)."""
    per_cycle = board.ddr_bytes_per_s / (clock_mhz * 1e6) / DENSE_BYTES_PER_WEIGHT[head]
    return max(16, 2 ** math.ceil(math.log2(max(1.0, per_cycle))))


def evidence_clock(board: Board, c: CostConstants) -> float | None:
    """The highest clock the evidence supports for an engine on ``board`` (at the lowest
    utilization; a fuller plan may support less): the clock step the search adds."""
    if c.fabric is None:
        return None
    depth = (min(p.logic_levels for p in c.fabric.engine.points)
             if c.fabric.engine is not None else 0)
    return supported_clock(c.fabric, board.family, speed_grade(board.part),
                           {"engine": (depth, 1)}, 0.0).mhz


def clock_steps(board: Board, top: float, c: CostConstants | None) -> list[float]:
    """The PL clocks the search tries: the board's typical, the template's and board's top,
    and the highest the clock evidence supports (all at most ``top``)."""
    steps = {min(board.clock.typical_mhz, top), top}
    ev = evidence_clock(board, c) if c is not None else None
    if ev is not None:
        steps.add(min(ev, top))
    return sorted(steps)


def _template_grid(board: Board, space: DesignSpace, max_k: int,
                   c: CostConstants | None = None) -> Iterator[EngineDesign]:
    """Every point of template x board, before the template marks it (``mark_buildable``:
    buildable with its make line, or the rule it breaks)."""
    t = space.template
    assert t is not None
    top = t.clock_limit_mhz(board.clock.max_mhz)
    clocks = clock_steps(board, top, c)
    most = t.engines_for(board.family, board.link.hp_ports)
    engines = [e for e in range(1, most + 1) if not space.engines or e in space.engines]
    for packing in space.packings:
        if t.packing(packing) is None:
            continue
        for pe, simd in t.lane_shapes(packing):
            if pe not in space.pes or (space.simds and simd not in space.simds):
                continue
            bits = t.stream_bits(pe, simd, packing)
            vpcs = [v for v in t.vpc_for(pe) if not space.vpcs or v in space.vpcs]
            for clock in clocks:
                for n_eng in engines:
                    for vectors in space.vectors:
                        for vpc in (v for v in vpcs if v <= vectors):
                            for head in space.heads:
                                yield EngineDesign(
                                    pe=pe, simd=simd, packing=packing, clock_mhz=clock,
                                    engines=n_eng, vectors=vectors, stream_bits=bits,
                                    max_k=max_k, head=head,
                                    head_macs=head_macs_for(board, clock, head) if head else 0,
                                    vectors_per_clock=vpc)


def _free_points(board: Board, space: DesignSpace, max_k: int) -> Iterator[EngineDesign]:
    """The model's free grid: what-ifs (nothing says the overlay builds them)."""
    clocks = sorted({board.clock.typical_mhz, board.clock.max_mhz})
    for packing in space.packings:
        for clock in clocks:
            for engines in space.engines:
                for bits in space.stream_bits:
                    for pe in space.pes:
                        for simd in space.simds:
                            for vectors in space.vectors:
                                for vpc in (v for v in space.vpcs if v <= vectors):
                                    for head in space.heads:
                                        yield EngineDesign(
                                            pe=pe, simd=simd, packing=packing, clock_mhz=clock,
                                            engines=engines, vectors=vectors, stream_bits=bits,
                                            max_k=max_k, head=head, vectors_per_clock=vpc,
                                            head_macs=(head_macs_for(board, clock, head)
                                                       if head else 0),
                                            build_note="what-if: no engine template checked it")


def enumerate_designs(board: Board, c: CostConstants, space: DesignSpace, max_k: int
                      ) -> tuple[list[EngineDesign], int]:
    """Every design of ``space`` that fits ``board`` at a clock the evidence supports (with
    fabric evidence in force: ``dse.model.evidence.plan_clock`` of its engines alone; the
    PL units' own check is the search's, ``Prepared.clock_ok``); also the count rejected."""
    designs, rejected, _ = priced_designs(board, c, space, max_k)
    return designs, rejected


def priced_designs(board: Board, c: CostConstants, space: DesignSpace, max_k: int
                   ) -> tuple[list[EngineDesign], int, dict[EngineDesign, Resources]]:
    """``enumerate_designs`` with each kept design's resources (``engine_resources``), which
    the search would otherwise price again. A point's fabric and the clock its engines'
    evidence supports do not depend on its clock, so each is priced once per clock step's
    worth of points; a template point is marked (``mark_buildable``: its make line) only
    when kept."""
    t = space.template
    points = (_template_grid(board, space, max_k, c) if t is not None
              else _free_points(board, space, max_k))
    out: list[EngineDesign] = []
    kept: dict[EngineDesign, Resources] = {}
    fabric: dict[tuple, tuple[Resources, bool]] = {}  # and whether it overflows the caps
    clocks: dict[tuple, float | None] = {}
    rejected = 0
    for d in points:
        fkey = fabric_key(d)
        hit = fabric.get(fkey)
        if hit is None:
            res = engine_resources(d, board, c)
            hit = fabric[fkey] = (res, bool(res.overflow(board)))
        res, over = hit
        if link_limit_error(d, board) or over:
            rejected += 1
            continue
        why = None if t is None else design_violations(t, d, board)
        buildable = d.buildable if why is None else not why
        if c.fabric is not None and buildable:
            ckey = (d.rtl, d.packing, d.engines, res.lut)
            if ckey not in clocks:
                clocks[ckey] = plan_mhz(d, (), board, c, res)
            if beyond_mhz(d.clock_mhz, clocks[ckey]):
                rejected += 1
                continue
        if t is not None:
            d = mark_buildable(t, d, board, why)
        out.append(d)
        kept[d] = res
    return out, rejected, kept


def clock_what_if(design: EngineDesign, board: Board, top: float, supported: float | None
                  ) -> EngineDesign | None:
    """``design`` at the template's and board's top clock when that is beyond what the
    evidence supports: a labelled what-if (never the recommendation), else None."""
    if supported is None or top <= supported + 1e-9 or design.clock_mhz >= top:
        return None
    return replace(design, clock_mhz=top, buildable=False,
                   build_note=f"what-if: clock {top:g} MHz: beyond the clock evidence "
                   f"({supported:g} MHz)")



#: What the shipped overlay lacks that the model can price: each what-if plan is the best
#: buildable design plus one of these, labelled as such and never ranked first.
WHAT_IFS = (
    ("what-if: head unit", msg("why.whatif.head", "the best buildable design plus a dense "
                               "bf16 lm_head unit (DSP MACs), which the overlay does not have")),
    ("what-if: on-chip weights", msg("why.whatif.resident", "the best buildable design plus "
                                     "an on-chip weight buffer (URAM/BRAM residency), which "
                                     "the overlay does not have")),
)


def what_if_designs(design: EngineDesign, board: Board) -> list[tuple[str, EngineDesign, Msg]]:
    """(label, design, why) of each what-if of ``design`` (marked not buildable, with the
    rule it breaks)."""
    head = replace(design, head="bf16",
                   head_macs=head_macs_for(board, design.clock_mhz, "bf16"))
    resident = replace(design, buildable=False, build_note="what-if: resident weights: the "
                       "overlay has no on-chip weight buffer")
    return [(label, d, why) for (label, why), d in zip(WHAT_IFS, (head, resident),
                                                          strict=True)]


def unit_choices(template: EngineTemplate | None, board: Board, cfg,
                 exclude: tuple[str, ...] = ()):
    """The PL units the search may add for a model on a board: for every registered kind, the
    builds its module offers from the template's section (``UnitKind.candidates``: e.g. 1 to
    4 attention units, each marked buildable or a what-if naming the rule it breaks); kinds in
    ``exclude`` not at all."""
    from dse.search.optimize import UnitChoice

    out = []
    for kind in kinds():
        if kind.name in exclude:
            continue
        section = None if template is None else template.unit_section(kind.name)
        options = tuple(kind.candidates(section, board, cfg))
        if options:
            out.append(UnitChoice(kind.name, options))
    return tuple(out)
