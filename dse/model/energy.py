"""Energy of a forward: which device is busy for how long, and how many bytes move.

The board's power model (``Board.power``, sourced in the board file) gives the idle board, a
busy CPU core, a byte moved to or from DDR, PL resources at rest and PL logic toggling. A
forward's energy is

    E = (idle + PL static) x T  +  core_w x core-seconds  +  e_ddr x DDR bytes
        + PL dynamic x PL busy seconds

where T is the forward's time, core-seconds sum the CPU cores each operator keeps busy (the
PS also waits on every accelerator call, one core polling), DDR bytes are the weights, KV-cache
and DMA traffic (activations of the CPU's own operators stay in its caches), and the PL
toggles while a call streams. Every term is additive, so the search can price it per group.
Pure functions; ``None`` where the board has no power model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.errors import DseError
from dse.model.board import Board, Power
from dse.model.engine import Resources


@dataclass(frozen=True)
class Work:
    """What a piece of a forward keeps busy: seconds, core-seconds, DDR bytes, PL seconds."""

    time_s: float = 0.0
    core_s: float = 0.0
    ddr_bytes: float = 0.0
    pl_busy_s: float = 0.0

    def __add__(self, other: Work) -> Work:
        return Work(self.time_s + other.time_s, self.core_s + other.core_s,
                    self.ddr_bytes + other.ddr_bytes, self.pl_busy_s + other.pl_busy_s)


@dataclass(frozen=True)
class Energy:
    """Energy of one forward (all sequences), its parts, and the rates that follow."""

    time_s: float
    tokens: int
    parts_j: dict[str, float]

    @property
    def joules(self) -> float:
        return sum(self.parts_j.values())

    @property
    def watts(self) -> float:
        return self.joules / self.time_s if self.time_s > 0 else 0.0

    @property
    def j_per_token(self) -> float:
        return self.joules / self.tokens if self.tokens else math.inf

    @property
    def tokens_per_j(self) -> float:
        return self.tokens / self.joules if self.joules > 0 else math.inf


def require_power(board: Board, what: str = "energy") -> Power:
    """The board's power model, or a one-line error naming the file and field."""
    if board.power is None:
        raise DseError(f"{board.path or board.name}: power: expected a power model (idle_w, "
                       f"ps_core_active_w, ddr_pj_per_byte, ...) to price {what}, the board "
                       f"file has none")
    return board.power


def static_w(power: Power, res: Resources) -> float:
    """Board power at rest with the plan's bitstream: idle plus URAM/BRAM leakage."""
    return power.idle_w + res.uram * power.pl_static_w_per_uram + (
        res.bram36 * power.pl_static_w_per_bram36)


def pl_dynamic_w(power: Power, res: Resources, clock_mhz: float) -> float:
    """PL logic toggling at the engine's clock (the board's toggle-rate assumption)."""
    return (res.lut / 1000 * power.pl_dynamic_w_per_klut_100mhz
            + res.dsp * power.pl_dynamic_w_per_dsp_100mhz) * clock_mhz / 100.0


def energy_parts(power: Power, work: Work, rest_w: float, dyn_w: float) -> dict[str, float]:
    """Joules of ``work`` by part, with the bitstream's power at rest split out."""
    return {"idle": power.idle_w * work.time_s,
            "pl_static": (rest_w - power.idle_w) * work.time_s,
            "ps_cores": power.ps_core_active_w * work.core_s,
            "ddr": power.ddr_pj_per_byte * 1e-12 * work.ddr_bytes,
            "pl_dynamic": dyn_w * work.pl_busy_s}


def rates(power: Power, res: Resources, clock_mhz: float) -> tuple[float, float, float, float]:
    """Joules per unit of each ``Work`` column on a plan with resources ``res`` (per second
    of the forward, per core-second, per DDR byte, per PL busy second): the one place the
    energy of a forward is priced, as ``energy_parts`` splits it and the search sums it."""
    return (static_w(power, res), power.ps_core_active_w, power.ddr_pj_per_byte * 1e-12,
            pl_dynamic_w(power, res, clock_mhz))


def energy_j(power: Power, work: Work, rest_w: float, dyn_w: float) -> float:
    return sum(energy_parts(power, work, rest_w, dyn_w).values())


def energy_of(power: Power, work: Work, res: Resources, clock_mhz: float, tokens: int
              ) -> Energy:
    """The Energy of a forward's total ``work`` on a plan with resources ``res``."""
    return Energy(work.time_s, tokens, energy_parts(power, work, static_w(power, res),
                                                    pl_dynamic_w(power, res, clock_mhz)))
