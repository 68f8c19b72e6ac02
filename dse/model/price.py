"""The price table of a forward: every option of every accelerator call, and the fixed rest.

One home for how a plan's parts add up. A forward's Linears fall into *groups* (one accelerator
call each: q/k/v, gate/up, or a single layer); each group can stay on the CPU, stream its
weights through the engines, or keep them on chip. Everything else (norms, attention, the PL
units' own work, ...) is the *fixed* rest, itemised as ``OpProjection`` parts. The activation
quantization instances sit between: a runtime that quantizes for its own kernels pays every
one (``quant_always``), otherwise one is paid when a group it feeds is offloaded.

``project`` builds the table for a plan and sums what the plan chose; the search builds the
same table for every design (weighted over the objective's scenarios) and lets the MILP
choose. Rows are work vectors ``[seconds, core-seconds, DDR bytes, PL seconds]`` (``Work``),
so time, energy and the energy-delay product come from one table. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from dse.model.energy import Work
from dse.model.msg import Msg
from dse.model.parts import OpProjection
from dse.model.units.base import PLUnit, UnitEnv
from dse.model.workload import Layer

#: Columns of a work row.
T, CORE, DDR, PL = range(4)


def row(w: Work) -> np.ndarray:
    return np.array([w.time_s, w.core_s, w.ddr_bytes, w.pl_busy_s])


def work(r: np.ndarray) -> Work:
    return Work(float(r[T]), float(r[CORE]), float(r[DDR]), float(r[PL]))


@dataclass(frozen=True)
class Group:
    """Layers run as one accelerator call (they share one input)."""

    key: str
    layers: tuple[Layer, ...]

    @property
    def n(self) -> int:
        return sum(layer.n for layer in self.layers)

    @property
    def k(self) -> int:
        return self.layers[0].k

    @property
    def ternary(self) -> bool:
        return self.layers[0].ternary

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @cached_property
    def roles(self) -> frozenset[str]:
        return frozenset(layer.role for layer in self.layers)


def group_layers(layers: list[Layer], fuse: bool) -> tuple[Group, ...]:
    """Layers grouped into accelerator calls (fused groups share one input)."""
    calls: dict[str, list[Layer]] = {}
    for layer in layers:
        key = layer.fuse_key if fuse and layer.ternary else layer.name
        calls.setdefault(key, []).append(layer)
    return tuple(Group(key, tuple(ls)) for key, ls in calls.items())


@dataclass(frozen=True)
class PsPrices:
    """What the PS costs under one runtime for one scenario, before any design: each group's
    Linears on the CPU (``linears`` per layer, ``cpu`` per group), each activation
    quantization instance (``quant``, an instance of the op ``quant_role`` names) and the
    groups it ``feeds``, the runtime's launch of one accelerator call, every other operator
    priced whole (``ops``, in the forward's order, the quantization classes among them), and
    the groups that do no work in the scenario (``idle``: the head of a forward without
    logits; no call, no launch, wherever they are placed)."""

    runtime: str
    groups: tuple[Group, ...]
    linears: tuple[tuple[Work, ...], ...]
    cpu: np.ndarray
    quant: np.ndarray
    quant_role: tuple[str, ...]
    feeds: np.ndarray
    quant_always: bool
    launch: np.ndarray
    ops: tuple[OpProjection, ...]
    idle: np.ndarray | None = None

    @cached_property
    def launches(self) -> np.ndarray:
        """The launch each group's call pays (none for an idle group: it makes no call), as
        ``price_table`` adds it (once per prices: the search builds many tables on them)."""
        return self.launch if self.idle is None else np.where(self.idle[:, None], 0.0,
                                                               self.launch)


@dataclass(frozen=True)
class Fixed:
    """A set of PL units in place on one ``PsPrices``: the fixed rest (``kept``: the PS
    operators no unit takes, quantization aside; ``parts``: each unit's own; ``row`` their
    sum), the groups the units need on the engines, the quantization instances still paid,
    the operators each unit took (shown on the PL at no PS time) and why a unit cannot run
    the scenario."""

    kept: tuple[OpProjection, ...]
    parts: tuple[OpProjection, ...]
    #: The kind of the unit each part is of.
    part_kinds: tuple[str, ...]
    row: np.ndarray
    required: np.ndarray
    quant_kept: np.ndarray
    taken: tuple[tuple[OpProjection, PLUnit], ...]
    infeasible: tuple[Msg, ...]
    #: The quantization still paid (``ps.quant`` with the taken instances at 0), and folded
    #: for ``PriceTable.linear``: per group it feeds, and into the fixed rest.
    quant: np.ndarray
    quant_group: np.ndarray
    quant_fixed: np.ndarray


def fixed_side(ps: PsPrices, units: tuple[PLUnit, ...], env: UnitEnv) -> Fixed:
    """Put ``units`` in place: every operator a unit takes leaves the PS (a quantization class
    taken leaves with all its instances), each unit adds its parts, and the groups holding a
    Linear a unit needs must run on the engines."""
    kept: list[OpProjection] = []
    taken: list[tuple[OpProjection, PLUnit]] = []
    for op in ps.ops:
        unit = next((u for u in units if u.takes(op.role, op.kind)), None)
        if unit is not None:
            taken.append((op, unit))
        elif op.kind != "quant":
            kept.append(op)
    gone = {op.role for op, _ in taken}
    quant_kept = np.array([r not in gone for r in ps.quant_role], dtype=bool)
    own = [(p, u.kind) for u in units for p in u.parts(env)]
    parts = tuple(p for p, _ in own)
    total = np.zeros(4)
    for op in (*kept, *parts):
        total = total + row(op.work)
    needs = frozenset().union(*(u.needs for u in units)) if units else frozenset()
    required = (np.array([bool(g.roles & needs) for g in ps.groups], dtype=bool) if needs
                else np.zeros(len(ps.groups), dtype=bool))
    why = tuple(m for u in units for m in u.violations(env))
    quant = np.where(quant_kept[:, None], ps.quant, 0.0) if len(ps.quant) else ps.quant
    qgroup, qfixed = _fold_quant(quant, ps.feeds, ps.quant_always)
    return Fixed(tuple(kept), parts, tuple(k for _, k in own), total, required, quant_kept,
                 tuple(taken), why, quant, qgroup, qfixed)


def _fold_quant(quant: np.ndarray, feeds: np.ndarray, always: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """Quantization instances as independent options: (per group, into the fixed rest). A
    runtime that quantizes for its own kernels pays every instance whatever is offloaded (all
    fixed); otherwise an instance goes with the one group it feeds (None where it feeds
    several: unfused calls, which only ``PriceTable.total`` prices exactly) or, feeding none,
    is never paid."""
    groups = feeds.shape[1]
    if not len(quant):
        return np.zeros((groups, 4)), np.zeros(4)
    if always:
        return np.zeros((groups, 4)), quant.sum(axis=0)
    if (feeds.sum(axis=1) > 1).any():
        return np.full((groups, 4), np.nan), np.zeros(4)
    return feeds.T.astype(float) @ quant, np.zeros(4)


@dataclass(frozen=True)
class PriceTable:
    """Every option of every group and the fixed rest of one forward (or of the objective's
    scenarios, weighted), as work rows.

    ``stream`` / ``resident``: the group as an engine call with its weights streamed / on chip,
    the runtime's launch and what the call adds on the PS (stage 2 of a two-stage head)
    included; inf where the option does not exist. ``required`` groups must run on the
    engines (a unit needs them)."""

    groups: tuple[Group, ...]
    cpu: np.ndarray
    stream: np.ndarray
    resident: np.ndarray
    quant: np.ndarray
    feeds: np.ndarray
    quant_always: bool
    fixed: np.ndarray
    required: np.ndarray
    #: ``quant`` folded for ``linear`` (``Fixed.quant_group``, ``Fixed.quant_fixed``).
    quant_group: np.ndarray
    quant_fixed: np.ndarray

    def quant_paid(self, offloaded: np.ndarray) -> np.ndarray:
        """Which quantization instances are paid when ``offloaded`` groups run on the PL."""
        if self.quant_always:
            return np.ones(len(self.quant), dtype=bool)
        return (self.feeds & offloaded[None, :]).any(axis=1) if len(self.quant) else \
            np.zeros(0, dtype=bool)

    def total(self, stream: np.ndarray, resident: np.ndarray) -> np.ndarray:
        """The forward's work row when ``stream`` groups stream and ``resident`` groups keep
        their weights on chip (the rest on the CPU); a required group left on the CPU costs
        inf."""
        cpu = ~(stream | resident)
        out = self.fixed + (np.where(stream[:, None], self.stream, 0.0).sum(axis=0)
                            + np.where(resident[:, None], self.resident, 0.0).sum(axis=0)
                            + np.where(cpu[:, None], self.cpu, 0.0).sum(axis=0))
        if (cpu & self.required).any():
            out = out + np.inf
        paid = self.quant_paid(stream | resident)
        return out + self.quant[paid].sum(axis=0)

    def linear(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cpu, stream, resident, fixed) with every quantization instance folded into the one
        group it feeds (or into the fixed rest, where the runtime pays it anyway) and required
        groups' CPU option at inf: the table as independent per-group options, whose sum over
        any choice equals ``total``. Needs each instance to feed exactly one group (groups
        fused by shared input, as the search forms them)."""
        if np.isnan(self.quant_group).any():
            raise ValueError("PriceTable.linear: a quantization instance feeds several groups "
                             "(unfused calls); use total()")
        cpu = self.cpu
        stream, res = self.stream + self.quant_group, self.resident + self.quant_group
        fixed = self.fixed + self.quant_fixed
        if self.required.any():
            cpu = np.where(self.required[:, None], np.inf, cpu)
        return cpu, stream, res, fixed

    def scaled(self, w: float) -> PriceTable:
        if w == 1.0:
            return self
        return PriceTable(self.groups, self.cpu * w, self.stream * w, self.resident * w,
                          self.quant * w, self.feeds, self.quant_always, self.fixed * w,
                          self.required, self.quant_group * w, self.quant_fixed * w)

    def __add__(self, other: PriceTable) -> PriceTable:
        """Two scenarios' tables of the same groups, added (a weighted objective)."""
        return PriceTable(self.groups, self.cpu + other.cpu, self.stream + other.stream,
                          self.resident + other.resident, self.quant + other.quant,
                          self.feeds, self.quant_always, self.fixed + other.fixed,
                          self.required | other.required, self.quant_group + other.quant_group,
                          self.quant_fixed + other.quant_fixed)


def fixed_row(fx: Fixed) -> np.ndarray:
    """``PriceTable.linear``'s fixed rest of any ``price_table(ps, fx, ...)``, without building
    the groups: what changes between unit sets that need the same groups."""
    return fx.row + fx.quant_fixed


def price_table(ps: PsPrices, fx: Fixed, stream: np.ndarray, resident: np.ndarray | None = None
                ) -> PriceTable:
    """Assemble the table: ``stream`` / ``resident`` are each group's engine call without the
    runtime's launch (``call_work`` of ``call_cost`` at launch 0) plus what it adds on the PS;
    the launch is the runtime's, added here once per call (not to an idle group's: it makes
    no call)."""
    launch = ps.launches
    stream = stream + launch
    resident = (np.full_like(stream, np.inf) if resident is None else resident + launch)
    return PriceTable(ps.groups, ps.cpu, stream, resident, fx.quant, ps.feeds,
                      ps.quant_always, fx.row, fx.required, fx.quant_group, fx.quant_fixed)
