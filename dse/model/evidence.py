"""What a plan's fabric and clock rest on: the resource basis and the clock evidence, per plan.

Every resource figure is labelled with its basis (synthesized and scaled to Vivado, published
Vivado rows, or estimated), and a plan's PL clock is checked against what the published
closures support for the unit kinds it holds at its utilization (``dse.model.fabric.
supported_clock``): a clock above it is a what-if, never a recommendation. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.engine import EngineDesign, Resources, engine_flow, synthesized_engine
from dse.model.fabric import ClockSupport, speed_grade, supported_clock, supported_mhz


@dataclass(frozen=True)
class PlanEvidence:
    """A plan's resource basis (one line) and its clock check: the clock the evidence
    supports, and whether the plan's clock is beyond it (a what-if)."""

    resource_basis: str
    clock: ClockSupport
    beyond: bool
    #: The engines' basis in a word: synthesized (our RTL), published-rtl, estimated.
    engine_basis: str = "estimated"

    @property
    def clock_line(self) -> str:
        if self.clock.mhz is None:
            return f"no clock evidence: {self.clock.evidence}"
        return f"supported up to {self.clock.mhz:g} MHz: {self.clock.evidence}"


def unit_kinds(design: EngineDesign, units: tuple, c: CostConstants
               ) -> dict[str, tuple[int, int]]:
    """The unit kinds of a plan: (our synthesized logic depth, 0 when not known or the RTL is
    the closed design's own; how many the plan holds) of each."""
    fab = c.fabric
    depth = 0
    if fab is not None and fab.engine is not None and design.rtl == "ternary_gemv":
        code = 1 if design.packing == "base3" else 0
        depth = fab.engine.memo.get(("depth", code))
        if depth is None:  # once per loaded evidence and packing (asked per design)
            depth = fab.engine.memo[("depth", code)] = max(
                (p.logic_levels for p in fab.engine.points if p.p("PACKING") == code),
                default=fab.engine.logic_levels)
    kinds = {"engine": (depth, design.engines)}
    for u in units:
        d = 0
        if u.kind == "attention" and fab is not None and fab.attention is not None:
            d = fab.attention.logic_levels
        kinds[u.kind] = (d, u.count)
    return kinds


def plan_clock(design: EngineDesign, units: tuple, board: Board, c: CostConstants,
               res: Resources) -> ClockSupport:
    """The clock the evidence supports for the plan on ``board`` at its LUT utilization."""
    fab = c.fabric
    if fab is None:
        return ClockSupport(None, "no fabric evidence loaded")
    util = res.lut / board.pl.lut if board.pl.lut else 1.0
    return supported_clock(fab, board.family, speed_grade(board.part),
                           unit_kinds(design, units, c), util)


def plan_mhz(design: EngineDesign, units: tuple, board: Board, c: CostConstants,
             res: Resources) -> float | None:
    """``plan_clock(...).mhz`` without its wording (None without fabric evidence too). It
    reads the design's RTL, packing and engine count, not its clock."""
    fab = c.fabric
    if fab is None:
        return None
    util = res.lut / board.pl.lut if board.pl.lut else 1.0
    return supported_mhz(fab, board.family, speed_grade(board.part),
                         unit_kinds(design, units, c), util)


def resource_basis(design: EngineDesign, units: tuple, c: CostConstants) -> str:
    """One line: what each part of the plan's fabric figures rests on."""
    fab = c.fabric
    if fab is None:
        return "estimated: the resource constants of dse/model/constants.py (no fabric evidence)"
    rel = fab.relation
    scaled = (f"scaled to Vivado x{rel.lut:.3f} LUT, x{rel.ff:.3f} FF (relation: {rel.module}, "
              f"{rel.fit_design} rows, spread {rel.lut_range[0]:.3f}-{rel.lut_range[1]:.3f} LUT)")
    parts = []
    if synthesized_engine(design, c) is None:
        parts.append("engines estimated (no synthesis of this RTL/packing)")
    elif design.rtl != "ternary_gemv":
        parts.append(f"engines: the {design.rtl} RTL synthesized ({rel.tool}), {scaled}")
    else:
        e = fab.engine
        parts.append(f"engines synthesized ({e.tool}, {e.date}; fit over {len(e.points)} points), "
                     f"{scaled}; memories by Vivado's inference rules")
    flow = fab.flow(engine_flow(design, c))
    parts.append(f"infrastructure ({flow.name} flow): published Vivado IP rows"
                 + (f" (estimated where our configuration differs: {flow.differs})"
                    if flow.differs else ""))
    for u in units:
        if u.kind == "attention":
            parts.append("attention: " + (f"synthesized ({fab.attention.tool}), scaled"
                                          if fab.attention is not None else "estimated"))
        elif u.kind == "glue":
            parts.append("glue: the published unit's Vivado rows")
        else:
            parts.append(f"{u.kind}: estimated")
    if design.head or design.resident_bytes:
        parts.append("head unit / resident buffer: estimated")
    return "; ".join(parts)


def clock_beyond(design: EngineDesign, clock: ClockSupport, c: CostConstants) -> bool:
    """Whether the design's clock is beyond what the evidence supports (``clock``, from
    ``plan_clock``): a what-if. The search asks only this of most designs, without the
    resource basis's wording."""
    return c.fabric is not None and beyond_mhz(design.clock_mhz, clock.mhz)


def beyond_mhz(clock_mhz: float, supported: float | None) -> bool:
    """Whether a clock is beyond the clock the evidence supports (None: no evidence speaks
    for it, so any clock is)."""
    return supported is None or clock_mhz > supported + 1e-9


def plan_evidence(design: EngineDesign, units: tuple, board: Board, c: CostConstants,
                  res: Resources) -> PlanEvidence:
    clock = plan_clock(design, units, board, c, res)
    beyond = clock_beyond(design, clock, c)
    basis = ("estimated" if synthesized_engine(design, c) is None else
             "synthesized" if design.rtl == "ternary_gemv" else "published-rtl")
    return PlanEvidence(resource_basis(design, units, c), clock, beyond, basis)
