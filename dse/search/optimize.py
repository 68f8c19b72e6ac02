"""Choosing what to offload and what to keep on chip, for one engine design.

Layers that share an input form one accelerator call (a *group*: q/k/v, gate/up, or a single
layer). For a fixed design each group has three options: stay on the CPU, run on the FPGA
with its weights streamed from DDR, or run with its weights resident on chip. Without
residency the groups are independent, so offloading a group exactly when it is faster is
optimal (``evaluate_design``). Residency couples them through on-chip capacity (a knapsack)
and, on the board, DDR capacity couples them too: ``solve_plan`` solves that exactly as a
MILP (``scipy.optimize.milp``, HiGHS) and reports the solver's optimality status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from dse.model.cost import call_cost, layer_weight_bytes
from dse.model.cpu import RUNTIMES
from dse.model.engine import (
    BRAM36_BYTES,
    URAM_BYTES,
    EngineDesign,
    engine_resources,
)
from dse.model.project import (
    Baseline,
    CostContext,
    Plan,
    Scenario,
    baselines,
    cpus,
    embedding_bytes,
    group_calls,
    layer_board_bytes,
    layer_cpu_ms,
    op_costs,
)
from dse.model.workload import Layer, Workload

OBJECTIVES = ("decode", "prefill", "mix")


@dataclass(frozen=True)
class Objective:
    """What the search minimises: decode ms/token, prefill ms, or a prompt+generate mix.

    Decode is priced at ``context_tokens`` of context (default: prompt + generated tokens, the
    longest the cache gets), with a ``kv_dtype`` cache, ``sequences`` sharing each weight pass
    and ``threads`` CPU threads (None: every core). ``runtimes`` are the PS runtimes the
    search may choose for what stays on the CPU.
    """

    kind: str = "decode"
    prompt_tokens: int = 128
    gen_tokens: int = 128
    view: str = "on-board"
    runtimes: tuple[str, ...] = RUNTIMES
    context: int | None = None
    kv_dtype: str = "fp16"
    sequences: int = 1
    threads: int | None = None

    @property
    def context_tokens(self) -> int:
        return self.context or self.prompt_tokens + self.gen_tokens

    def scenarios(self) -> list[tuple[Scenario, float]]:
        """(scenario, weight) pairs whose weighted sum is the objective, in ms."""
        dec = Scenario(self.view, "decode", 1, self.context_tokens, self.kv_dtype,
                       self.sequences, self.threads)
        pre = Scenario(self.view, "prefill", self.prompt_tokens, self.prompt_tokens,
                       self.kv_dtype, self.sequences, self.threads)
        if self.kind == "decode":
            return [(dec, 1.0)]
        if self.kind == "prefill":
            return [(pre, 1.0)]
        return [(pre, 1.0), (dec, float(self.gen_tokens))]

    def describe(self) -> str:
        if self.kind == "decode":
            return f"decode ms per token at {self.context_tokens} tokens of context"
        if self.kind == "prefill":
            return f"prefill ms ({self.prompt_tokens} prompt tokens)"
        return (f"workload ms ({self.prompt_tokens} prompt tokens + {self.gen_tokens} generated "
                f"tokens)")


@dataclass(frozen=True)
class Group:
    """Layers run as one accelerator call."""

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


@dataclass(frozen=True)
class RuntimeCosts:
    """Design-independent costs of one PS runtime, weighted over the objective's scenarios."""

    runtime: str
    #: Objective ms of each group on the CPU (its input quantization included where the
    #: runtime quantizes for its own kernel).
    cpu_ms: np.ndarray
    #: Objective ms each group adds on the PS when offloaded (quantizing its input).
    offload_ps_ms: np.ndarray
    #: Objective ms of every other operator (norms, attention, sampling, ...).
    fixed_ms: float
    #: Objective ms with everything on the CPU, and whether that fits the board's DDR.
    baseline_ms: float
    baseline_feasible: bool


