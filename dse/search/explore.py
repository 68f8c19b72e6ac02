"""The explore stage: search the design space, rank plans, Pareto fronts, sensitivity.

``explore`` is pure: it takes a workload, a cost context and an objective and returns an
``ExploreResult`` that the report writers and the JSON export read. Progress is reported
through an optional callback so the CLI can draw a bar without the search printing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from dse.errors import DseError
from dse.model.band import (
    Bands,
    Interval,
    ProjectionBand,
    bands_of,
    forwards_band,
    objective_band,
    plan_band,
)
from dse.model.board import Board
from dse.model.engine import EngineDesign
from dse.model.evidence import plan_evidence
from dse.model.msg import Msg, msg
from dse.model.project import (
    CostContext,
    Plan,
    Projection,
    Scenario,
    baselines,
    project,
    project_total,
)
from dse.model.sensitivity import PARAMETERS
from dse.model.validation import Validation
from dse.search.optimize import (
    DesignEval,
    Objective,
    Prepared,
    Solution,
    best_of,
    evaluate_designs,
    prepare,
    projection_units,
    solve_plan,
    unit_sets,
)
from dse.search.space import (
    DesignSpace,
    clock_what_if,
    default_space,
    head_macs_for,
    priced_designs,
    unit_choices,
    what_if_designs,
)

if TYPE_CHECKING:  # only --reference needs them: imported then (dse.search.reference)
    from dse.model.measurement_log import MeasurementLog
    from dse.search.reference import ReferenceSplit

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RankedPlan:
    """A plan with its projections for every scenario of the objective."""

    label: str
    plan: Plan
    projections: tuple[Projection, ...]
    objective_ms: float
    baseline_ms: float
    method: Msg
    why: tuple[Msg, ...] = ()
    #: Each projection's weight in the objective (the plan's own: its prompt group sets how
    #: many forwards a prompt takes).
    weights: tuple[float, ...] = ()
    #: Each CPU-only runtime's objective time, ms (``Prepared.base_times``).
    base_times: tuple[tuple[str, float], ...] = ()
    #: Each projection's figures with their bands (``dse.model.band``; empty: no validation
    #: rows in force), and the objective's band.
    bands: tuple[ProjectionBand, ...] = ()
    objective_band: Interval | None = None

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.objective_ms if self.objective_ms > 0 else math.inf

    @property
    def decode_band(self) -> ProjectionBand | None:
        """The decode projection's band (``decode``'s), if bands are in force."""
        if not self.bands:
            return None
        return next((b for p, b in zip(self.projections, self.bands, strict=True)
                     if p.scenario.phase == "decode"), self.bands[0])

    @property
    def decode(self) -> Projection:
        return next((p for p in self.projections if p.scenario.phase == "decode"),
                    self.projections[0])

    @property
    def feasible(self) -> bool:
        return all(p.feasible for p in self.projections)

    def scenario_weights(self, weights: list[float] | None = None) -> tuple[float, ...]:
        """Each projection's weight in the objective (``weights``: for a plan made without
        its own; else one each)."""
        if self.weights:
            return self.weights
        return tuple(weights) if weights is not None else (1.0,) * len(self.projections)

    @property
    def plan_ms(self) -> float:
        """The objective's time in ms as the plan runs it (its forwards, weighted)."""
        pairs = zip(self.projections, self.scenario_weights(), strict=True)
        return sum(w * p.plan_ms for p, w in pairs)

    def speedups(self, weights: list[float] | None = None) -> dict[str, float]:
        """Speedup over each CPU-only runtime: its objective time (the prompt in one forward,
        its batch) over the plan's, with the plan's own weights (``weights``: for a plan made
        without them; without the search's CPU times, each forward's own baselines)."""
        ws = self.scenario_weights(weights)
        pairs = list(zip(self.projections, ws, strict=True))
        plan = sum(w * p.plan_ms for p, w in pairs)
        if self.base_times:
            return {rt: (ms / plan if plan > 0 else math.inf) for rt, ms in self.base_times}
        return {b.runtime: (sum(w * p.baseline_of(b.runtime).ms for p, w in pairs) / plan
                            if plan > 0 else math.inf)
                for b in self.projections[0].baselines}


@dataclass(frozen=True)
class ParetoPoint:
    design: str
    lut: float
    ddr_gb_s: float
    speedup: float
    tokens_per_s: float | None = None
    j_per_token: float | None = None


@dataclass(frozen=True)
class SensitivityRow:
    parameter: str
    low_speedup: float
    base_speedup: float
    high_speedup: float

    @property
    def swing(self) -> float:
        return abs(self.high_speedup - self.low_speedup)


@dataclass(frozen=True)
class ContextCurve:
    """Decode tokens per second of one plan (or CPU baseline) against the context length.

    ``plan`` is the plan's label ("" for a CPU-only baseline), ``design`` its engine design,
    ``runtime`` the PS runtime and ``kv`` the KV-cache format of the curve (the report and
    the plots compose the curve's name in their language from these)."""

    label: str
    points: tuple[tuple[int, float], ...]
    plan: str = ""
    design: str = ""
    runtime: str = ""
    kv: str = ""
    #: The 90% band (low, high tok/s) at each point, for the best plan's curve when the
    #: search had validation rows (empty otherwise): it shows where the model extrapolates
    #: (a context beyond every measured one widens it).
    band: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class SequenceCurve:
    """Decode of a round of S sequences for one plan (or CPU baseline): (S, aggregate tok/s,
    per-sequence latency ms) for each S its engines are built to hold (VMAX = S)."""

    label: str
    points: tuple[tuple[int, float, float], ...]
    #: The parts of the label (a plot composes its own words from them): the plan's label
    #: ("" for a CPU-only baseline), its design, runtime, KV format and vectors per clock.
    plan: str = ""
    design: str = ""
    runtime: str = ""
    kv: str = ""
    vpc: int = 1


