"""A priced part of a forward that is not a Linear: an operator on the PS, or a PL unit's work.

``OpProjection`` is the currency between the devices that price a forward's operators (the CPU
under a runtime, ``dse.model.cpu``; a PL unit, ``dse.model.units``), the price table that adds
them up (``dse.model.price``) and the reports that show them. It lives here, below all of them,
so that a unit kind can return its parts without importing the projection. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dse.model.energy import Work
from dse.model.msg import Msg


@dataclass(frozen=True)
class OpProjection:
    """One non-Linear operator class (or a PL unit's share of the forward) on its device (ms
    per forward), and what its time rests on: measured and moved, or a roofline / kernel model.

    ``component`` is the per-token breakdown's row it adds to (``COMPONENTS``); ``item`` the
    finer row of ``ITEMS`` it is, if any. A part with negative time is a credit: work another
    part already does (e.g. the read-out a glue unit's shift scan takes over from the calls'
    hand-off), so the breakdown adds up to the plan."""

    role: str
    kind: str
    count: int
    device: str
    time_ms: float
    bound: str
    basis: Msg
    component: str
    work: Work = field(default_factory=Work)
    item: str | None = None
