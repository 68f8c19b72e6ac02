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

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from dse.errors import DseError
from dse.model.cost import call_cost, layer_weight_bytes
from dse.model.cpu import RUNTIMES
from dse.model.energy import rates, require_power
from dse.model.engine import (
    BRAM36_BYTES,
    URAM_BYTES,
    EngineDesign,
    Resources,
    engine_resources,
    fabric_key,
)
from dse.model.evidence import beyond_mhz, plan_mhz
from dse.model.msg import Msg, msg
from dse.model.price import (
    Fixed,
    Group,
    PriceTable,
    PsPrices,
    T,
    fixed_row,
    fixed_side,
    group_layers,
    price_table,
    row,
)
from dse.model.project import (
    Baseline,
    CostContext,
    Plan,
    Scenario,
    baselines,
    call_work,
    cpus,
    embedding_bytes,
    layer_board_bytes,
    ps_prices,
    two_stage_work,
)
from dse.model.units import GlueUnit, PLUnit, UnitEnv
from dse.model.workload import Layer, Workload

OBJECTIVES = ("decode", "throughput", "ttft", "prefill", "chat", "mix", "energy", "edp")
#: Objectives that run a prompt (in groups of G positions, ``dse.model.prompt``).
PROMPT_OBJECTIVES = ("ttft", "prefill", "chat", "mix")
#: KV-cache formats ``dse explore`` chooses among by default: fp16 (llama.cpp's and
#: bitnet.cpp's default cache) and int8 with a scale per cached row (the class of llama.cpp's
#: q8_0 cache, and what the attention unit reads).
SEARCHED_KV_DTYPES = ("fp16", "int8")
#: Objectives priced in joules (per generated token) rather than milliseconds.
ENERGY_OBJECTIVES = ("energy", "edp")


@dataclass(frozen=True)
class UnitChoice:
    """The builds of one PL unit kind the search may add (e.g. 1 to 4 attention units), each
    marked buildable by the engine template or a what-if (``dse.search.space.unit_choices``)."""

    kind: str
    options: tuple[PLUnit, ...]