@dataclass(frozen=True)
class PromptCurve:
    """Time to first token against the prompt length for one plan (or CPU baseline):
    (prompt tokens, ms), the plan's prompt in its groups (``dse.model.prompt``)."""

    label: str
    group: int | None
    points: tuple[tuple[int, float], ...]
    #: The label's parts, as ``SequenceCurve``'s.
    plan: str = ""
    design: str = ""
    runtime: str = ""
    kv: str = ""


@dataclass(frozen=True)
class UnitCount:
    """One build of a PL unit kind (or none) beside the best plan's design, the rest of the
    plan's units as they are, solved again: how the objective moves with the kind's build and
    instance count (``objective_ms`` None: ``why_not`` says why the option cannot be used)."""

    kind: str
    label: str
    count: int
    objective_ms: float | None
    why_not: Msg | None
    chosen: bool


@dataclass(frozen=True)
class ExploreResult:
    board: Board
    objective: Objective
    calibration: str
    designs_evaluated: int
    designs_rejected: int
    plans: tuple[RankedPlan, ...]
    naive: RankedPlan
    pareto_lut: tuple[ParetoPoint, ...]
    pareto_ddr: tuple[ParetoPoint, ...]
    cloud: tuple[ParetoPoint, ...]
    sensitivity: tuple[SensitivityRow, ...]
    notes: tuple[str, ...]
    context_curves: tuple[ContextCurve, ...] = ()
    #: Designs not beaten on both decode tok/s and J/token (empty without a power model).
    pareto_energy: tuple[ParetoPoint, ...] = ()
    #: Per-token components of the fastest CPU-only runtime that fits (decode scenario),
    #: and its total.
    base_breakdown: dict[str, float] | None = None
    base_total_ms: float | None = None
    #: Time to first token of the best plan: the prefill of the objective's prompt, ms.
    ttft_ms: float | None = None
    #: The best plan next to a measured design's split (``--reference LOG``), if asked.
    reference: ReferenceSplit | None = None
    #: Every build (and count) of each PL unit kind the search offered, beside the best plan.
    unit_counts: tuple[UnitCount, ...] = ()
    #: When no plan fits the board: what would (``dse.search.advice``; set by the caller,
    #: which knows the candidate models and boards).
    advice: tuple[Msg, ...] = ()
    #: Aggregate decode tok/s against the round's sequences, and the time to first token
    #: against the prompt's length, for the top plans and the CPU-only baselines.
    sequence_curves: tuple[SequenceCurve, ...] = ()
    prompt_curves: tuple[PromptCurve, ...] = ()
    #: The best plan's time to first token with its band, and what its prompt's projection
    #: were never measured in (None, (): no validation rows in force).
    ttft_band: Interval | None = None
    ttft_flags: tuple[Msg, ...] = ()
    #: The validation rows the bands rest on (their file and sha256; "" without), and how
    #: many of them check the model (set no constant).
    validation: str = ""
    validation_rows: int = 0

    @property
    def best(self) -> RankedPlan:
        return self.plans[0]

    def equivalent(self, rp: RankedPlan) -> bool:
        """Whether ``rp``'s objective band overlaps the best plan's: the two are equivalent
        within the model's error (False without bands, and for the best plan itself)."""
        a, b = rp.objective_band, self.best.objective_band
        return (rp is not self.best and a is not None and b is not None and rp.feasible
                and a.overlaps(b))


def _project_all(prep: Prepared, plan: Plan
                 ) -> tuple[tuple[Projection, ...], float, tuple[float, ...]]:
    """The plan's projection of every scenario of the objective as it runs them (its prompt
    group), the objective's value and the weights. Each forward carries the CPU-only
    baselines of that same forward (cached per scenario)."""
    scen = prep.plan_scenarios(plan)
    projs = tuple(project(prep.workload, plan, prep.ctx, sc, base=_baselines_of(prep, sc),
                          memo=prep._cache)
                  for sc, _ in scen)
    total = sum(w * projection_units(prep.objective, proj)
                for proj, (_, w) in zip(projs, scen, strict=True))
    return projs, total, tuple(w for _, w in scen)


def _objective_of(prep: Prepared, ctx: CostContext, plan: Plan) -> float:
    """``_project_all``'s objective value of ``plan`` under ``ctx`` alone: each forward's
    ``project_total`` (the same floats as its projection's), weighted in the same order; the
    search's memo serves only its own context."""
    memo = prep._cache if ctx is prep.ctx else None
    return sum(w * projection_units(prep.objective,
                                    project_total(prep.workload, plan, ctx, sc, memo))
               for sc, w in prep.plan_scenarios(plan))


