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
from dse.model.engine import (
    BRAM36_BYTES,
    URAM_BYTES,
    EngineDesign,
    engine_resources,
)
from dse.model.packing import get_packing
from dse.model.project import (
    CostContext,
    Plan,
    Scenario,
    baseline_layer_ms,
    group_calls,
    memory_bytes,
)
from dse.model.workload import Layer, Workload

OBJECTIVES = ("decode", "prefill", "mix")


@dataclass(frozen=True)
class Objective:
    """What the search minimises: decode ms/token, prefill ms, or a prompt+generate mix.

    ``against`` is the CPU software the layers left on the CPU run: the profiled PyTorch
    ("torch") or a bitnet.cpp-class kernel ("bitnetcpp").
    """

    kind: str = "decode"
    prompt_tokens: int = 128
    gen_tokens: int = 128
    view: str = "on-board"
    against: str = "torch"

    @property
    def context_tokens(self) -> int:
        return self.prompt_tokens + self.gen_tokens

    def scenarios(self) -> list[tuple[Scenario, float]]:
        """(scenario, weight) pairs whose weighted sum is the objective, in ms."""
        dec = Scenario(self.view, "decode", 1, self.context_tokens)
        pre = Scenario(self.view, "prefill", self.prompt_tokens, self.context_tokens)
        if self.kind == "decode":
            return [(dec, 1.0)]
        if self.kind == "prefill":
            return [(pre, 1.0)]
        return [(pre, 1.0), (dec, float(self.gen_tokens))]

    def describe(self) -> str:
        if self.kind == "decode":
            return "decode ms per token"
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
class Prepared:
    """Design-independent data of a search: groups and their CPU cost under the objective."""

    workload: Workload
    ctx: CostContext
    objective: Objective
    groups: tuple[Group, ...]
    #: Objective ms of each group on the CPU (weighted over the objective's scenarios).
    cpu_ms: np.ndarray
    #: Objective ms of everything that is not a Linear, and of the whole baseline.
    nonlinear_ms: float
    baseline_ms: float
    #: Signature index of each group (groups with equal N, K and kind cost the same).
    sig_of: np.ndarray
    sigs: tuple[tuple[int, int, bool], ...]
    scenarios: tuple[tuple[Scenario, float], ...]


def prepare(wl: Workload, ctx: CostContext, objective: Objective, fuse: bool = True) -> Prepared:
    """Group the layers and price every group on the CPU once (pure)."""
    from dse.model.project import project  # local: only for the non-Linear share

    scen = objective.scenarios()
    groups = tuple(Group(key, tuple(ls)) for key, ls in group_calls(list(wl.layers), fuse).items())
    cpu = np.zeros(len(groups))
    nonlinear = 0.0
    base_total = 0.0
    idx = 2 if objective.against == "bitnetcpp" else 1
    for sc, w in scen:
        base = baseline_layer_ms(wl, ctx.board, ctx, sc)
        for i, g in enumerate(groups):
            cpu[i] += w * sum(base[name][idx - 1] for name in g.names)
        empty = project(wl, Plan("cpu", EngineDesign(1, 1), frozenset()), ctx, sc, base)
        nonlinear += w * empty.nonlinear_ms
        base_total += w * (empty.baseline_ms if idx == 1 else empty.bitnetcpp_ms)
    sig_index: dict[tuple[int, int, bool], int] = {}
    sig_of = np.array([sig_index.setdefault((g.n, g.k, g.ternary), len(sig_index))
                       for g in groups])
    return Prepared(wl, ctx, objective, groups, cpu, nonlinear, base_total, sig_of,
                    tuple(sig_index), tuple(scen))


@dataclass(frozen=True)
class DesignEval:
    """A design priced with the exactly optimal offload set (no residency)."""

    design: EngineDesign
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
            cc = call_cost(design, board, c, n=n, k=k, m=sc.m, weight_bytes=wbytes, dense=dense)
            ms[s] += w * cc.time_s * 1e3
            ddr[s] += w * cc.weight_bytes
    return ms, ddr


def evaluate_design(prep: Prepared, design: EngineDesign) -> DesignEval:
    """Best objective of ``design`` with every group placed where it is faster (exact)."""
    ms, ddr = fpga_sig_ms(prep, design)
    f = ms[prep.sig_of]
    offload = f < prep.cpu_ms
    total = prep.nonlinear_ms + float(np.where(offload, f, prep.cpu_ms).sum())
    ddr_bytes = float(ddr[prep.sig_of][offload].sum())
    lut = engine_resources(design, prep.ctx.board, prep.ctx.constants).lut
    return DesignEval(design, total, offload, lut, ddr_bytes)


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