@dataclass(frozen=True)
class Prepared:
    """Design-independent data of a search: groups and their CPU cost per runtime."""

    workload: Workload
    ctx: CostContext
    objective: Objective
    groups: tuple[Group, ...]
    runtimes: tuple[RuntimeCosts, ...]
    #: Objective ms of the best CPU-only runtime that fits (the fastest if none fits).
    baseline_ms: float
    baseline_runtime: str
    #: Signature index of each group (groups with equal N, K and kind cost the same).
    sig_of: np.ndarray
    sigs: tuple[tuple[int, int, bool], ...]
    scenarios: tuple[tuple[Scenario, float], ...]
    #: The CPU-only baselines of each scenario (they depend on no design).
    baselines: tuple[tuple[Baseline, ...], ...] = ()

    def runtime(self, name: str) -> RuntimeCosts:
        return next(r for r in self.runtimes if r.runtime == name)


def _quant_per_instance(ops, role: str) -> float:
    """ms of one layer's instance of the quantization feeding ``role``'s group."""
    from dse.model.ops import QUANT_GROUP

    feed = QUANT_GROUP.get(role)
    op = next((o for o in ops if o.kind == "quant" and o.role == f"quant_{feed}"), None)
    return op.time_ms / op.count if op is not None and op.count else 0.0


def prepare(wl: Workload, ctx: CostContext, objective: Objective, fuse: bool = True) -> Prepared:
    """Group the layers and price every group on the CPU under each runtime once (pure)."""
    scen = objective.scenarios()
    for sc, _ in scen:
        sc.validate(wl.config)
    groups = tuple(Group(key, tuple(ls)) for key, ls in group_calls(list(wl.layers), fuse).items())
    c = ctx.constants
    per_runtime = []
    base_by_sc = [baselines(wl, ctx, sc) for sc, _ in scen]
    for runtime in objective.runtimes:
        cpu = np.zeros(len(groups))
        extra = np.zeros(len(groups))
        fixed = 0.0
        for sc, w in scen:
            host, target, threads = cpus(wl, ctx.board, sc)
            ops = op_costs(wl, runtime, sc, host, target, threads, c)
            fixed += w * sum(o.time_ms for o in ops if o.kind != "quant")
            for i, g in enumerate(groups):
                q = _quant_per_instance(ops, g.layers[0].role) if g.ternary else 0.0
                lin = sum(layer_cpu_ms(wl, layer, runtime, sc, host, target, threads, c)
                          for layer in g.layers)
                cpu[i] += w * (lin + (q if runtime == "native" else 0.0))
                extra[i] += w * q
        base = sum(w * next(b.ms for b in bs if b.runtime == runtime)
                   for (_, w), bs in zip(scen, base_by_sc, strict=True))
        fits = all(next(b.feasible for b in bs if b.runtime == runtime) for bs in base_by_sc)
        per_runtime.append(RuntimeCosts(runtime, cpu, extra, fixed, base, fits))
    fitting = [r for r in per_runtime if r.baseline_feasible] or per_runtime
    best = min(fitting, key=lambda r: r.baseline_ms)
    sig_index: dict[tuple[int, int, bool], int] = {}
    sig_of = np.array([sig_index.setdefault((g.n, g.k, g.ternary), len(sig_index))
                       for g in groups])
    return Prepared(wl, ctx, objective, groups, tuple(per_runtime), best.baseline_ms,
                    best.runtime, sig_of, tuple(sig_index), tuple(scen), tuple(base_by_sc))


@dataclass(frozen=True)
class DesignEval:
    """A design priced with the exactly optimal offload set and runtime (no residency)."""

    design: EngineDesign
    runtime: str
    objective_ms: float
    offload: np.ndarray
    lut: float
    ddr_bytes: float

    def speedup(self, baseline_ms: float) -> float:
        return baseline_ms / self.objective_ms


def _group_bytes(design: EngineDesign, n: int, k: int, ternary: bool) -> int:
    if ternary:
        return design.packing_spec.matrix_bytes(n, k)
    return layer_weight_bytes(Layer("", "lm_head", None, n, k, False, 0.0, 1, 0.0), design)


