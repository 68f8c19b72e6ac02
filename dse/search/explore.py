"""The explore stage: search the design space, rank plans, Pareto fronts, sensitivity.

``explore`` is pure: it takes a workload, a cost context and an objective and returns an
``ExploreResult`` that the report writers and the JSON export read. Progress is reported
through an optional callback so the CLI can draw a bar without the search printing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from dse.errors import DseError
from dse.model.board import Board
from dse.model.engine import EngineDesign
from dse.model.measurement_log import MeasurementLog
from dse.model.msg import Msg, msg
from dse.model.project import AttentionUnit, CostContext, Plan, Projection, Scenario, project
from dse.search.optimize import (
    DesignEval,
    Objective,
    Prepared,
    Solution,
    evaluate_design,
    glue_options,
    prepare,
    projection_units,
    solve_plan,
)
from dse.search.reference import ReferenceSplit, reference_split
from dse.search.space import (
    DesignSpace,
    default_space,
    enumerate_designs,
    head_macs_for,
    what_if_designs,
)

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

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.objective_ms if self.objective_ms > 0 else math.inf

    @property
    def decode(self) -> Projection:
        return next((p for p in self.projections if p.scenario.phase == "decode"),
                    self.projections[0])

    @property
    def feasible(self) -> bool:
        return all(p.feasible for p in self.projections)


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
    """Decode tokens per second of one plan (or CPU baseline) against the context length."""

    label: str
    points: tuple[tuple[int, float], ...]


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
    #: Per-token components of the fastest CPU-only runtime that fits (decode scenario).
    base_breakdown: dict[str, float] | None = None
    #: Time to first token of the best plan: the prefill of the objective's prompt, ms.
    ttft_ms: float | None = None
    #: The best plan next to a measured design's split (``--reference LOG``), if asked.
    reference: ReferenceSplit | None = None
    #: When no plan fits the board: what would (``dse.search.advice``; set by the caller,
    #: which knows the candidate models and boards).
    advice: tuple[Msg, ...] = ()

    @property
    def best(self) -> RankedPlan:
        return self.plans[0]


def _project_all(prep: Prepared, plan: Plan) -> tuple[tuple[Projection, ...], float]:
    projs = tuple(project(prep.workload, plan, prep.ctx, sc, base=base)
                  for (sc, _), base in zip(prep.scenarios, prep.baselines, strict=True))
    total = sum(w * projection_units(prep.objective, proj)
                for proj, (_, w) in zip(projs, prep.scenarios, strict=True))
    return projs, total


def _ranked(prep: Prepared, sol: Solution, label: str, why: Msg | None = None) -> RankedPlan:
    projs, total = _project_all(prep, sol.plan)
    return RankedPlan(label, sol.plan, projs, total, prep.baseline_ms, sol.method,
                      () if why is None else (why,))


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
    projs, total = _project_all(prep, plan)
    if not wl.measured_host:
        return RankedPlan("naive top-5", plan, projs, total, prep.baseline_ms,
                          msg("method.fixed_list", "fixed list"),
                          (msg("why.naive.largest", "no profile measured the layers: the 5 "
                               "largest Linears by weights"),))
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
                      msg("method.fixed_list", "fixed list"), tuple(parts))


def sensitivity(prep: Prepared, best: RankedPlan, delta: float = 0.2
                ) -> tuple[SensitivityRow, ...]:
    """Speedup of the best plan (same plan, re-projected) with each parameter at +/-delta."""
    board = prep.ctx.board

    def speed(ctx: CostContext, plan: Plan) -> float:
        p2 = replace(prep, ctx=ctx)
        _, total = _project_all(p2, plan)
        return prep.baseline_ms / total

    base = speed(prep.ctx, best.plan)
    rows = []
    for name in ("DDR efficiency", "engine clock", "per-call overhead"):
        vals = []
        for f in (1 - delta, 1 + delta):
            plan, b = best.plan, board
            if name == "DDR efficiency":
                b = board.model_copy(update={"ddr": board.ddr.model_copy(
                    update={"pl_efficiency": min(1.0, board.ddr.pl_efficiency * f)})})
            elif name == "engine clock":
                plan = replace(plan, design=replace(plan.design,
                                                    clock_mhz=plan.design.clock_mhz * f))
            else:
                b = board.model_copy(update={"link": board.link.model_copy(
                    update={"per_call_overhead_us": board.link.per_call_overhead_us * f})})
            vals.append(speed(replace(prep.ctx, board=b), plan))
        rows.append(SensitivityRow(name, vals[0], base, vals[1]))
    return tuple(sorted(rows, key=lambda r: r.swing, reverse=True))


def context_grid(max_positions: int, start: int = 64) -> tuple[int, ...]:
    """Context lengths for the tok/s-vs-context curves: powers of two up to the model's max."""
    grid = []
    c = start
    while c < max_positions:
        grid.append(c)
        c *= 2
    return (*grid, max_positions)