def _baselines_of(prep: Prepared, sc: Scenario):
    """The CPU-only baselines of one scenario (each runtime in its best KV format where the
    objective's own scenarios have them; cached)."""
    for (own, _), base in zip(prep.scenarios, prep.baselines, strict=True):
        if own == sc:
            return base
    key = ("baselines", sc)
    if key not in prep._cache:
        prep._cache[key] = baselines(prep.workload, prep.ctx, sc, prep._cache)
    return prep._cache[key]


def _ranked(prep: Prepared, sol: Solution, label: str, why: Msg | None = None) -> RankedPlan:
    projs, total, weights = _project_all(prep, sol.plan)
    return RankedPlan(label, sol.plan, projs, total, prep.baseline_ms, sol.method,
                      () if why is None else (why,), weights, tuple(prep.base_times.items()))


def pareto(points: list[ParetoPoint], cost: Callable[[ParetoPoint], float],
           benefit: Callable[[ParetoPoint], float] = lambda p: p.speedup
           ) -> tuple[ParetoPoint, ...]:
    """Points not dominated in (lower cost, higher benefit), by increasing cost."""
    front: list[ParetoPoint] = []
    for p in sorted(points, key=lambda p: (cost(p), -benefit(p))):
        if not front or benefit(p) > benefit(front[-1]) + 1e-12:
            front.append(p)
    return tuple(front)


def naive_plan(prep: Prepared, base_design_head: RankedPlan, board: Board) -> RankedPlan:
    """The seed report's suggestion: offload the top-5 Linear layers by measured total time."""
    wl = prep.workload
    # without a profile nothing was measured: the five largest Linears stand in for them
    top = sorted(wl.layers, key=(lambda layer: layer.measured_total_ms) if wl.measured_host
                 else (lambda layer: layer.weights), reverse=True)[:5]
    names = frozenset(layer.name for layer in top)
    design = base_design_head.plan.design
    if any(not layer.ternary for layer in top) and not design.head:
        design = replace(design, head="bf16",
                         head_macs=head_macs_for(board, design.clock_mhz, "bf16"))
    design = replace(design, resident_bytes=0)
    plan = Plan("naive top-5", design, names, note="seed report's 'offload the top-5' list",
                runtime=base_design_head.plan.runtime, kv_dtype=base_design_head.plan.kv_dtype)
    projs, total, weights = _project_all(prep, plan)
    base_times = tuple(prep.base_times.items())
    if not wl.measured_host:
        return RankedPlan("naive top-5", plan, projs, total, prep.baseline_ms,
                          msg("method.fixed_list", "fixed list"),
                          (msg("why.naive.largest", "no profile measured the layers: the 5 "
                               "largest Linears by weights"),), weights, base_times)
    measured_all = sum(layer.measured_total_ms for layer in wl.layers)
    measured_share = sum(layer.measured_total_ms for layer in top) / measured_all
    steady_share = sum(layer.host_call_ms for layer in top) / (wl.token_ms or wl.linear_call_ms)
    warm = [layer for layer in top if layer.warmup_excess_ms > 0]
    parts = [msg("why.naive.share", "the seed credits these 5 layers with {share:.1%} of "
                 "Linear time (Amdahl cap {cap:.2f}x even at zero cost)", share=measured_share,
                 cap=1 / (1 - measured_share))]
    parts += [msg("why.naive.warm", "`{name}` is a warm-up artefact ({measured:.0f} ms "
                  "measured, {steady:.0f} ms steady)", name=layer.name,
                  measured=layer.measured_total_ms, steady=layer.host_call_ms * layer.calls)
              for layer in warm]
    parts.append(msg("why.naive.steady", "at steady state they are {share:.1%} of a token, so "
                     "the cap is {cap:.3f}x", share=steady_share, cap=1 / (1 - steady_share)))
    return RankedPlan("naive top-5", plan, projs, total, prep.baseline_ms,
                      msg("method.fixed_list", "fixed list"), tuple(parts), weights, base_times)


def sensitivity(prep: Prepared, best: RankedPlan, delta: float = 0.2
                ) -> tuple[SensitivityRow, ...]:
    """Speedup of the best plan (same plan, re-projected) with each parameter its devices read
    at +/-delta (``dse.model.sensitivity``: the launch a call pays is the runtime's own)."""
    def speed(ctx: CostContext, plan: Plan) -> float:
        return prep.baseline_ms / _objective_of(prep, ctx, plan)

    base = speed(prep.ctx, best.plan)
    rows = []
    for param in PARAMETERS:
        vals = [speed(*param.apply(prep.ctx, best.plan, f)) for f in (1 - delta, 1 + delta)]
        rows.append(SensitivityRow(param.name, vals[0], base, vals[1]))
    return tuple(sorted(rows, key=lambda r: r.swing, reverse=True))


def context_grid(max_positions: int, start: int = 64) -> tuple[int, ...]:
    """Context lengths for the tok/s-vs-context curves: powers of two up to the model's max."""
    grid = []
    c = start
    while c < max_positions:
        grid.append(c)
        c *= 2
    return (*grid, max_positions)