def fpga_sig_ms(prep: Prepared, design: EngineDesign, resident: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """Objective ms and DDR bytes of one call of each signature on ``design``."""
    board, c = prep.ctx.board, prep.ctx.constants
    ms = np.zeros(len(prep.sigs))
    ddr = np.zeros(len(prep.sigs))
    for s, (n, k, ternary) in enumerate(prep.sigs):
        if not ternary and not design.head:
            ms[s] = math.inf
            continue
        wbytes = 0 if resident else _group_bytes(design, n, k, ternary)
        dense = None if ternary else design.head
        for sc, w in prep.scenarios:
            m = sc.m * sc.sequences if ternary else sc.sequences
            cc = call_cost(design, board, c, n=n, k=k, m=m, weight_bytes=wbytes, dense=dense)
            ms[s] += w * cc.time_s * 1e3
            ddr[s] += w * cc.weight_bytes
    return ms, ddr


def evaluate_design(prep: Prepared, design: EngineDesign) -> DesignEval:
    """Best objective of ``design``: every group placed where it is faster, under the best
    runtime (exact: given the runtime the groups are independent)."""
    ms, ddr = fpga_sig_ms(prep, design)
    f0 = ms[prep.sig_of]
    best = None
    for rc in prep.runtimes:
        f = f0 + rc.offload_ps_ms
        offload = f < rc.cpu_ms
        total = rc.fixed_ms + float(np.where(offload, f, rc.cpu_ms).sum())
        if best is None or total < best[0]:
            best = (total, rc.runtime, offload)
    total, runtime, offload = best
    ddr_bytes = float(ddr[prep.sig_of][offload].sum())
    lut = engine_resources(design, prep.ctx.board, prep.ctx.constants).lut
    return DesignEval(design, runtime, total, offload, lut, ddr_bytes)


def onchip_capacity_bytes(prep: Prepared, design: EngineDesign) -> int:
    """Bytes of URAM and BRAM left within the caps after the engine itself."""
    board = prep.ctx.board
    res = engine_resources(design, board, prep.ctx.constants)
    uram = max(0, math.floor(board.pl.uram * board.caps.uram - res.uram))
    bram = max(0, math.floor(board.pl.bram36 * board.caps.bram36 - res.bram36))
    return uram * URAM_BYTES + bram * BRAM36_BYTES


@dataclass(frozen=True)
class Solution:
    """A design's optimal plan, and how optimality was established."""

    plan: Plan
    objective_ms: float
    method: str
    optimal: bool


def _memory_delta(prep: Prepared, design: EngineDesign, runtime: str) -> np.ndarray:
    """DDR bytes each group adds on the board when offloaded (engine format - runtime's)."""
    wl = prep.workload
    out = []
    for g in prep.groups:
        d = sum(layer_board_bytes(layer, True, design, runtime, wl.dtype_bytes)
                - layer_board_bytes(layer, False, design, runtime, wl.dtype_bytes)
                for layer in g.layers)
        if not g.ternary:
            d += (embedding_bytes(wl, runtime, True, design)
                  - embedding_bytes(wl, runtime, False, design))
        out.append(d)
    return np.array(out, dtype=float)


def solve_plan(prep: Prepared, design: EngineDesign, name: str = "plan",
               allow_resident: bool = True, runtime: str | None = None) -> Solution:
    """Optimal offload and resident sets for ``design`` under ``runtime`` (the best runtime
    when None): a MILP, exact up to HiGHS's tolerance.

    Variables per group: s (streamed on the FPGA) and r (resident), s + r <= 1. Minimise
    sum (f - cpu) s + (f_res - cpu) r subject to resident bytes <= on-chip capacity and, on
    the board, the plan's DDR footprint <= DDR capacity.
    """
    if runtime is None:
        sols = [solve_plan(prep, design, name, allow_resident, rc.runtime)
                for rc in prep.runtimes]
        return min(sols, key=lambda s: (not s.optimal, s.objective_ms))
    rc = prep.runtime(runtime)
    groups = prep.groups
    ng = len(groups)
    f_ms, _ = fpga_sig_ms(prep, design)
    f = f_ms[prep.sig_of] + rc.offload_ps_ms
    cap = onchip_capacity_bytes(prep, design) if allow_resident else 0
    fr = (fpga_sig_ms(prep, design, resident=True)[0][prep.sig_of] + rc.offload_ps_ms
          if cap else np.full(ng, np.inf))
    big = 1e12
    f = np.where(np.isfinite(f), f, big)
    fr = np.where(np.isfinite(fr), fr, big)
    wbytes = np.array([_group_bytes(design, g.n, g.k, g.ternary) for g in groups], dtype=float)
    cost = np.concatenate([f - rc.cpu_ms, fr - rc.cpu_ms])
    rows = [np.concatenate([np.eye(ng), np.eye(ng)], axis=1)]
    lo, hi = [np.zeros(ng)], [np.ones(ng)]
    rows.append(np.concatenate([np.zeros(ng), wbytes])[None, :])
    lo.append(np.array([0.0]))
    hi.append(np.array([float(cap)]))
    board = prep.ctx.board
    if prep.objective.view == "on-board":
        from dse.model.project import memory_bytes

        sc = max((s for s, _ in prep.scenarios), key=lambda s: s.context_tokens)
        base_mem = memory_bytes(prep.workload, Plan("cpu", design, frozenset(), runtime=runtime),
                                prep.ctx, sc)
        delta = _memory_delta(prep, design, runtime)
        rows.append(np.concatenate([delta, delta])[None, :])
        lo.append(np.array([-np.inf]))
        hi.append(np.array([float(board.ddr.capacity_bytes - base_mem)]))
    cons = LinearConstraint(np.vstack(rows), np.concatenate(lo), np.concatenate(hi))
    res = milp(cost, constraints=cons, integrality=np.ones(2 * ng), bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        # infeasible (e.g. the model does not fit DDR even on the CPU): offload nothing
        plan = Plan(name, design, frozenset(), note=f"MILP: {res.message}", runtime=runtime)
        return Solution(plan, rc.baseline_ms, f"MILP ({res.message})", False)
    x = np.round(res.x).astype(bool)
    s, r = x[:ng], x[ng:]
    offload = frozenset(n for i, g in enumerate(groups) if s[i] or r[i] for n in g.names)
    resident = frozenset(n for i, g in enumerate(groups) if r[i] for n in g.names)
    res_bytes = int(wbytes[r].sum())
    d = design if res_bytes == design.resident_bytes else _with_resident(design, res_bytes)
    total = rc.fixed_ms + float(np.where(s, f, np.where(r, fr, rc.cpu_ms)).sum())
    gap = getattr(res, "mip_gap", 0.0) or 0.0
    method = f"MILP (HiGHS), optimal, gap {gap:.1e}; PS runtime {runtime}"
    return Solution(Plan(name, d, offload, resident, runtime=runtime), total, method, True)


def _with_resident(design: EngineDesign, nbytes: int) -> EngineDesign:
    from dataclasses import replace

    return replace(design, resident_bytes=nbytes)


def brute_force(prep: Prepared, design: EngineDesign, runtime: str
                ) -> tuple[float, frozenset[str], frozenset[str]]:
    """Exhaustive search over every group's three options (tests only: 3**groups plans)."""
    import itertools

    rc = prep.runtime(runtime)
    f_ms, _ = fpga_sig_ms(prep, design)
    fr_ms, _ = fpga_sig_ms(prep, design, resident=True)
    cap = onchip_capacity_bytes(prep, design)
    best = (math.inf, frozenset(), frozenset())
    for choice in itertools.product((0, 1, 2), repeat=len(prep.groups)):
        used = 0
        total = rc.fixed_ms
        for g, sig, cpu, extra, ch in zip(prep.groups, prep.sig_of, rc.cpu_ms,
                                          rc.offload_ps_ms, choice, strict=True):
            if ch == 0:
                total += cpu
            elif ch == 1:
                total += f_ms[sig] + extra
            else:
                used += _group_bytes(design, g.n, g.k, g.ternary)
                total += fr_ms[sig] + extra
        if used <= cap and total < best[0]:
            off = frozenset(n for g, ch in zip(prep.groups, choice, strict=True) if ch
                            for n in g.names)
            res = frozenset(n for g, ch in zip(prep.groups, choice, strict=True) if ch == 2
                            for n in g.names)
            best = (total, off, res)
    return best