def solve_plan(prep: Prepared, design: EngineDesign, name: str = "plan",
               allow_resident: bool = True) -> Solution:
    """Optimal offload and resident sets for ``design`` (MILP; exact up to HiGHS's tolerance).

    Variables per group: s (streamed on the FPGA) and r (resident), s + r <= 1. Minimise
    sum (f - cpu) s + (f_res - cpu) r subject to resident bytes <= on-chip capacity and, on
    the board, the plan's DDR footprint <= DDR capacity.
    """
    groups = prep.groups
    ng = len(groups)
    # the shipped overlay streams every weight from DDR: no resident set for its designs
    allow_resident = allow_resident and not design.buildable
    f_ms, _ = fpga_sig_ms(prep, design)
    f = f_ms[prep.sig_of]
    cap = onchip_capacity_bytes(prep, design) if allow_resident else 0
    fr = fpga_sig_ms(prep, design, resident=True)[0][prep.sig_of] if cap else np.full(ng, np.inf)
    big = 1e12
    f = np.where(np.isfinite(f), f, big)
    fr = np.where(np.isfinite(fr), fr, big)
    wbytes = np.array([_group_bytes(design, g.n, g.k, g.ternary) for g in groups], dtype=float)
    cost = np.concatenate([f - prep.cpu_ms, fr - prep.cpu_ms])
    rows = [np.concatenate([np.eye(ng), np.eye(ng)], axis=1)]
    lo, hi = [np.zeros(ng)], [np.ones(ng)]
    rows.append(np.concatenate([np.zeros(ng), wbytes])[None, :])
    lo.append(np.array([0.0]))
    hi.append(np.array([float(cap)]))
    board = prep.ctx.board
    if prep.objective.view == "on-board":
        sc = prep.scenarios[0][0]
        base_mem = memory_bytes(prep.workload, Plan("cpu", design, frozenset()), prep.ctx, sc)
        i2 = get_packing("i2")
        delta = np.array([
            sum((layer_weight_bytes(layer, design) - (i2.matrix_bytes(layer.n, layer.k)
                 if layer.ternary else layer.weights * 2)
                 + (layer.weights * 2 if not layer.ternary and design.head == "int8" else 0))
                for layer in g.layers) for g in groups], dtype=float)
        rows.append(np.concatenate([delta, delta])[None, :])
        lo.append(np.array([-np.inf]))
        hi.append(np.array([float(board.ddr.capacity_bytes - base_mem)]))
    cons = LinearConstraint(np.vstack(rows), np.concatenate(lo), np.concatenate(hi))
    res = milp(cost, constraints=cons, integrality=np.ones(2 * ng), bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        # infeasible (e.g. the model does not fit DDR even on the CPU): offload nothing
        plan = Plan(name, design, frozenset(), note=f"MILP: {res.message}")
        return Solution(plan, prep.baseline_ms, f"MILP ({res.message})", False)
    x = np.round(res.x).astype(bool)
    s, r = x[:ng], x[ng:]
    offload = frozenset(n for i, g in enumerate(groups) if s[i] or r[i] for n in g.names)
    resident = frozenset(n for i, g in enumerate(groups) if r[i] for n in g.names)
    res_bytes = int(wbytes[r].sum())
    d = design if res_bytes == design.resident_bytes else _with_resident(design, res_bytes)
    total = prep.nonlinear_ms + float(np.where(s, f, np.where(r, fr, prep.cpu_ms)).sum())
    gap = getattr(res, "mip_gap", 0.0) or 0.0
    method = f"MILP (HiGHS), optimal, gap {gap:.1e}"
    return Solution(Plan(name, d, offload, resident), total, method, True)


def _with_resident(design: EngineDesign, nbytes: int) -> EngineDesign:
    from dataclasses import replace

    return replace(design, resident_bytes=nbytes)


def brute_force(prep: Prepared, design: EngineDesign) -> tuple[float, frozenset[str],
                                                               frozenset[str]]:
    """Exhaustive search over every group's three options (tests only: 3**groups plans)."""
    import itertools

    f_ms, _ = fpga_sig_ms(prep, design)
    fr_ms, _ = fpga_sig_ms(prep, design, resident=True)
    cap = onchip_capacity_bytes(prep, design)
    best = (math.inf, frozenset(), frozenset())
    for choice in itertools.product((0, 1, 2), repeat=len(prep.groups)):
        used = 0
        total = prep.nonlinear_ms
        for g, sig, cpu, ch in zip(prep.groups, prep.sig_of, prep.cpu_ms, choice, strict=True):
            if ch == 0:
                total += cpu
            elif ch == 1:
                total += f_ms[sig]
            else:
                used += _group_bytes(design, g.n, g.k, g.ternary)
                total += fr_ms[sig]
        if used <= cap and total < best[0]:
            off = frozenset(n for g, ch in zip(prep.groups, choice, strict=True) if ch
                            for n in g.names)
            res = frozenset(n for g, ch in zip(prep.groups, choice, strict=True) if ch == 2
                            for n in g.names)
            best = (total, off, res)
    return best