def context_curves(prep: Prepared, plans: tuple[RankedPlan, ...], top: int = 3,
                   bands: Bands | None = None) -> tuple[ContextCurve, ...]:
    """Decode tok/s against context for the ``top`` plans and each CPU-only runtime that fits
    (the same objective scenario with only the context changed); with ``bands``, the best
    plan's curve carries its band at every context."""
    wl = prep.workload
    dec = next((s for s, _ in prep.scenarios if s.phase == "decode"), None)
    if dec is None:
        dec = Scenario(prep.objective.view, "decode", 1, prep.objective.context_tokens,
                       prep.objective.kv_dtype, prep.objective.sequences, prep.objective.threads)
    grid = context_grid(wl.config.max_positions)
    curves = []
    for i, rp in enumerate([p for p in plans if p.feasible][:top]):
        projs = [project(wl, rp.plan, prep.ctx, replace(dec, context_tokens=c),
                         with_baselines=False, memo=prep._cache) for c in grid]
        pts = tuple((c, p.tokens_per_s) for c, p in zip(grid, projs, strict=True))
        band = () if bands is None or i else tuple(
            (b.tokens_per_s.lo, b.tokens_per_s.hi)
            for b in (_band(prep, rp.plan, p, bands) for p in projs))
        kv = rp.plan.kv_dtype or dec.kv_dtype
        curves.append(ContextCurve(f"{rp.label}: {rp.plan.design.label()}, KV {kv}", pts,
                                   rp.label, rp.plan.design.label(), rp.plan.runtime, kv, band))
    for rc in prep.baseline_runtimes():
        if not rc.baseline_feasible:
            continue
        cpu = Plan(f"cpu {rc.runtime}", EngineDesign(1, 1), frozenset(), runtime=rc.runtime,
                   kv_dtype=rc.kv_dtype)
        pts = tuple((c, project(wl, cpu, prep.ctx, replace(dec, context_tokens=c),
                                with_baselines=False, memo=prep._cache).tokens_per_s)
                    for c in grid)
        curves.append(ContextCurve(f"CPU only, {rc.runtime} runtime, KV {rc.kv_dtype}", pts,
                                   "", "", rc.runtime, rc.kv_dtype))
    return tuple(curves)


def banded(prep: Prepared, rp: RankedPlan, bands: Bands | None) -> RankedPlan:
    """``rp`` with the band of each of its projections and of its objective."""
    if bands is None:
        return rp
    pbs = tuple(_band(prep, rp.plan, p, bands) for p in rp.projections)
    units = tuple(projection_units(prep.objective, p) for p in rp.projections)
    weights = tuple(w for _, w in prep.scenarios)
    weights = rp.scenario_weights(list(weights) if len(weights) == len(units) else None)
    return replace(rp, bands=pbs, objective_band=objective_band(pbs, units, weights,
                                                                prep.objective.kind))


def _band(prep: Prepared, plan: Plan, proj: Projection, bands: Bands) -> ProjectionBand:
    return plan_band(prep.workload, plan, prep.ctx, proj, bands)


#: Rounds the sequence curves try (each plan's engines built to hold the round: VMAX = S).
SEQUENCE_GRID = (1, 2, 4, 8, 16, 32)


def _cpu_plans(prep: Prepared) -> list[tuple[str, Plan]]:
    """The CPU-only runtimes that fit, each as a plan in the KV format that serves it best."""
    return [(f"CPU only, {rc.runtime} runtime, KV {rc.kv_dtype}",
             Plan(f"cpu {rc.runtime}", EngineDesign(1, 1), frozenset(), runtime=rc.runtime,
                  kv_dtype=rc.kv_dtype))
            for rc in prep.baseline_runtimes() if rc.baseline_feasible]


def sequence_curves(prep: Prepared, plans: tuple[RankedPlan, ...], top: int = 3,
                    vmax: int = SEQUENCE_GRID[-1]) -> tuple[SequenceCurve, ...]:
    """Aggregate decode tok/s against the round's sequences S at the objective's decode
    context, for the ``top`` plans (each plan's engines built to hold the round: VMAX = S, its
    vectors per clock up to S; a round that no longer fits the board ends the curve) and each
    CPU-only runtime that fits (its batch of S rows)."""
    from dse.model.template import shipped_template

    wl, obj = prep.workload, prep.objective
    grid = [s for s in SEQUENCE_GRID if s <= vmax]
    curves = []

    def curve(label: str, plan_of, parts: tuple = ()) -> None:
        pts = []
        for s in grid:
            plan = plan_of(s)
            sc = Scenario(obj.view, "decode", 1, obj.context_tokens, plan.kv_dtype or
                          obj.kv_dtype, s, obj.threads)
            p = project(wl, plan, prep.ctx, sc, with_baselines=False, memo=prep._cache)
            if not p.feasible:
                break
            pts.append((s, p.tokens_per_s, p.plan_ms))
        if pts:
            curves.append(SequenceCurve(label, tuple(pts), *parts))

    t = shipped_template()
    for rp in [p for p in plans if p.feasible][:top]:
        d = rp.plan.design

        def built(s: int, rp=rp, d=d) -> Plan:
            design = replace(d, vectors=s, vectors_per_clock=min(d.vectors_per_clock, s))
            if d.buildable:
                from dse.model.template import mark_buildable

                design = mark_buildable(t, design, prep.ctx.board)
            return replace(rp.plan, design=design, prompt_group=None)

        base = replace(d, vectors=1, vectors_per_clock=1).label()
        label = f"{rp.label}: {base}, VMAX = S"
        if d.vectors_per_clock > 1:
            label += f", {d.vectors_per_clock} a clock"
        curve(label, built, (rp.label, base, rp.plan.runtime, rp.plan.kv_dtype or obj.kv_dtype,
                             d.vectors_per_clock))
    for label, cpu in _cpu_plans(prep):
        curve(label, lambda s, cpu=cpu: cpu, ("", "", cpu.runtime, cpu.kv_dtype or "", 1))
    return tuple(curves)