def context_curves(prep: Prepared, plans: tuple[RankedPlan, ...], top: int = 3
                   ) -> tuple[ContextCurve, ...]:
    """Decode tok/s against context for the ``top`` plans and each CPU-only runtime that fits
    (the same objective scenario with only the context changed)."""
    wl = prep.workload
    dec = next((s for s, _ in prep.scenarios if s.phase == "decode"), None)
    if dec is None:
        dec = Scenario(prep.objective.view, "decode", 1, prep.objective.context_tokens,
                       prep.objective.kv_dtype, prep.objective.sequences, prep.objective.threads)
    grid = context_grid(wl.config.max_positions)
    curves = []
    for rp in [p for p in plans if p.feasible][:top]:
        pts = tuple((c, project(wl, rp.plan, prep.ctx, replace(dec, context_tokens=c),
                                with_baselines=False).tokens_per_s) for c in grid)
        curves.append(ContextCurve(f"{rp.label}: {rp.plan.design.label()}", pts))
    for rc in prep.baseline_runtimes():
        if not rc.baseline_feasible:
            continue
        cpu = Plan(f"cpu {rc.runtime}", EngineDesign(1, 1), frozenset(), runtime=rc.runtime,
                   kv_dtype=rc.kv_dtype)
        pts = tuple((c, project(wl, cpu, prep.ctx, replace(dec, context_tokens=c),
                                with_baselines=False).tokens_per_s) for c in grid)
        curves.append(ContextCurve(f"CPU only, {rc.runtime} runtime", pts))
    return tuple(curves)