@dataclass(frozen=True)
class Objective:
    """What the search minimises.

    - ``decode``: ms of a decode round of ``sequences`` (one token each: the per-sequence
      latency); ``throughput``: the same round's ms per token over its sequences (its inverse
      is the aggregate tok/s); both at ``context_tokens`` of context (default: prompt +
      generated tokens, the longest the cache gets);
    - ``ttft`` (``prefill``, its older name): the time to first token of a prompt of
      ``prompt_tokens``, run in groups of G positions (``dse.model.prompt``);
    - ``chat``: a chat turn, the prompt then ``gen_tokens`` generated (the first with the
      prompt, the rest in rounds of ``sequences`` at their own mean context, or at
      ``context`` when given);
    - ``mix``: the prompt plus ``gen_tokens`` decode rounds at ``context_tokens``;
    - ``energy`` / ``edp``: decode joules per token, or joules x seconds per token.

    With a ``kv_dtype`` cache and ``threads`` CPU threads (None: every core). ``runtimes`` are
    the PS runtimes the search may choose for what stays on the CPU. ``prompt_group``: the
    prompt's positions per forward, fixed (None: each design's VMAX, the most it holds; the
    model's cost per position falls with G, so that is the best G a design has).
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
    #: Whether the head may run two-stage on the engines (stage 2 rescoring top-K on the PS).
    two_stage_head: bool = True
    head_top_k: int = 256
    #: Whether plans may add an FFN glue unit beside the engines (a what-if).
    glue_unit: bool = True
    #: KV-cache formats the search may choose per plan (empty: ``kv_dtype`` only).
    kv_dtypes: tuple[str, ...] = ()
    #: The PL units plans may add (``dse.search.space.unit_choices``: from the engine
    #: template x the board); None: ``explore`` derives them from its design space's template
    #: (``prepare`` alone: only the glue what-if, if ``glue_unit``).
    units: tuple[UnitChoice, ...] | None = None
    prompt_group: int | None = None

    @property
    def prompted(self) -> bool:
        """Whether the objective runs a prompt (in groups, ``dse.model.prompt``)."""
        return self.kind in PROMPT_OBJECTIVES

    def group_for(self, design: EngineDesign) -> int | None:
        """The prompt group a design runs: None without a prompt; -1 where the design holds
        fewer vectors than the fixed ``prompt_group`` (it cannot run the prompt)."""
        if not self.prompted:
            return None
        if self.prompt_group is not None:
            return self.prompt_group if self.prompt_group <= design.vectors else -1
        return min(design.vectors, self.prompt_tokens)

    def unit_choices(self) -> tuple[UnitChoice, ...]:
        if self.units is not None:
            return self.units
        return (UnitChoice("glue", (GlueUnit(),)),) if self.glue_unit else ()

    @property
    def context_tokens(self) -> int:
        return self.context or self.prompt_tokens + self.gen_tokens

    @property
    def kv_formats(self) -> tuple[str, ...]:
        """The KV-cache formats plans and baselines may keep."""
        return self.kv_dtypes or (self.kv_dtype,)

    def scenarios(self, kv_dtype: str | None = None, group: int | None = None
                  ) -> list[tuple[Scenario, float]]:
        """(scenario, weight) pairs whose weighted sum is the objective, in ms (with the KV
        cache in ``kv_dtype``, default the first format allowed; the prompt in groups of
        ``group`` positions, default one forward: a CPU-only runtime's)."""
        from dse.model.prompt import decode_scenarios, prompt_scenarios

        kv = kv_dtype or self.kv_formats[0]
        dec = Scenario(self.view, "decode", 1, self.context_tokens, kv,
                       self.sequences, self.threads)
        if self.kind in ("decode", *ENERGY_OBJECTIVES):
            return [(dec, 1.0)]
        if self.kind == "throughput":
            return [(dec, 1.0 / self.sequences)]
        prompt = list(prompt_scenarios(self.prompt_tokens, group or self.prompt_tokens,
                                       view=self.view, kv_dtype=kv, threads=self.threads))
        if self.kind in ("ttft", "prefill"):
            return prompt
        if self.kind == "mix":
            return [*prompt, (dec, float(self.gen_tokens))]
        return [*prompt, *decode_scenarios(
            self.prompt_tokens, self.gen_tokens, sequences=self.sequences, view=self.view,
            kv_dtype=kv, threads=self.threads, context=self.context)]

    @property
    def batched(self) -> bool:
        """Whether any forward may carry more than one vector per weight pass (a round of
        several sequences, or a prompt in groups)."""
        return self.sequences > 1 or self.prompted

    @property
    def unit(self) -> str:
        return {"energy": "J", "edp": "J·s"}.get(self.kind, "ms")

    def describe(self) -> str:
        if self.kind == "throughput":
            return (f"decode ms per token over a round of {self.sequences} sequences at "
                    f"{self.context_tokens} tokens of context (1000 / it = aggregate tok/s)")
        if self.kind in ("ttft", "prefill"):
            return (f"time to first token, ms ({self.prompt_tokens} prompt tokens in groups "
                    f"of up to VMAX positions, then the first token)")
        if self.kind == "chat":
            return (f"chat turn ms ({self.prompt_tokens} prompt tokens, then "
                    f"{self.gen_tokens} generated" + (f" in rounds of {self.sequences}"
                                                      if self.sequences > 1 else "") + ")")
        if self.kind == "energy":
            return f"decode joules per token at {self.context_tokens} tokens of context"
        if self.kind == "edp":
            return (f"decode energy-delay product (J per token x s per token) at "
                    f"{self.context_tokens} tokens of context")
        if self.kind == "decode":
            if self.sequences > 1:
                return (f"decode ms per round of {self.sequences} sequences at "
                        f"{self.context_tokens} tokens of context")
            return f"decode ms per token at {self.context_tokens} tokens of context"
        return (f"workload ms ({self.prompt_tokens} prompt tokens + {self.gen_tokens} generated "
                f"tokens)")


@dataclass(frozen=True)
class RuntimePrices:
    """The PS side of the price table under one runtime and KV format, per scenario of the
    objective (``dse.model.price.PsPrices``), with its CPU-only baseline."""

    runtime: str
    #: The KV-cache format these prices keep.
    kv_dtype: str
    #: The prompt group of its scenarios (None: the objective runs no prompt).
    group: int | None
    ps: tuple[PsPrices, ...]
    #: The objective's scenarios in this KV format, with their weights.
    scenarios: tuple[tuple[Scenario, float], ...]
    #: Objective (ms or J) with everything on the CPU, and whether that fits the board's DDR.
    baseline_ms: float
    baseline_feasible: bool

    #: What an engine call reads of the scenarios: their tokens, not their KV format.
    tokens_key: tuple = ()


@dataclass(frozen=True)
class Prepared:
    """Design-independent data of a search: groups, the PS side of their prices per runtime,
    and the PL units the search may add."""

    workload: Workload
    ctx: CostContext
    objective: Objective
    groups: tuple[Group, ...]
    runtimes: tuple[RuntimePrices, ...]
    #: Objective ms of the best CPU-only runtime that fits (the fastest if none fits).
    baseline_ms: float
    baseline_runtime: str
    #: Signature index of each group (groups with equal N, K and kind cost the same).
    sig_of: np.ndarray
    sigs: tuple[tuple[int, int, bool], ...]
    scenarios: tuple[tuple[Scenario, float], ...]
    #: The CPU-only baselines of each scenario (they depend on no design): each runtime with
    #: the allowed KV format that serves it best.
    baselines: tuple[tuple[Baseline, ...], ...] = ()
    #: The PL unit kinds the search may add, with their builds.
    choices: tuple[UnitChoice, ...] = ()
    #: Each CPU-only runtime's objective time, ms (the prompt in one forward: its batch).
    base_times: dict[str, float] = field(default_factory=dict)
    #: What the search has priced already (designs' calls, units' parts, resources).
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def resources(self, design: EngineDesign, units: tuple[PLUnit, ...] = ()) -> Resources:
        """The design's fabric with ``units`` beside it (cached)."""
        key = ("res", fabric_key(design), units)  # the clock is not read
        res = self._cache.get(key)
        if res is None:
            if units:
                res = self.resources(design)
                for u in units:
                    ukey = ("unit_res", u)
                    ur = self._cache.get(ukey)
                    if ur is None:
                        ur = self._cache[ukey] = u.resources(self.ctx.constants)
                    res = res + ur
            else:
                res = engine_resources(design, self.ctx.board, self.ctx.constants)
            self._cache[key] = res
        return res

    def seed_resources(self, priced: dict[EngineDesign, Resources]) -> None:
        """Take designs' fabric already priced (``dse.search.space.priced_designs``: the
        same ``engine_resources``) into the cache ``resources`` reads."""
        for design, res in priced.items():
            self._cache.setdefault(("res", fabric_key(design), ()), res)

    def fits(self, design: EngineDesign, units: tuple[PLUnit, ...] = ()) -> bool:
        """Whether the design with ``units`` stays within the board's caps (cached)."""
        key = ("fits", fabric_key(design), units)
        ok = self._cache.get(key)
        if ok is None:
            ok = self._cache[key] = not self.resources(design, units).overflow(self.ctx.board)
        return ok

    def clock_ok(self, design: EngineDesign, units: tuple[PLUnit, ...] = ()) -> bool:
        """Whether the clock evidence supports the design's clock with ``units`` beside it
        (cached; always true without fabric evidence, and for what-ifs, which are labelled
        as such and never recommended)."""
        if self.ctx.constants.fabric is None or not design.buildable:
            return True
        res = self.resources(design, units)
        # the supported clock reads the engines' RTL, packing and count, the units and the
        # utilization (``plan_mhz``), not the design's clock
        key = ("clock_mhz", design.rtl, design.packing, design.engines, units, res.lut)
        if key not in self._cache:
            self._cache[key] = plan_mhz(design, units, self.ctx.board, self.ctx.constants, res)
        return not beyond_mhz(design.clock_mhz, self._cache[key])

    def runtime(self, name: str, kv_dtype: str | None = None, group: int | None = None
                ) -> RuntimePrices:
        """A runtime's prices with a KV format (default: the one its baseline keeps) and a
        prompt group (default: the first priced)."""
        if kv_dtype is None:
            kv_dtype = next(r for r in self.baseline_runtimes() if r.runtime == name).kv_dtype
        return next(r for r in self.runtimes if r.runtime == name and r.kv_dtype == kv_dtype
                    and group in (None, r.group))

    def runtimes_for(self, design: EngineDesign) -> tuple[RuntimePrices, ...]:
        """The prices a design can be run under: its prompt group's (every one without a
        prompt)."""
        g = self.objective.group_for(design)
        return tuple(r for r in self.runtimes if r.group == g)

    def plan_scenarios(self, plan: Plan) -> list[tuple[Scenario, float]]:
        """The objective's scenarios as ``plan`` runs them: its KV format, its prompt group
        (``dse.model.prompt.plan_group``: its engine's VMAX unless it says)."""
        from dse.model.prompt import plan_group

        obj = self.objective
        group = None
        if obj.prompted:
            group = plan_group(plan, obj.prompt_tokens, obj.prompt_group)
        return obj.scenarios(plan.kv_dtype, group)

    def baseline_runtimes(self) -> tuple[RuntimePrices, ...]:
        """One entry per runtime: the KV format whose CPU-only baseline is fastest among
        those that fit (of all, if none fits)."""
        out = []
        for name in dict.fromkeys(r.runtime for r in self.runtimes):
            mine = [r for r in self.runtimes if r.runtime == name]
            fit = [r for r in mine if r.baseline_feasible] or mine
            out.append(min(fit, key=lambda r: r.baseline_ms))
        return tuple(out)

    def env(self, design: EngineDesign, rp: RuntimePrices, i: int) -> UnitEnv:
        """The units' pricing environment for ``rp``'s i-th scenario beside ``design``."""
        sc = rp.scenarios[i][0]
        _, cpu, threads = cpus(self.workload, self.ctx.board, sc)
        return UnitEnv(self.workload, design.clock_mhz, design.engines, self.ctx.board,
                       self.ctx.constants, sc,
                       rp.runtime, cpu, threads)

    def fixed(self, design: EngineDesign, rp: RuntimePrices, i: int,
              units: tuple[PLUnit, ...]) -> Fixed:
        """``fixed_side`` of ``units`` on ``rp``'s i-th scenario (cached: a unit reads the
        design only through its clock and its engines' ports, ``UnitEnv``)."""
        key = ("fixed", rp.runtime, rp.kv_dtype, rp.group, i, units) + (
            (design.clock_mhz, design.engines) if units else ())
        fx = self._cache.get(key)
        if fx is None:
            fx = self._cache[key] = fixed_side(rp.ps[i], units, self.env(design, rp, i))
        return fx

    def serves(self, unit: PLUnit, rp: RuntimePrices) -> bool:
        """Whether ``unit`` can run every scenario of ``rp`` (cached per unit and KV format;
        a unit's rules read the model and the scenario, not the design)."""
        key = ("serves", unit, rp.runtime, rp.kv_dtype, rp.group)
        ok = self._cache.get(key)
        if ok is None:
            design = EngineDesign(1, 1)
            ok = self._cache[key] = not any(unit.violations(self.env(design, rp, i))
                                            for i in range(len(rp.scenarios)))
        return ok


def prepare(wl: Workload, ctx: CostContext, objective: Objective, fuse: bool = True
            ) -> Prepared:
    """Group the layers and price every group on the CPU under each runtime once (pure)."""
    if objective.kind in ENERGY_OBJECTIVES:
        require_power(ctx.board, f"--objective {objective.kind}")
    limit = wl.config.max_positions
    if objective.prompt_tokens > limit:
        raise DseError(f"--prompt-tokens: expected at most {limit} (the model's "
                       f"max_position_embeddings), got {objective.prompt_tokens}")
    if objective.context is None and objective.context_tokens > limit:
        raise DseError(f"--prompt-tokens + --gen-tokens: expected at most {limit} (the "
                       f"model's max_position_embeddings; or give --context-tokens), got "
                       f"{objective.context_tokens}")
    prompt_groups: tuple[int | None, ...] = (None,)
    if objective.prompted:
        prompt_groups = (objective.prompt_group,) if objective.prompt_group else tuple(
            sorted({min(g, objective.prompt_tokens) for g in objective_groups(objective)}))
    for kv in objective.kv_formats:
        for g in prompt_groups:
            for sc, _ in objective.scenarios(kv, g):
                sc.validate(wl.config)
    groups = group_layers(list(wl.layers), fuse)
    c = ctx.constants
    per_runtime = []
    # the CPU-only baselines run the prompt in one forward (their runtime's batch)
    memo: dict = {}  # the prices of the operators and Linears on the CPU, shared
    base_of_kv = {kv: [baselines(wl, ctx, sc, memo) for sc, _ in objective.scenarios(kv)]
                  for kv in objective.kv_formats}
    cpu_weights = [w for _, w in objective.scenarios()]
    ps_of: dict[tuple, PsPrices] = {}   # a scenario's prices serve every group that has it
    for runtime, kv, g in ((r, kv, g) for r in objective.runtimes for kv in objective.kv_formats
                           for g in prompt_groups):
        scen = tuple(objective.scenarios(kv, g))
        ps = []
        for sc, _ in scen:
            key = (runtime, sc)
            if key not in ps_of:
                host, target, threads = cpus(wl, ctx.board, sc)
                ps_of[key] = ps_prices(wl, runtime, sc, groups, host, target, threads,
                                       ctx.board, c, engines=True, memo=memo)
            ps.append(ps_of[key])
        base_by_sc = base_of_kv[kv]
        base = sum(w * _baseline_units(objective, next(b for b in bs if b.runtime == runtime))
                   for w, bs in zip(cpu_weights, base_by_sc, strict=True))
        fits = all(next(b.feasible for b in bs if b.runtime == runtime) for bs in base_by_sc)
        per_runtime.append(RuntimePrices(runtime, kv, g, tuple(ps), scen, base, fits, tuple(
            (sc.phase, sc.m, sc.sequences, sc.threads, sc.logits, w) for sc, w in scen)))
    fitting = [r for r in per_runtime if r.baseline_feasible] or per_runtime
    best = min(fitting, key=lambda r: r.baseline_ms)
    # Each runtime's baseline keeps the KV format that serves it best (as plans choose theirs).
    chosen = {}
    for r in per_runtime:
        old = chosen.get(r.runtime)
        if old is None or (r.baseline_feasible, -r.baseline_ms) > (old.baseline_feasible,
                                                                    -old.baseline_ms):
            chosen[r.runtime] = r
    base_by_sc = [tuple(next(b for b in base_of_kv[chosen[name].kv_dtype][i]
                             if b.runtime == name) for name in RUNTIMES if name in chosen)
                  + tuple(b for b in base_of_kv[objective.kv_formats[0]][i]
                          if b.runtime not in chosen)
                  for i in range(len(objective.scenarios()))]
    # the CPU-only runtimes' objective times (ms), each in the KV format that serves it best
    base_times = {b.runtime: sum(w * bs[j].ms for w, bs in zip(cpu_weights, base_by_sc,
                                                                strict=True))
                  for j, b in enumerate(base_by_sc[0])}
    scen = objective.scenarios(best.kv_dtype)
    sig_index: dict[tuple[int, int, bool], int] = {}
    sig_of = np.array([sig_index.setdefault((g.n, g.k, g.ternary), len(sig_index))
                       for g in groups])
    return Prepared(wl, ctx, objective, groups, tuple(per_runtime), best.baseline_ms,
                    best.runtime, sig_of, tuple(sig_index), tuple(scen), tuple(base_by_sc),
                    objective.unit_choices(), base_times, memo)


#: Prompt groups the search prices when the objective fixes none: every VMAX the design
#: space may hold (``dse.search.space.PROMPT_VMAX``); a design runs the largest it holds.
def objective_groups(objective: Objective) -> tuple[int, ...]:
    from dse.search.space import PROMPT_VMAX

    return tuple(v for v in (objective.sequences, *PROMPT_VMAX) if v >= objective.sequences)


def projection_units(objective: Objective, p) -> float:
    """One projection in the objective's units (ms, J per token, or J/token x s/token)."""
    if objective.kind not in ENERGY_OBJECTIVES:
        return p.plan_ms
    e = p.energy
    return e.j_per_token if objective.kind == "energy" else e.j_per_token * e.time_s / e.tokens


def _baseline_units(objective: Objective, b: Baseline) -> float:
    """A CPU-only baseline in the objective's units."""
    if objective.kind in ENERGY_OBJECTIVES:
        e = b.energy
        if objective.kind == "energy":
            return e.j_per_token
        return e.j_per_token * e.time_s / e.tokens
    return b.ms


# -- one design ------------------------------------------------------------------------------

def _group_bytes(design: EngineDesign, n: int, k: int, ternary: bool) -> int:
    if ternary:
        return design.packing_spec.matrix_bytes(n, k)
    return layer_weight_bytes(Layer("", "lm_head", None, n, k, False, 0.0, 1, 0.0), design)


def _groups_bytes(prep: Prepared, design: EngineDesign) -> np.ndarray:
    """Each group's weight bytes of one pass in ``design``'s format (``_group_bytes``; cached
    per packing and head unit, all they read of the design)."""
    key = ("group_bytes", design.packing, design.head)
    hit = prep._cache.get(key)
    if hit is None:
        per_sig = [_group_bytes(design, n, k, ternary) for n, k, ternary in prep.sigs]
        hit = prep._cache[key] = np.array([per_sig[s] for s in prep.sig_of], dtype=float)
    return hit


def _stage2_row(prep: Prepared, n: int, k: int, sc: Scenario) -> np.ndarray:
    """Stage 2 of a two-stage head of N x K in ``sc`` as a price row (``two_stage_work`` on
    the scenario's CPU; cached: it reads no design)."""
    key = ("stage2", n, k, sc)
    hit = prep._cache.get(key)
    if hit is None:
        _, cpu, threads = cpus(prep.workload, prep.ctx.board, sc)
        head = Layer("lm_head", "lm_head", None, n, k, False, 0.0, 1, 0.0)
        hit = prep._cache[key] = row(two_stage_work(head, prep.objective.head_top_k, sc, cpu,
                                                    threads, prep.ctx.constants))
    return hit


def call_rows(prep: Prepared, design: EngineDesign, rp: RuntimePrices, resident: bool = False
              ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Each group as an engine call on ``design``, per scenario of ``rp`` (work rows, inf where
    it cannot run there; without the runtime's launch, which the price table adds), and the
    weight bytes each streams from DDR per forward (weighted): ``call_cost`` once per call
    shape, plus stage 2 of a two-stage head on the PS (``two_stage_work``)."""
    key = ("calls", design, resident, rp.tokens_key)
    hit = prep._cache.get(key)
    if hit is not None:
        return hit
    board, c = prep.ctx.board, prep.ctx.constants
    per_sc = []
    ddr = np.zeros(len(prep.sigs))
    for sc, w in rp.scenarios:
        sig = np.zeros((len(prep.sigs), 4))
        for s, (n, k, ternary) in enumerate(prep.sigs):
            if not ternary and not prep.objective.two_stage_head and not design.head:
                sig[s] = np.inf
                continue
            m = sc.m * sc.sequences if ternary else (sc.sequences if sc.logits else 0)
            if m == 0:  # the head of a forward without logits: no call (``idle_groups``)
                continue
            wbytes = 0 if resident else _group_bytes(design, n, k, ternary)
            dense = None if ternary else design.head
            cc = call_cost(design, board, c, n=n, k=k, m=m, weight_bytes=wbytes, dense=dense,
                           launch_us=0.0)
            sig[s] = row(call_work(cc))
            ddr[s] += w * cc.weight_bytes
            if not ternary and not dense:
                sig[s] += _stage2_row(prep, n, k, sc)
        per_sc.append(sig[prep.sig_of])
    out = (tuple(per_sc), ddr[prep.sig_of])
    prep._cache[key] = out
    return out


def table_of(prep: Prepared, design: EngineDesign, rp: RuntimePrices,
             units: tuple[PLUnit, ...], resident: bool = False,
             stream: tuple[np.ndarray, ...] | None = None) -> PriceTable:
    """The price table of ``design`` with ``units`` under ``rp``, weighted over the objective's
    scenarios: the same ``price_table`` ``project`` sums (``resident``: with the resident
    option priced too). ``stream``: each scenario's call rows of a batch of designs that share
    ``design``'s fixed side (``Prepared.fixed``), stacked one design a row (a batch's table)."""
    if stream is None:
        stream = call_rows(prep, design, rp)[0]
    res = call_rows(prep, design, rp, resident=True)[0] if resident else None
    total = None
    for i, (_, w) in enumerate(rp.scenarios):
        t = price_table(rp.ps[i], prep.fixed(design, rp, i, units), stream[i],
                        None if res is None else res[i]).scaled(w)
        total = t if total is None else total + t
    return total


@dataclass(frozen=True)
class Pricing:
    """One design under one runtime, in the objective's units: each group on the CPU,
    streamed, resident; and the fixed rest. Times in ms, or joules for energy objectives."""

    cpu: np.ndarray
    stream: np.ndarray
    resident: np.ndarray
    fixed: float
    #: Seconds of each option, for the energy-delay product (None for other objectives).
    cpu_s: np.ndarray | None
    stream_s: np.ndarray | None
    resident_s: np.ndarray | None
    fixed_s: float
    tokens: int

    def total(self, stream: np.ndarray, resident: np.ndarray) -> float:
        """The objective of a choice of streamed and resident groups (the rest on the CPU)."""
        units = self.fixed + float(np.where(stream, self.stream, np.where(
            resident, self.resident, self.cpu)).sum())
        if self.cpu_s is None:
            return units
        secs = self.fixed_s + float(np.where(stream, self.stream_s, np.where(
            resident, self.resident_s, self.cpu_s)).sum())
        return units / self.tokens * (secs / self.tokens)

    def totals(self, stream: np.ndarray) -> list[float]:
        """``total(stream[j], no group resident)`` of every row of a batch (``pricing`` of
        several designs at once, ``stream`` and ``self.stream`` one row per design; time and
        energy objectives): each row summed as ``total`` sums it."""
        if self.cpu_s is not None:
            raise ValueError("Pricing.totals: the energy-delay product is priced one design "
                             "at a time")
        sums = np.where(stream, self.stream, self.cpu).sum(axis=-1)
        return [self.fixed + float(x) for x in sums]


def pricing(prep: Prepared, design: EngineDesign, rp: RuntimePrices,
            units: tuple[PLUnit, ...] = (), resident: bool = False,
            table: PriceTable | None = None) -> Pricing:
    """Objective units of every option of every group for ``design`` with ``units`` under
    ``rp``: the price table (``table_of``, or ``table`` when the caller built it) in its
    independent per-group form, in ms, or in joules through the board's power model
    (``dse.model.energy.rates``)."""
    if table is None:
        table = table_of(prep, design, rp, units, resident)
    cpu_w, f_work, r_work, fixed_w = table.linear()
    kind = prep.objective.kind
    if kind not in ENERGY_OBJECTIVES:  # [..., T]: a batch's table has a row per design
        return Pricing(cpu_w[..., T] * 1e3, f_work[..., T] * 1e3, r_work[..., T] * 1e3,
                       float(fixed_w[T] * 1e3), None, None, None, 0.0, 1)
    coef = np.array(rates(prep.ctx.board.power, prep.resources(design, units),
                          design.clock_mhz))
    tokens = prep.scenarios[0][0].sequences
    per_token = 1.0 / tokens if kind == "energy" else 1.0
    with np.errstate(invalid="ignore"):
        cpu, stream, res_j = (np.where(np.isinf(w).any(axis=1), np.inf, w @ coef) * per_token
                              for w in (cpu_w, f_work, r_work))
    fixed = float(fixed_w @ coef) * per_token
    if kind == "energy":
        return Pricing(cpu, stream, res_j, fixed, None, None, None, 0.0, tokens)
    return Pricing(cpu, stream, res_j, fixed, cpu_w[:, T], f_work[:, T], r_work[:, T],
                   float(fixed_w[T]), tokens)


@dataclass(frozen=True)
class DesignEval:
    """A design priced with the exactly optimal offload set and runtime (no residency)."""

    design: EngineDesign
    runtime: str
    objective_ms: float
    offload: np.ndarray
    lut: float
    ddr_bytes: float
    #: Decode tokens per second and joules per token of the chosen placement, where the
    #: objective is one decode scenario and the board has a power model (else None).
    tokens_per_s: float | None = None
    j_per_token: float | None = None
    #: The PL units of the design's best placement, and the KV-cache format chosen.
    units: tuple[PLUnit, ...] = ()
    kv_dtype: str = "fp16"

    def speedup(self, baseline_ms: float) -> float:
        return baseline_ms / self.objective_ms


def unit_sets(prep: Prepared, design: EngineDesign, rp: RuntimePrices
              ) -> list[tuple[PLUnit, ...]]:
    """Every set of PL units to try beside ``design`` under ``rp``: for each kind none or one
    of its builds, where the build serves the model and every scenario (e.g. an attention unit
    needs the int8 KV cache), what-if units only beside designs the overlay does not build
    either (a buildable design with a what-if unit is a what-if plan, ranked apart), and the
    whole set fits the board's caps."""
    kkey = ("per_kind", design.buildable, rp.runtime, rp.kv_dtype, rp.group)
    per_kind = prep._cache.get(kkey)
    if per_kind is None:
        per_kind = prep._cache[kkey] = tuple(
            (None, *(u for u in ch.options if (u.buildable or not design.buildable)
                     and prep.serves(u, rp))) for ch in prep.choices)
    key = ("sets", design, per_kind)
    hit = prep._cache.get(key)
    if hit is not None:
        return hit
    out = []
    for combo in itertools.product(*per_kind):
        units = tuple(u for u in combo if u is not None)
        if (not units or prep.fits(design, units)) and prep.clock_ok(design, units):
            out.append(units)
    prep._cache[key] = out
    return out


def evaluate_design(prep: Prepared, design: EngineDesign) -> DesignEval:
    """Best objective of ``design``: every group placed where it costs less, under the best
    runtime, KV format and set of PL units (exact for time and energy: given those the groups
    are independent; for the energy-delay product the groups are placed by energy)."""
    return evaluate_designs(prep, [design])[0]


def evaluate_designs(prep: Prepared, designs: list[EngineDesign]) -> list[DesignEval]:
    """``evaluate_design`` of each of ``designs``, in order. The options of every design are
    listed first; for a time objective the placements to price are then priced in batches of
    designs sharing a runtime and a fixed side (one price table with a row per design: the
    same elementwise sums, each row summed as one design's), else one by one; then each
    design takes its best option, in the order a design's own loop meets them."""
    kind = prep.objective.kind
    # The groups' prices depend on the units only through the groups they need and the
    # quantization they take (in energy, through their fabric too): an additive objective
    # reuses one placement per such key and adds each unit set's own fixed rest.
    additive = kind != "edp"
    options: list[list[tuple]] = []
    batches: dict[tuple, list[tuple[int, int]]] = {}  # fixed side -> (design, option) to price
    for j, design in enumerate(designs):
        mine: list[tuple] = []
        seen: set = set()
        for rp in prep.runtimes_for(design):
            for units in unit_sets(prep, design, rp):
                gkey, fixed = _variant(prep, design, rp, units)
                if kind in ENERGY_OBJECTIVES:
                    gkey += (units,)
                new = not additive or gkey not in seen
                seen.add(gkey)
                if new:
                    bkey = (rp.runtime, rp.kv_dtype, rp.group, units) + (
                        (design.clock_mhz, design.engines) if units else ())  # as ``fixed``
                    batches.setdefault(bkey, []).append((j, len(mine)))
                mine.append((rp, units, gkey, fixed, new))
        options.append(mine)
    priced: dict[tuple[int, int], tuple[float, np.ndarray, float, tuple | None]] = {}
    for members in batches.values():
        j0, o0 = members[0]
        rp, units = options[j0][o0][:2]
        if kind in ENERGY_OBJECTIVES:  # the power model reads each design's own fabric
            for j, o in members:
                pr = pricing(prep, designs[j], rp, units)
                offload = pr.stream < pr.cpu
                priced[(j, o)] = (pr.total(offload, np.zeros_like(offload)), offload,
                                  pr.fixed, None)
            continue
        rows = [call_rows(prep, designs[j], rp)[0] for j, _ in members]
        stacked = tuple(np.stack([r[i] for r in rows]) for i in range(len(rp.scenarios)))
        table = table_of(prep, designs[j0], rp, units, stream=stacked)
        pr = pricing(prep, designs[j0], rp, units, table=table)
        offload = pr.stream < pr.cpu
        for r, ((j, o), total) in enumerate(zip(members, pr.totals(offload), strict=True)):
            priced[(j, o)] = (total, offload[r], pr.fixed, (table, r))
    return [_best_option(prep, design, options[j], priced, j, additive)
            for j, design in enumerate(designs)]


def _best_option(prep: Prepared, design: EngineDesign, options: list[tuple],
                 priced: dict, j: int, additive: bool) -> DesignEval:
    """The best of one design's options (``evaluate_designs``), with its figures."""
    best = None
    placed: dict[tuple, tuple[float, np.ndarray]] = {}
    for o, (rp, units, gkey, fixed, new) in enumerate(options):
        if not new:
            part, offload = placed[gkey]
            if fixed is None:
                fixed = _fixed_units(prep, design, rp, units)
            total = part + fixed
        else:
            total, offload, pr_fixed, _ = priced[(j, o)]
            if additive:
                placed[gkey] = (total - pr_fixed, offload)
        if best is None or total < best[0]:
            best = (total, rp, offload, units, o)
    if best is None:  # the design cannot run the objective (a prompt group beyond its VMAX)
        return DesignEval(design, "", math.inf, np.zeros(len(prep.groups), dtype=bool),
                          prep.resources(design).lut, 0.0)
    total, rp, offload, units, o = best
    ddr_bytes = float(call_rows(prep, design, rp)[1][offload].sum())
    res = prep.resources(design, units)
    tok_s = j_tok = None
    power = prep.ctx.board.power
    if power is not None and len(prep.scenarios) == 1 and prep.scenarios[0][0].phase == "decode":
        batch = priced.get((j, o), (None, None, None, None))[3]
        if batch is not None:  # its row of the batch's table: the table table_of gives
            bt, r = batch
            table = replace(bt, stream=bt.stream[r], resident=bt.resident[r])
        else:
            table = table_of(prep, design, rp, units)
        w = table.total(offload, np.zeros_like(offload))
        tokens = prep.scenarios[0][0].sequences
        tok_s = tokens / w[T] if w[T] > 0 else None
        j_tok = float(w @ np.array(rates(power, res, design.clock_mhz))) / tokens
    return DesignEval(design, rp.runtime, total, offload, res.lut, ddr_bytes, tok_s, j_tok,
                      units, rp.kv_dtype)


def _variant(prep: Prepared, design: EngineDesign, rp: RuntimePrices,
             units: tuple[PLUnit, ...]) -> tuple[tuple, float | None]:
    """(What the groups' prices depend on of ``units`` under ``rp``, the fixed rest in ms)
    (cached: the units read the design only through its clock and ports, ``UnitEnv``; in
    energy the fixed rest reads its fabric too, so it is left to ``_fixed_units``)."""
    key = ("variant", rp.runtime, rp.kv_dtype, rp.group, units) + (
        (design.clock_mhz, design.engines) if units else ())
    hit = prep._cache.get(key)
    if hit is None:
        fxs = [prep.fixed(design, rp, i, units) for i in range(len(rp.scenarios))]
        # the groups' prices read the scenarios' tokens, not their KV format
        gkey = (rp.runtime, rp.tokens_key, *(f.required.tobytes() + f.quant_kept.tobytes()
                                            for f in fxs))
        fixed = (None if prep.objective.kind in ENERGY_OBJECTIVES
                 else _fixed_units(prep, design, rp, units))
        hit = prep._cache[key] = (gkey, fixed)
    return hit


def _fixed_units(prep: Prepared, design: EngineDesign, rp: RuntimePrices,
                 units: tuple[PLUnit, ...]) -> float:
    """The fixed rest of one unit set in the objective's units (time and energy objectives),
    as ``pricing`` prices it (``dse.model.price.fixed_row``, weighted)."""
    fixed = sum((w * fixed_row(prep.fixed(design, rp, i, units))
                 for i, (_, w) in enumerate(rp.scenarios)), np.zeros(4))
    if prep.objective.kind not in ENERGY_OBJECTIVES:
        return float(fixed[T] * 1e3)
    coef = np.array(rates(prep.ctx.board.power, prep.resources(design, units),
                          design.clock_mhz))
    return float(fixed @ coef) / prep.scenarios[0][0].sequences


def onchip_capacity_bytes(prep: Prepared, design: EngineDesign,
                          units: tuple[PLUnit, ...] = ()) -> int:
    """Bytes of URAM and BRAM left within the caps after the engine itself (and its PL
    units)."""
    board = prep.ctx.board
    res = prep.resources(design, units)
    uram = max(0, math.floor(board.pl.uram * board.caps.uram - res.uram))
    bram = max(0, math.floor(board.pl.bram36 * board.caps.bram36 - res.bram36))
    return uram * URAM_BYTES + bram * BRAM36_BYTES


@dataclass(frozen=True)
class Solution:
    """A design's optimal plan, and how optimality was established."""

    plan: Plan
    objective_ms: float
    method: Msg
    optimal: bool


def _memory_delta(prep: Prepared, design: EngineDesign, runtime: str) -> np.ndarray:
    """DDR bytes each group adds on the board when offloaded (engine format - runtime's)."""
    key = ("mem_delta", design.packing, design.head, runtime)  # what the bytes depend on
    hit = prep._cache.get(key)
    if hit is not None:
        return hit
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
    prep._cache[key] = np.array(out, dtype=float)
    return prep._cache[key]


def _base_memory(prep: Prepared, design: EngineDesign, runtime: str, kv_dtype: str) -> int:
    """DDR bytes of ``design`` offloading nothing under ``runtime`` with a ``kv_dtype`` cache
    at the objective's longest context (``memory_bytes``; cached per runtime and KV format:
    with nothing offloaded it reads no design, ``layer_board_bytes`` off the FPGA and
    ``embedding_bytes`` without a head on it)."""
    from dse.model.project import memory_bytes

    key = ("base_mem", runtime, kv_dtype)
    hit = prep._cache.get(key)
    if hit is None:
        sc = max((s for s, _ in prep.scenarios), key=lambda s: s.context_tokens)
        hit = prep._cache[key] = memory_bytes(
            prep.workload, Plan("cpu", design, frozenset(), runtime=runtime), prep.ctx,
            replace(sc, kv_dtype=kv_dtype))
    return hit


def solve_plan(prep: Prepared, design: EngineDesign, name: str = "plan",
               allow_resident: bool = True, runtime: str | None = None,
               units: tuple[PLUnit, ...] | None = None,
               kv_dtype: str | None = None) -> Solution:
    """Optimal offload and resident sets for ``design`` under ``runtime`` (the best runtime
    when None): a MILP, exact up to HiGHS's tolerance.

    Variables per group: s (streamed on the FPGA) and r (resident), s + r <= 1. Minimise
    sum (f - cpu) s + (f_res - cpu) r subject to resident bytes <= on-chip capacity and, on
    the board, the plan's DDR footprint <= DDR capacity.
    """
    if runtime is None or units is None or kv_dtype is None:
        best = best_of(prep, design, name, [
            (rp.runtime, us, rp.kv_dtype) for rp in prep.runtimes_for(design)
            if runtime in (None, rp.runtime) and kv_dtype in (None, rp.kv_dtype)
            for us in unit_sets(prep, design, rp) if units in (None, us)], allow_resident)
        if best is None:
            raise DseError(f"no plan for {design.label()} with runtime {runtime}, units "
                           f"{units}, KV {kv_dtype}: not among the options")
        return best
    group = prep.objective.group_for(design)
    rc = prep.runtime(runtime, kv_dtype, group)
    groups = prep.groups
    ng = len(groups)
    # the shipped overlay streams every weight from DDR: no resident set for its designs
    allow_resident = allow_resident and not design.buildable
    cap = onchip_capacity_bytes(prep, design, units) if allow_resident else 0
    pr = pricing(prep, design, rc, units, resident=bool(cap))
    big = 1e12
    f = np.where(np.isfinite(pr.stream), pr.stream, big)
    fr = np.where(np.isfinite(pr.resident), pr.resident, big)
    cpu = np.where(np.isfinite(pr.cpu), pr.cpu, big)  # a glue unit's groups must offload
    wbytes = _groups_bytes(prep, design)
    cost = np.concatenate([f - cpu, fr - cpu])
    rows = [np.concatenate([np.eye(ng), np.eye(ng)], axis=1)]
    lo, hi = [np.zeros(ng)], [np.ones(ng)]
    rows.append(np.concatenate([np.zeros(ng), wbytes])[None, :])
    lo.append(np.array([0.0]))
    hi.append(np.array([float(cap)]))
    board = prep.ctx.board
    room = math.inf  # DDR bytes the offloaded groups may add
    if prep.objective.view == "on-board":
        base_mem = _base_memory(prep, design, runtime, kv_dtype)
        delta = _memory_delta(prep, design, runtime)
        room = float(board.ddr.capacity_bytes - base_mem)
        rows.append(np.concatenate([delta, delta])[None, :])
        lo.append(np.array([-np.inf]))
        hi.append(np.array([room]))
    # Without an on-chip buffer to share, the groups couple only through DDR capacity: where
    # every group placed where it costs less already fits, that placement is the optimum and
    # no MILP (nor its solver's import) is needed.
    direct = f - cpu < 0
    if not cap and (room == math.inf or float(delta[direct].sum()) <= room) and room >= 0:
        none = np.zeros(ng, dtype=bool)
        plan = Plan(name, design, frozenset(n for i, g in enumerate(groups) if direct[i]
                                            for n in g.names), runtime=runtime,
                    head_top_k=prep.objective.head_top_k, units=units, kv_dtype=kv_dtype,
                    prompt_group=group)
        return Solution(plan, pr.total(direct, none), msg(
            "method.direct", "exact without a MILP: no on-chip buffer to share and the plan "
            "fits DDR, so each group runs where it costs less; PS runtime {runtime}",
            runtime=runtime), True)
    from scipy.optimize import Bounds, LinearConstraint, milp

    cons = LinearConstraint(np.vstack(rows), np.concatenate(lo), np.concatenate(hi))
    res = milp(cost, constraints=cons, integrality=np.ones(2 * ng), bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        # infeasible (e.g. the model does not fit DDR even on the CPU): offload nothing
        plan = Plan(name, design, frozenset(), note=f"MILP: {res.message}", runtime=runtime,
                    kv_dtype=kv_dtype, prompt_group=group)
        return Solution(plan, rc.baseline_ms, msg("method.milp_failed", "MILP ({message})",
                                                  message=res.message), False)
    x = np.round(res.x).astype(bool)
    s, r = x[:ng], x[ng:]
    offload = frozenset(n for i, g in enumerate(groups) if s[i] or r[i] for n in g.names)
    resident = frozenset(n for i, g in enumerate(groups) if r[i] for n in g.names)
    res_bytes = int(wbytes[r].sum())
    d = design if res_bytes == design.resident_bytes else _with_resident(design, res_bytes)
    total = pr.total(s, r)
    gap = getattr(res, "mip_gap", 0.0) or 0.0
    method = msg("method.milp", "MILP (HiGHS), optimal, gap {gap:.1e}; PS runtime {runtime}",
                 gap=gap, runtime=runtime)
    return Solution(Plan(name, d, offload, resident, runtime=runtime,
                         head_top_k=prep.objective.head_top_k, units=units, kv_dtype=kv_dtype,
                         prompt_group=group),
                    total, method, True)


def plan_bound(prep: Prepared, design: EngineDesign, runtime: str,
               units: tuple[PLUnit, ...], kv_dtype: str, allow_resident: bool = True) -> float:
    """A lower bound of ``solve_plan``'s objective for these options (what the MILP can only
    match or exceed): the DDR capacity dropped, each group on the CPU or streamed, whichever
    costs less, less what residency saves at most, the on-chip capacity filled fractionally
    with the groups that save the most per byte (the knapsack's LP relaxation); -inf for
    the energy-delay product, whose objective is not a sum."""
    rc = prep.runtime(runtime, kv_dtype, prep.objective.group_for(design))
    cap = (onchip_capacity_bytes(prep, design, units)
           if allow_resident and not design.buildable else 0)
    pr = pricing(prep, design, rc, units, resident=bool(cap))
    if pr.cpu_s is not None:
        return -math.inf
    cheapest = np.minimum(pr.cpu, pr.stream)
    if not cap:
        return pr.fixed + float(cheapest.sum())
    if not np.isfinite(cheapest).all():  # a group that must be resident: the plain bound
        return pr.fixed + float(np.minimum(cheapest, pr.resident).sum())
    gain = cheapest - pr.resident
    nbytes = _groups_bytes(prep, design)
    saved, room = 0.0, float(cap)
    for i in sorted((i for i in range(len(gain)) if gain[i] > 0),
                    key=lambda i: -gain[i] / max(nbytes[i], 1.0)):
        take = 1.0 if nbytes[i] <= room else room / nbytes[i]
        saved += take * float(gain[i])
        room -= take * nbytes[i]
        if room <= 0:
            break
    return pr.fixed + float(cheapest.sum()) - saved


def best_of(prep: Prepared, design: EngineDesign, name: str,
            options: list[tuple[str, tuple[PLUnit, ...], str]],
            allow_resident: bool = True) -> Solution | None:
    """The ``solve_plan`` of ``design`` that ``min`` by (not optimal, objective) picks over
    ``options`` ((runtime, units, KV format) each, in their order), or None without options.

    Exact, solving only what can win: options are solved cheapest bound first
    (``plan_bound``), and one whose bound is above an optimal plan already solved (by more
    than rounding) cannot beat it, so its MILP (~6 ms each with residency) is skipped."""
    if not options:
        return None
    bounds = [plan_bound(prep, design, rt, us, kv, allow_resident) for rt, us, kv in options]
    sols: dict[int, Solution] = {}
    best = math.inf
    for i in sorted(range(len(options)), key=lambda i: bounds[i]):
        if bounds[i] - best > 1e-9 * max(1.0, abs(best)):
            continue
        s = sols[i] = solve_plan(prep, design, name, allow_resident, *options[i])
        if s.optimal:
            best = min(best, s.objective_ms)
    return min((sols[i] for i in sorted(sols)), key=lambda s: (not s.optimal, s.objective_ms))


def _with_resident(design: EngineDesign, nbytes: int) -> EngineDesign:
    return replace(design, resident_bytes=nbytes)


def brute_force(prep: Prepared, design: EngineDesign, runtime: str,
                units: tuple[PLUnit, ...] = (), kv_dtype: str | None = None
                ) -> tuple[float, frozenset[str], frozenset[str]]:
    """Exhaustive search over every group's three options (tests only: 3**groups plans)."""
    rc = prep.runtime(runtime, kv_dtype, prep.objective.group_for(design))
    pr = pricing(prep, design, rc, units, resident=True)
    cap = onchip_capacity_bytes(prep, design, units)
    best = (math.inf, frozenset(), frozenset())
    for choice in itertools.product((0, 1, 2), repeat=len(prep.groups)):
        ch = np.array(choice)
        used = sum(_group_bytes(design, g.n, g.k, g.ternary)
                   for g, c in zip(prep.groups, choice, strict=True) if c == 2)
        total = pr.total(ch == 1, ch == 2)
        if used <= cap and total < best[0]:
            off = frozenset(n for g, c in zip(prep.groups, choice, strict=True) if c
                            for n in g.names)
            res = frozenset(n for g, c in zip(prep.groups, choice, strict=True) if c == 2
                            for n in g.names)
            best = (total, off, res)
    return best