def prompt_curves(prep: Prepared, plans: tuple[RankedPlan, ...], top: int = 3,
                  start: int = 16) -> tuple[PromptCurve, ...]:
    """Time to first token against the prompt length (powers of two from ``start`` to the
    model's context), for the ``top`` plans in their prompt groups and each CPU-only runtime
    that fits (the prompt in one forward)."""
    from dse.model.prompt import plan_group, prompt_cost

    wl, obj = prep.workload, prep.objective
    grid = context_grid(wl.config.max_positions, start)
    entries = [(f"{rp.label}: {rp.plan.design.label()}", rp.plan, rp.label)
               for rp in [p for p in plans if p.feasible][:top]]
    entries += [(label, plan, "") for label, plan in _cpu_plans(prep)]
    curves = []
    for label, plan, name in entries:
        pts = tuple((n, prompt_cost(wl, plan, prep.ctx, n, view=obj.view,
                                    kv_dtype=plan.kv_dtype or obj.kv_dtype,
                                    threads=obj.threads, memo=prep._cache).ttft_ms)
                    for n in grid)
        group = plan_group(plan, grid[-1]) if plan.offload else None
        curves.append(PromptCurve(label + (f", groups of {group}" if group else ""), group,
                                  pts, name, plan.design.label() if name else "", plan.runtime,
                                  plan.kv_dtype or obj.kv_dtype))
    return tuple(curves)