def explore(wl, ctx: CostContext, objective: Objective, space: DesignSpace | None = None,
            top: int = 12, progress: Progress | None = None,
            reference: MeasurementLog | None = None) -> ExploreResult:
    """Search ``space`` on ``ctx.board`` for ``objective`` and rank the plans (pure);
    ``reference``: a measurement log whose decode split the best plan is set beside."""
    board = ctx.board
    space = space or default_space("prefill" if objective.batched else "decode")
    prep = prepare(wl, ctx, objective)
    max_k = max(layer.k for layer in wl.layers)
    designs, rejected = enumerate_designs(board, ctx.constants, space, max_k)
    if not designs:
        raise DseError(f"{board.path or board.name}: pl: expected room for at least one engine "
                       f"design within the caps, none of {space.size()} fits")
    evals: list[DesignEval] = []
    step = max(1, len(designs) // 100)
    for i, d in enumerate(designs):
        evals.append(evaluate_design(prep, d))
        if progress and (i % step == 0 or i == len(designs) - 1):
            progress(i + 1, len(designs))
    evals.sort(key=lambda e: (round(e.objective_ms, 9), e.lut))
    # Refine the most promising designs exactly (residency + DDR capacity) with the MILP.
    shortlist: list[DesignEval] = []
    seen_pack: set[str] = set()
    for e in evals:
        if len(shortlist) < top or e.design.packing not in seen_pack:
            shortlist.append(e)
            seen_pack.add(e.design.packing)
    sols = [(e, solve_plan(prep, e.design, "", runtime=e.runtime, glue=e.glue, attn=e.attn,
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
                           glue=frugal.glue, attn=frugal.attn, kv_dtype=frugal.kv_dtype)
            plans.append(_ranked(prep, s, "frugal", msg("why.frugal", "fewest LUTs within 5% "
                                                        "of the best")))
    # Without a head unit (the lm_head stays on the CPU).
    nohead = next((e for e in evals if not e.design.head), None)
    if nohead and best_e.design.head:
        s = solve_plan(prep, nohead.design, "no head unit", runtime=nohead.runtime,
                       glue=nohead.glue, attn=nohead.attn, kv_dtype=nohead.kv_dtype)
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
            # the KV format and the attention unit chosen again: the what-if's own fabric
            # may leave no room for the unit
            s = solve_plan(prep, design, label, runtime=best_s.plan.runtime, glue=False)
            if s.plan.design.head or s.plan.design.resident_bytes:  # else it adds nothing
                plans.append(_ranked(prep, s, label, why))
        plans += _unit_what_ifs(prep, best_s)
    naive = naive_plan(prep, plans[0], board)
    # Pareto fronts over the evaluated designs (exact offload sets, no residency).
    cloud = [ParetoPoint(e.design.label(), e.lut, _ddr_gb_s(e),
                         prep.baseline_ms / e.objective_ms, e.tokens_per_s, e.j_per_token)
             for e in evals]
    notes = list(wl.notes)
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
                     "caps or link width); offload sets exact per design; residency and DDR "
                     "capacity by MILP on the {shortlist} best designs", n=len(designs),
                     rejected=rejected, shortlist=len(shortlist)))
    return ExploreResult(
        board=board, objective=objective, calibration=ctx.calibration,
        designs_evaluated=len(designs), designs_rejected=rejected,
        plans=tuple(plans), naive=naive,
        pareto_lut=pareto(cloud, lambda p: p.lut),
        pareto_ddr=pareto(cloud, lambda p: p.ddr_gb_s),
        cloud=tuple(_thin(cloud)), sensitivity=sensitivity(prep, plans[0]),
        notes=tuple(notes), context_curves=context_curves(prep, tuple(plans)),
        pareto_energy=pareto([p for p in cloud if p.j_per_token is not None],
                             lambda p: p.j_per_token, lambda p: p.tokens_per_s),
        base_breakdown=_base_breakdown(prep, plans[0]), ttft_ms=_ttft_ms(prep, plans[0]),
        reference=None if reference is None else reference_split(
            wl, ctx, _decode_projection(prep, plans[0]), reference, plans[0].label))


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


def _ttft_ms(prep: Prepared, best: RankedPlan) -> float:
    """The best plan's prefill of the objective's prompt (the time to first token)."""
    pre = next((p for p in best.projections if p.scenario.phase == "prefill"), None)
    if pre is None:
        obj = prep.objective
        sc = Scenario(obj.view, "prefill", obj.prompt_tokens, obj.prompt_tokens, obj.kv_dtype,
                      obj.sequences, obj.threads)
        pre = project(prep.workload, best.plan, prep.ctx, sc, with_baselines=False)
    return pre.plan_ms


def _unit_what_ifs(prep: Prepared, best: Solution) -> list[RankedPlan]:
    """The best buildable design with the PL units the overlay lacks: an FFN glue unit, then
    (if the best plan has none) an attention unit beside it, with the int8 KV cache the unit
    reads (each kept only if it solves and fits the board)."""
    bp = best.plan
    design = replace(bp.design, buildable=False,
                     build_note="what-if: FFN glue unit: the overlay has none")
    rc = prep.runtime(bp.runtime, bp.kv_dtype)
    out: list[RankedPlan] = []
    base = bp
    if True in glue_options(prep, design, rc):
        s = solve_plan(prep, design, "what-if: glue unit", allow_resident=False,
                       runtime=bp.runtime, glue=True)
        if s.plan.glue is not None:  # else the MILP found no plan
            base = s.plan
            out.append(_ranked(prep, s, "what-if: glue unit", msg(
                "why.whatif.glue", "the best buildable design plus an FFN glue unit behind "
                "the engines (activation, gate product, sub-norm, re-quantization), which the "
                "overlay does not have")))
    if bp.attention is not None or base.attention is not None:
        return out
    unit = prep.objective.attention or AttentionUnit()
    label = ("what-if: glue + attention units" if base.glue is not None
             else "what-if: attention unit")
    if prep.objective.attention_buildable:  # the overlay builds it; the KV format is the what-if
        note = (f"what-if: an int8 KV cache (--kv-dtype int8): "
                f"{replace(bp, attention=unit).build_note}")
    else:
        note = "what-if: attention unit: the overlay has none"
    units = replace(base, name=label, attention=unit, kv_dtype="int8",
                    design=replace(base.design, buildable=False, build_note=note))
    if not project(prep.workload, units, prep.ctx, prep.scenarios[0][0],
                   with_baselines=False).infeasible:
        out.append(_ranked(prep, Solution(units, 0.0, msg("method.fixed_set", "fixed set"),
                                          False), label,
                           msg("why.whatif.attention", "the plan above plus the attention unit "
                               "({unit}) reading an int8 KV cache from DDR, {macs} MACs "
                               "per clock", unit=unit.label, macs=unit.macs_per_clock)))
    return out


def _base_breakdown(prep: Prepared, best: RankedPlan) -> dict[str, float]:
    """Components of the headline CPU-only baseline in the best plan's decode scenario."""
    proj = best.decode
    cpu = Plan("cpu", EngineDesign(1, 1), frozenset(), runtime=proj.baseline.runtime,
               kv_dtype=proj.baseline.kv_dtype)
    return dict(project(prep.workload, cpu, prep.ctx, proj.scenario,
                        with_baselines=False).components)


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
    ms = project(wl, cpu, ctx, sc, with_baselines=False).plan_ms
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
