"""The parameters a plan's projection is most uncertain in, and how to move each (pure).

A sensitivity row re-projects the same plan with one parameter scaled. The parameter must be
one the plan's devices actually read, or the row says 0.00x about nothing: the launch an
accelerator call pays is the PS runtime's own (``dse.model.cost.launch_us``: a C driver's
``native_call_overhead_us`` under ``native``, the board's Python ``per_call_overhead_us``
under ``torch``), the PL clock is the engines' and every unit's, DDR efficiency is what the
PL's streams reach.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from dse.model.project import CostContext, Plan


@dataclass(frozen=True)
class Parameter:
    """A parameter of the model and how to scale it for one plan."""

    name: str
    apply: Callable[[CostContext, Plan, float], tuple[CostContext, Plan]]


def _ddr_efficiency(ctx: CostContext, plan: Plan, f: float) -> tuple[CostContext, Plan]:
    b = ctx.board
    board = b.model_copy(update={"ddr": b.ddr.model_copy(
        update={"pl_efficiency": min(1.0, b.ddr.pl_efficiency * f)})})
    return replace(ctx, board=board), plan


def _clock(ctx: CostContext, plan: Plan, f: float) -> tuple[CostContext, Plan]:
    return ctx, replace(plan, design=replace(plan.design, clock_mhz=plan.design.clock_mhz * f))


def _launch(ctx: CostContext, plan: Plan, f: float) -> tuple[CostContext, Plan]:
    """The launch the plan's runtime pays per call (the one ``launch_us`` reads)."""
    if plan.runtime == "native":
        c = ctx.constants
        return replace(ctx, constants=replace(
            c, native_call_overhead_us=c.native_call_overhead_us * f)), plan
    b = ctx.board
    board = b.model_copy(update={"link": b.link.model_copy(
        update={"per_call_overhead_us": b.link.per_call_overhead_us * f})})
    return replace(ctx, board=board), plan


PARAMETERS = (Parameter("DDR efficiency", _ddr_efficiency),
              Parameter("engine clock", _clock),
              Parameter("per-call overhead", _launch))