def explore(wl, ctx: CostContext, objective: Objective, space: DesignSpace | None = None,
            top: int = 12, progress: Progress | None = None,
            reference: MeasurementLog | None = None, curves: bool = True,
            validation: Validation | None = None) -> ExploreResult:
    """Search ``space`` on ``ctx.board`` for ``objective`` and rank the plans (pure);
    ``reference``: a measurement log whose decode split the best plan is set beside.
    ``curves``: also price the plots' curves (tok/s against context, sequences and prompt
    length: a third of a search's time); a caller that shows no plot passes False.
    ``validation``: the rows every ranked plan's figures get their bands from (None: no
    bands)."""
    board = ctx.board
    space = space or default_space(objective.kind, sequences=objective.sequences,
                                   prompt_group=objective.prompt_group)
    if objective.units is None:
        objective = replace(objective, units=unit_choices(
            space.template, board, wl.config, exclude=() if objective.glue_unit else ("glue",)))
    prep = prepare(wl, ctx, objective)
    max_k = max(layer.k for layer in wl.layers)
    designs, rejected, fabric = priced_designs(board, ctx.constants, space, max_k)
    prep.seed_resources(fabric)
    if not designs:
        raise DseError(f"{board.path or board.name}: pl: expected room for at least one engine "
                       f"design within the caps, none of {space.size()} fits")
    evals: list[DesignEval] = []
    step = max(1, len(designs) // 10)  # priced in batches (evaluate_designs), ten steps
    for i in range(0, len(designs), step):
        evals += evaluate_designs(prep, designs[i:i + step])
        if progress:
            progress(len(evals), len(designs))
    evals.sort(key=lambda e: (round(e.objective_ms, 9), e.lut))
    # Refine the most promising designs exactly (residency + DDR capacity) with the MILP.
    shortlist: list[DesignEval] = []
    seen_pack: set[str] = set()
    for e in evals:
        if len(shortlist) < top or e.design.packing not in seen_pack:
            shortlist.append(e)
            seen_pack.add(e.design.packing)
    sols = [(e, solve_plan(prep, e.design, "", runtime=e.runtime, units=e.units,
                           kv_dtype=e.kv_dtype))
            for e in shortlist]
    sols.sort(key=lambda es: (round(es[1].objective_ms, 9), es[0].lut))
    best_e, best_s = sols[0]
    plans = [_ranked(prep, replace(best_s, plan=replace(best_s.plan, name="best")), "best",
                     msg("why.best", "lowest objective over all designs"))]
    # Per packing: the best design using each scheme.
    for packing in space.packings:
        cand = [es for es in sols if es[0].design.packing == packing and es[1] is not best_s]
        if cand and packing != best_e.design.packing:
            e, s = cand[0]
            plans.append(_ranked(prep, replace(s, plan=replace(s.plan, name=f"best {packing}")),
                                 f"best {packing}", msg("why.packing", "best design with "
                                                        "{packing} packing", packing=packing)))
    # The best plan under each other PS runtime.
    for rc in prep.baseline_runtimes():
        if rc.runtime == best_s.plan.runtime:
            continue
        e = next((e for e in evals if e.runtime == rc.runtime), evals[0])
        s = solve_plan(prep, e.design, f"best {rc.runtime}", runtime=rc.runtime)
        plans.append(_ranked(prep, s, f"best {rc.runtime}",
                             msg("why.runtime", "best plan with the {runtime} runtime on the PS",
                                 runtime=rc.runtime)))
    # Frugal: fewest LUTs within 5% of the best objective.
    near = [e for e in evals if e.objective_ms <= best_s.objective_ms * 1.05]
    if near:
        frugal = min(near, key=lambda e: e.lut)
        if frugal.design != best_e.design:
            s = solve_plan(prep, frugal.design, "frugal", runtime=frugal.runtime,
                           units=frugal.units, kv_dtype=frugal.kv_dtype)
            plans.append(_ranked(prep, s, "frugal", msg("why.frugal", "fewest LUTs within 5% "
                                                        "of the best")))
    # Without a head unit (the lm_head stays on the CPU).
    nohead = next((e for e in evals if not e.design.head), None)
    if nohead and best_e.design.head:
        s = solve_plan(prep, nohead.design, "no head unit", runtime=nohead.runtime,
                       units=nohead.units, kv_dtype=nohead.kv_dtype)
        plans.append(_ranked(prep, s, "no head unit", msg("why.nohead", "best design without "
                                                          "a dense lm_head unit")))
    # All ternary layers offloaded on the best design (no selection).
    all_t = Plan("all ternary", replace(best_s.plan.design, resident_bytes=0),
                 frozenset(layer.name for layer in wl.layers if layer.ternary),
                 runtime=best_s.plan.runtime, kv_dtype=best_s.plan.kv_dtype)
    plans.append(_ranked(prep, Solution(all_t, 0.0, msg("method.fixed_set", "fixed set"), False),
                         "all ternary", msg("why.all_ternary", "every ternary Linear on the best "
                                            "design, no residency")))
    # What-ifs: the best buildable design with what the overlay lacks (never ranked first).
    if best_s.plan.design.buildable:
        for label, design, why in what_if_designs(best_s.plan.design, board):
            # the KV format and the units the overlay builds chosen again: the what-if's own
            # fabric may leave no room for them
            s = _solve_among(prep, design, label, best_s.plan.runtime,
                             lambda us: all(u.buildable for u in us))
            if s is not None and (s.plan.design.head or s.plan.design.resident_bytes):
                plans.append(_ranked(prep, s, label, why))
        plans += _unit_alternatives(prep, best_s)
    plans += _clock_what_if(prep, best_s, space, notes := list(wl.notes))
    naive = naive_plan(prep, plans[0], board)
    bands = bands_of(validation)
    plans = [banded(prep, rp, bands) for rp in plans]
    naive = banded(prep, naive, bands)
    ttft_ms, ttft_band, ttft_flags = _ttft(prep, plans[0], bands)
    base = _base_projection(prep, plans[0])
    # Pareto fronts over the evaluated designs (exact offload sets, no residency).
    cloud = [ParetoPoint(e.design.label(), e.lut, _ddr_gb_s(e),
                         prep.baseline_ms / e.objective_ms, e.tokens_per_s, e.j_per_token)
             for e in evals]
    if (check := host_check(wl, ctx)) is not None:
        notes.append(check)
    if objective.kind in ("energy", "edp"):
        notes.append(msg(f"note.{objective.kind}", "energy objective: offload and residency "
                         "chosen on joules per token with the engine's own URAM/BRAM leakage; a "
                         "resident buffer's leakage is charged when each ranked plan is "
                         "re-projected (its figures are exact), not inside the MILP" + (
                             "; the energy-delay product places each group by energy and ranks "
                             "designs by J x s" if objective.kind == "edp" else "")))
    notes.append(msg("note.searched", "searched {n} designs ({rejected} rejected by resource "
                     "caps, link width or clock evidence); offload sets exact per design; "
                     "residency and DDR capacity by MILP on the {shortlist} best designs",
                     n=len(designs),
                     rejected=rejected, shortlist=len(shortlist)))
    return ExploreResult(
        board=board, objective=objective, calibration=ctx.calibration,
        designs_evaluated=len(designs), designs_rejected=rejected,
        plans=tuple(plans), naive=naive,
        pareto_lut=pareto(cloud, lambda p: p.lut),
        pareto_ddr=pareto(cloud, lambda p: p.ddr_gb_s),
        cloud=tuple(_thin(cloud)), sensitivity=sensitivity(prep, plans[0]),
        notes=tuple(notes),
        context_curves=context_curves(prep, tuple(plans), bands=bands) if curves else (),
        pareto_energy=pareto([p for p in cloud if p.j_per_token is not None],
                             lambda p: p.j_per_token, lambda p: p.tokens_per_s),
        base_breakdown=base.components, base_total_ms=base.plan_ms,
        unit_counts=_unit_counts(prep, best_s),
        ttft_ms=ttft_ms,
        ttft_band=ttft_band,
        ttft_flags=ttft_flags,
        validation="" if validation is None else validation.label(),
        validation_rows=0 if validation is None else len(validation.checks()),
        sequence_curves=sequence_curves(prep, tuple(plans), vmax=(
            space.template.vmax_range[1] if space.template is not None else SEQUENCE_GRID[-1]))
        if curves else (),
        prompt_curves=prompt_curves(prep, tuple(plans)) if curves else (),
        reference=None if reference is None else _reference_split(
            wl, ctx, _decode_projection(prep, plans[0]), reference, plans[0].label))


def _reference_split(*args) -> ReferenceSplit:
    """``dse.search.reference.reference_split``, imported only when a log is given."""
    from dse.search.reference import reference_split

    return reference_split(*args)


def _decode_projection(prep: Prepared, best: RankedPlan) -> Projection:
    """The best plan's decode projection: the objective's own, or (for a prefill objective)
    one decode step at the objective's context, with the plan's KV format."""
    dec = next((p for p in best.projections if p.scenario.phase == "decode"), None)
    if dec is not None:
        return dec
    obj = prep.objective
    sc = Scenario(obj.view, "decode", 1, obj.context_tokens, obj.kv_dtype, obj.sequences,
                  obj.threads)
    return project(prep.workload, best.plan, prep.ctx, sc, with_baselines=False)


def _ttft_parts(prep: Prepared, best: RankedPlan) -> tuple[tuple[Projection, float], ...]:
    """The best plan's time to first token of the objective's prompt as weighted forwards:
    the prompt in its groups, then the first token (``dse.model.prompt``)."""
    from dse.model.prompt import prompt_cost

    obj = prep.objective
    if obj.prompted:
        return tuple((p, w) for p, w in zip(best.projections, best.weights, strict=True)
                     if p.scenario.phase == "prefill")
    return prompt_cost(prep.workload, best.plan, prep.ctx, obj.prompt_tokens,
                       obj.prompt_group if obj.prompt_group and obj.prompt_group
                       <= best.plan.design.vectors else None, view=obj.view,
                       kv_dtype=best.plan.kv_dtype or obj.kv_dtype, threads=obj.threads,
                       memo=prep._cache).parts


def _ttft(prep: Prepared, best: RankedPlan, bands: Bands | None
          ) -> tuple[float, Interval | None, tuple[Msg, ...]]:
    """The best plan's time to first token, its band (its forwards' bands, weighted: one
    model, so their ends add) and what its forwards were never measured in."""
    parts = _ttft_parts(prep, best)
    ms = sum(w * p.plan_ms for p, w in parts)
    if bands is None:
        return ms, None, ()
    return (ms, *forwards_band(prep.workload, best.plan, prep.ctx, parts, bands))


def _solve_among(prep: Prepared, design, name: str, runtime: str, keep,
                 allow_resident: bool = True) -> Solution | None:
    """The best plan of ``design`` under ``runtime`` among the unit sets ``keep`` accepts
    (any KV format; solved plans before failed ones), or None if there is none."""
    return best_of(prep, design, name, [(runtime, us, rp.kv_dtype) for rp in prep.runtimes
                                        if rp.runtime == runtime
                                        for us in unit_sets(prep, design, rp) if keep(us)],
                   allow_resident)


def _unit_alternatives(prep: Prepared, best: Solution) -> list[RankedPlan]:
    """The best buildable plan with each PL unit kind it does not have, one kind after
    another (each added to the one before: glue, then glue + attention): for each kind its
    best build, solved again. A unit the overlay does not build makes the plan a what-if (its
    design marked so, with the unit's rule); one it builds but the search did not choose is
    shown as what it costs (e.g. an attention unit needs the int8 KV cache)."""
    base = best.plan
    out: list[RankedPlan] = []
    for choice in prep.choices:
        if base.unit(choice.kind) is not None:
            continue
        found = None
        for option in choice.options:
            design = base.design
            if not option.buildable:
                design = replace(design, buildable=False, build_note=option.build_note)
            want = (*base.units, option)
            s = _solve_among(prep, design, "", base.runtime,
                             lambda us, want=want: set(us) == set(want), allow_resident=False)
            if s is not None and s.optimal and (found is None
                                                or s.objective_ms < found[0].objective_ms):
                found = (s, option)
        if found is None:
            continue
        s, option = found
        kinds = [*(u.kind for u in base.units), option.kind]
        label = ("what-if: " if not s.plan.buildable else "with ") + " + ".join(kinds) + (
            " units" if len(kinds) > 1 else " unit")
        why = (msg("why.whatif.unit", "the plan above plus {unit}, which the overlay does not "
                   "build ({rule})", unit=option.label, rule=option.build_note)
               if not option.buildable else
               msg("why.with_unit", "the plan above plus {unit}, which the overlay builds; "
                   "the search did not choose it for this objective", unit=option.label))
        s = replace(s, plan=replace(s.plan, name=label))
        out.append(_ranked(prep, s, label, why))
        base = s.plan
    return out


def _clock_what_if(prep: Prepared, best: Solution, space, notes: list) -> list[RankedPlan]:
    """With clock evidence in force: when the template and the board allow a faster clock than
    the evidence supports for the best plan, a warning note and that plan at the top clock as
    a labelled what-if (never the recommendation)."""
    c, board = prep.ctx.constants, prep.ctx.board
    design = best.plan.design
    if c.fabric is None or not design.buildable or not best.plan.offload:
        return []
    for ch in prep.choices:
        asked = max((u.count for u in ch.options if u.buildable), default=0)
        covered = [dict(cl.counts).get(ch.kind) for cl in c.fabric.closures
                   if cl.family == board.family and ch.kind in cl.kinds]
        most = None if not covered or None in covered else max(covered)
        if most is not None and asked > most:
            notes.append(msg("note.count_beyond", "warning: what-if: the engine template "
                             "builds up to {asked} {kind} units; the published closures on "
                             "{family} hold at most {most}: plans with more are what-ifs, "
                             "never the recommendation", asked=asked, kind=ch.kind,
                             family=board.family, most=most))
    top = (space.template.clock_limit_mhz(board.clock.max_mhz) if space.template is not None
           else board.clock.max_mhz)
    ev = plan_evidence(design, best.plan.units, board, c,
                       prep.resources(design, best.plan.units))
    sup = ev.clock.mhz
    if sup is not None and top <= sup + 1e-9:
        return []
    notes.append(msg("note.clock_beyond", "warning: what-if: {board} and the engine template "
                     "allow {top:g} MHz; the clock evidence supports {sup} for the best plan "
                     "({evidence}): plans above it are what-ifs, never the recommendation",
                     board=board.name, top=top,
                     sup="no clock" if sup is None else f"{sup:g} MHz", evidence=ev.clock.evidence))
    wi = clock_what_if(design, board, top, sup)
    if wi is None:
        return []
    s = _solve_among(prep, wi, "what-if: clock", best.plan.runtime,
                     lambda us: us == best.plan.units, allow_resident=False)
    if s is None:
        return []
    return [_ranked(prep, s, "what-if: clock", msg(
        "why.whatif.clock", "the best plan at {top:g} MHz, beyond what the clock evidence "
        "supports ({sup:g} MHz): a timing closure nobody has shown", top=top, sup=sup))]


def _unit_counts(prep: Prepared, best: Solution) -> tuple[UnitCount, ...]:
    """For each PL unit kind the search offered: the best plan's design with none and with
    each build of it (the plan's other units kept), solved again under the plan's runtime,
    KV format free; an option the design cannot take says why (it does not fit the caps, it
    cannot run the model or the scenario, or the overlay does not build it beside a design
    it builds)."""
    bp = best.plan
    design = bp.design
    out: list[UnitCount] = []
    for choice in prep.choices:
        mine = bp.unit(choice.kind)
        others = tuple(u for u in bp.units if u.kind != choice.kind)
        for option in (None, *choice.options):
            units = others + (() if option is None else (option,))
            label = "none" if option is None else option.label
            count = 0 if option is None else option.count
            why = None
            if option is not None and not option.buildable and design.buildable:
                why = msg("why_not.whatif", "the overlay does not build it ({rule})",
                          rule=option.build_note)
            elif option is not None and not any(prep.serves(option, rp)
                                                for rp in prep.runtimes):
                why = msg("why_not.serves", "it cannot run this model or scenario")
            elif not prep.fits(design, units):
                why = msg("why_not.fits", "with it the design exceeds the board's caps: "
                          "{over}", over=", ".join(prep.resources(design, units)
                                                   .overflow(prep.ctx.board)))
            elif not prep.clock_ok(design, units):
                why = msg("why_not.clock", "the clock evidence does not cover {mhz:g} MHz "
                          "with it beside the engines (no published closure held that many "
                          "units or that utilization)", mhz=design.clock_mhz)
            ms = None
            if why is None:
                s = _solve_among(prep, design, "", bp.runtime,
                                 lambda us, units=units: set(us) == set(units),
                                 allow_resident=bool(bp.resident))
                if s is None or not s.optimal:
                    why = msg("why_not.solve", "no plan solves with it")
                else:
                    ms = s.objective_ms
            out.append(UnitCount(choice.kind, label, count, ms, why, option == mine))
    return tuple(out)


def _base_projection(prep: Prepared, best: RankedPlan) -> Projection:
    """The headline CPU-only baseline in the best plan's decode scenario."""
    proj = best.decode
    cpu = Plan("cpu", EngineDesign(1, 1), frozenset(), runtime=proj.baseline.runtime,
               kv_dtype=proj.baseline.kv_dtype)
    return project(prep.workload, cpu, prep.ctx, proj.scenario, with_baselines=False,
                   memo=prep._cache)


def host_check(wl, ctx: CostContext) -> Msg | None:
    """How much of the profiled decode token the torch runtime's operators account for on
    the profiled host itself (the rest is time outside any module: Python, the generate loop).
    """
    if not wl.token_ms:
        return None
    dec = wl.measured_op("self_attn", "decode")
    context = dec.context if dec is not None else (wl.prompt_tokens or 1)
    sc = Scenario("host-attached", "decode", 1, min(context, wl.config.max_positions))
    cpu = Plan("cpu torch", EngineDesign(1, 1), frozenset(), runtime="torch")
    ms = project_total(wl, cpu, ctx, sc).plan_ms
    return msg("note.host_check", "check on the profiled host: the torch runtime's operators "
               "price a decode token at {priced:,.1f} ms, the profile measured {measured:,.1f} "
               "ms ({outside:+.1%} outside any priced operator)", priced=ms,
               measured=wl.token_ms, outside=1 - ms / wl.token_ms)


def _ddr_gb_s(e: DesignEval) -> float:
    """Average DDR weight bandwidth the plan draws over its objective time, GB/s."""
    return e.ddr_bytes / (e.objective_ms * 1e-3) / 1e9 if e.objective_ms > 0 else 0.0


def _thin(points: list[ParetoPoint], limit: int = 1500) -> list[ParetoPoint]:
    """A deterministic subsample for the scatter plot (all points if few)."""
    if len(points) <= limit:
        return points
    idx = np.linspace(0, len(points) - 1, limit).astype(int)
    return [points[i] for i in idx]
