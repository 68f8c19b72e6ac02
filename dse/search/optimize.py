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
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from dse.errors import DseError
from dse.model.cost import call_cost, launch_us, layer_weight_bytes
from dse.model.cpu import RUNTIMES
from dse.model.energy import Work, pl_dynamic_w, require_power, static_w
from dse.model.engine import (
    BRAM36_BYTES,
    URAM_BYTES,
    EngineDesign,
    Resources,
    engine_resources,
)
from dse.model.msg import Msg, msg
from dse.model.project import (
    ATTENTION_OPS,
    GLUE_OPS,
    AttentionUnit,
    Baseline,
    CostContext,
    GlueUnit,
    Plan,
    Scenario,
    attention_resources,
    attention_work,
    baselines,
    call_work,
    cpus,
    embedding_bytes,
    glue_resources,
    glue_scan_work,
    glue_work,
    group_calls,
    layer_board_bytes,
    layer_cpu,
    op_costs,
    scan_readout_work,
    two_stage_work,
)
from dse.model.workload import Layer, Workload

OBJECTIVES = ("decode", "prefill", "mix", "energy", "edp")
#: KV-cache formats ``dse explore`` chooses among by default: fp16 (llama.cpp's and
#: bitnet.cpp's default cache) and int8 with a scale per cached row (the class of llama.cpp's
#: q8_0 cache, and what the attention unit reads).
SEARCHED_KV_DTYPES = ("fp16", "int8")
#: Objectives priced in joules (per generated token) rather than milliseconds.
ENERGY_OBJECTIVES = ("energy", "edp")


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
    #: Whether the head may run two-stage on the engines (stage 2 rescoring top-K on the PS).
    two_stage_head: bool = True
    head_top_k: int = 256
    #: Whether plans may add an FFN glue unit beside the engines.
    glue_unit: bool = True
    #: KV-cache formats the search may choose per plan (empty: ``kv_dtype`` only).
    kv_dtypes: tuple[str, ...] = ()
    #: The attention unit plans may add (None: none), and whether the overlay builds it (the
    #: engine template has one): without, only designs the overlay cannot build may add it.
    attention: AttentionUnit | None = None
    attention_buildable: bool = False

    @property
    def context_tokens(self) -> int:
        return self.context or self.prompt_tokens + self.gen_tokens

    @property
    def kv_formats(self) -> tuple[str, ...]:
        """The KV-cache formats plans and baselines may keep."""
        return self.kv_dtypes or (self.kv_dtype,)

    def scenarios(self, kv_dtype: str | None = None) -> list[tuple[Scenario, float]]:
        """(scenario, weight) pairs whose weighted sum is the objective, in ms (with the KV
        cache in ``kv_dtype``, default the first format allowed)."""
        kv = kv_dtype or self.kv_formats[0]
        dec = Scenario(self.view, "decode", 1, self.context_tokens, kv,
                       self.sequences, self.threads)
        pre = Scenario(self.view, "prefill", self.prompt_tokens, self.prompt_tokens,
                       kv, self.sequences, self.threads)
        if self.kind in ("decode", *ENERGY_OBJECTIVES):
            return [(dec, 1.0)]
        if self.kind == "prefill":
            return [(pre, 1.0)]
        return [(pre, 1.0), (dec, float(self.gen_tokens))]

    @property
    def batched(self) -> bool:
        """Whether any forward carries more than one token per weight pass (M > 1)."""
        return any(sc.m * sc.sequences > 1 for sc, _ in self.scenarios())

    @property
    def unit(self) -> str:
        return {"energy": "J", "edp": "J·s"}.get(self.kind, "ms")

    def describe(self) -> str:
        if self.kind == "energy":
            return f"decode joules per token at {self.context_tokens} tokens of context"
        if self.kind == "edp":
            return (f"decode energy-delay product (J per token x s per token) at "
                    f"{self.context_tokens} tokens of context")
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


#: Columns of a work vector: seconds, core-seconds, DDR bytes, PL busy seconds.
_T, _CORE, _DDR, _PL = range(4)


def _vec(w: Work) -> np.ndarray:
    return np.array([w.time_s, w.core_s, w.ddr_bytes, w.pl_busy_s])


@dataclass(frozen=True)
class RuntimeCosts:
    """Design-independent work of one PS runtime, weighted over the objective's scenarios:
    rows of [seconds, core-seconds, DDR bytes, PL seconds]."""

    runtime: str
    #: The KV-cache format these costs keep.
    kv_dtype: str
    #: Each group on the CPU (its input quantization included where the runtime quantizes
    #: for its own kernel).
    cpu: np.ndarray
    #: What each group adds on the PS when offloaded (quantizing its input).
    offload_ps: np.ndarray
    #: Every other operator (norms, attention, sampling, ...).
    fixed: np.ndarray
    #: Objective (ms or J) with everything on the CPU, and whether that fits the board's DDR.
    baseline_ms: float
    baseline_feasible: bool
    #: What a glue unit takes off the PS: from ``fixed`` (activation, gate product, sub-norm)
    #: and from each group's ``offload_ps`` (down_proj's input quantization); and the groups
    #: it needs on the engines (gate/up and down). None where the model has no such FFN.
    glue_fixed: np.ndarray | None = None
    glue_offload_ps: np.ndarray | None = None
    glue_needs: np.ndarray | None = None
    #: What an attention unit takes off the PS (the passes over the KV cache), from ``fixed``.
    attn_ps: np.ndarray | None = None


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
    #: The CPU-only baselines of each scenario (they depend on no design): each runtime with
    #: the allowed KV format that serves it best.
    baselines: tuple[tuple[Baseline, ...], ...] = ()
    #: Resources of each design priced so far (a design is priced several times).
    _resources: dict = field(default_factory=dict, compare=False, repr=False)

    def glue_fixed(self, clock_mhz: float) -> np.ndarray:
        """The glue unit's own work over the objective's scenarios at an engine clock."""
        key = ("glue", clock_mhz)
        if key not in self._resources:
            # the scan reads the gate/up results out, so their calls' hand-off does not
            self._resources[key] = sum(
                w * (_vec(glue_work(GlueUnit(), self.workload, sc.m * sc.sequences, clock_mhz))
                     + _vec(glue_scan_work(self.workload, self.ctx.board, sc,
                                           self.ctx.constants))
                     - _vec(scan_readout_work(self.workload, sc.m * sc.sequences,
                                              self.ctx.constants)))
                for sc, w in self.scenarios)
        return self._resources[key]

    def attn_fixed(self, design: EngineDesign, runtime: str) -> np.ndarray:
        """The attention unit's work (and the PS work around its calls) over the objective's
        scenarios with an int8 KV cache, beside ``design`` (its clock and port)."""
        key = ("attn", design.clock_mhz, design.stream_bits, runtime)
        if key not in self._resources:
            unit = self.objective.attention or AttentionUnit()
            self._resources[key] = sum(
                w * _vec(attention_work(unit, design, self.workload, sc, self.ctx.board,
                                        self.ctx.constants, runtime))
                for sc, w in self.objective.scenarios("int8"))
        return self._resources[key]

    def resources(self, design: EngineDesign, glue: bool = False, attn: bool = False
                  ) -> Resources:
        """The design's fabric, with a glue unit and an attention unit beside it if asked."""
        key = (design, glue, attn)
        res = self._resources.get(key)
        if res is None:
            res = (self.resources(design) if glue or attn
                   else engine_resources(design, self.ctx.board, self.ctx.constants))
            if glue:
                res = res + glue_resources(self.ctx.constants)
            if attn:
                res = res + attention_resources(self.objective.attention or AttentionUnit(),
                                                self.ctx.constants)
            self._resources[key] = res
        return res

    def fits(self, design: EngineDesign, glue: bool = False, attn: bool = False) -> bool:
        """Whether the design with those units stays within the board's caps (cached)."""
        key = ("fits", design, glue, attn)
        ok = self._resources.get(key)
        if ok is None:
            ok = self._resources[key] = not self.resources(design, glue, attn).overflow(
                self.ctx.board)
        return ok

    def runtime(self, name: str, kv_dtype: str | None = None) -> RuntimeCosts:
        """A runtime's costs with a KV format (default: the one its baseline keeps)."""
        if kv_dtype is None:
            return next(r for r in self.baseline_runtimes() if r.runtime == name)
        return next(r for r in self.runtimes if r.runtime == name and r.kv_dtype == kv_dtype)

    def baseline_runtimes(self) -> tuple[RuntimeCosts, ...]:
        """One costs entry per runtime: the KV format whose CPU-only baseline is fastest
        among those that fit (of all, if none fits)."""
        out = []
        for name in dict.fromkeys(r.runtime for r in self.runtimes):
            mine = [r for r in self.runtimes if r.runtime == name]
            fit = [r for r in mine if r.baseline_feasible] or mine
            out.append(min(fit, key=lambda r: r.baseline_ms))
        return tuple(out)


def _quant_per_instance(ops, role: str) -> float:
    """ms of one layer's instance of the quantization feeding ``role``'s group."""
    from dse.model.ops import QUANT_GROUP

    feed = QUANT_GROUP.get(role)
    op = next((o for o in ops if o.kind == "quant" and o.role == f"quant_{feed}"), None)
    return op.time_ms / op.count if op is not None and op.count else 0.0


def prepare(wl: Workload, ctx: CostContext, objective: Objective, fuse: bool = True) -> Prepared:
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
    for kv in objective.kv_formats:
        for sc, _ in objective.scenarios(kv):
            sc.validate(wl.config)
    groups = tuple(Group(key, tuple(ls)) for key, ls in group_calls(list(wl.layers), fuse).items())
    c = ctx.constants
    per_runtime = []
    base_of_kv = {kv: [baselines(wl, ctx, sc) for sc, _ in objective.scenarios(kv)]
                  for kv in objective.kv_formats}
    for runtime, kv in ((r, kv) for r in objective.runtimes for kv in objective.kv_formats):
        scen = objective.scenarios(kv)
        base_by_sc = base_of_kv[kv]
        cpu = np.zeros((len(groups), 4))
        extra = np.zeros((len(groups), 4))
        fixed = np.zeros(4)
        g_fixed = np.zeros(4)
        g_extra = np.zeros((len(groups), 4))
        a_ps = np.zeros(4)
        for sc, w in scen:
            host, target, threads = cpus(wl, ctx.board, sc)
            ops = op_costs(wl, runtime, sc, host, target, threads, c)
            for o in ops:
                if o.kind != "quant":
                    fixed += w * _vec(o.work)
                    if o.role in GLUE_OPS:
                        g_fixed += w * _vec(o.work)
                    if o.kind in ATTENTION_OPS:
                        a_ps += w * _vec(o.work)
            for i, g in enumerate(groups):
                q = _quant_per_instance(ops, g.layers[0].role) if g.ternary else np.zeros(4)
                lin = sum((_vec(layer_cpu(wl, layer, runtime, sc, host, target, threads, c))
                           for layer in g.layers), np.zeros(4))
                cpu[i] += w * (lin + (q if runtime == "native" else 0.0))
                launch_s = launch_us(ctx.board, c, runtime) * 1e-6
                extra[i] += w * (q + np.array([launch_s, launch_s, 0.0, 0.0]))
                if g.layers[0].role == "down_proj":
                    g_extra[i] += w * q
        base = sum(w * _baseline_units(objective, next(b for b in bs if b.runtime == runtime))
                   for (_, w), bs in zip(scen, base_by_sc, strict=True))
        fits = all(next(b.feasible for b in bs if b.runtime == runtime) for bs in base_by_sc)
        needs = np.array([g.layers[0].role in ("gate_proj", "up_proj", "down_proj")
                          for g in groups])
        has_ffn = any(g.layers[0].role == "gate_proj" for g in groups)
        per_runtime.append(RuntimeCosts(runtime, kv, cpu, extra, fixed, base, fits,
                                        g_fixed if has_ffn else None,
                                        g_extra if has_ffn else None,
                                        needs if has_ffn else None, a_ps))
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
    scen = objective.scenarios(best.kv_dtype)
    sig_index: dict[tuple[int, int, bool], int] = {}
    sig_of = np.array([sig_index.setdefault((g.n, g.k, g.ternary), len(sig_index))
                       for g in groups])
    return Prepared(wl, ctx, objective, groups, tuple(per_runtime), best.baseline_ms,
                    best.runtime, sig_of, tuple(sig_index), tuple(scen), tuple(base_by_sc))


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


def _quant_per_instance(ops, role: str) -> np.ndarray:
    """Work of one layer's instance of the quantization feeding ``role``'s group."""
    from dse.model.ops import QUANT_GROUP

    feed = QUANT_GROUP.get(role)
    op = next((o for o in ops if o.kind == "quant" and o.role == f"quant_{feed}"), None)
    return _vec(op.work) / op.count if op is not None and op.count else np.zeros(4)


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


def glue_fits(prep: Prepared, design: EngineDesign, attn: bool = False) -> bool:
    """Whether the design still fits the board's caps with a glue unit beside it."""
    return prep.fits(design, True, attn)


def variant_work(prep: Prepared, design: EngineDesign, rc: RuntimeCosts, glue: bool,
                 attn: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(CPU work per group, PS work an offloaded group adds, fixed work) with or without a
    glue unit and an attention unit, whose own time joins the fixed work."""
    cpu, offload_ps, fixed = rc.cpu, rc.offload_ps, rc.fixed
    if attn:
        fixed = fixed - rc.attn_ps + prep.attn_fixed(design, rc.runtime)
    if glue:
        fixed = fixed - rc.glue_fixed + prep.glue_fixed(design.clock_mhz)
        cpu = np.where(rc.glue_needs[:, None], np.inf, rc.cpu)
        offload_ps = rc.offload_ps - rc.glue_offload_ps
    return cpu, offload_ps, fixed


def pricing(prep: Prepared, design: EngineDesign, rc: RuntimeCosts,
            sig: np.ndarray | None = None, sig_resident: np.ndarray | None = None,
            glue: bool = False, attn: bool = False) -> Pricing:
    """Objective units of every option of every group for ``design`` under ``rc``.

    ``sig`` / ``sig_resident``: the designs' call work per signature (``fpga_sig``), if
    already computed; without ``sig_resident`` residency is not an option (inf). ``glue``:
    with an FFN glue unit (its ops leave the PS, gate/up and down must be on the engines);
    ``attn``: with the attention unit (the passes over the KV cache leave the PS).
    """
    sig = fpga_sig(prep, design)[0] if sig is None else sig
    cpu_w, offload_ps, fixed_w = variant_work(prep, design, rc, glue, attn)
    f_work = sig[prep.sig_of] + offload_ps
    r_work = (sig_resident[prep.sig_of] + offload_ps if sig_resident is not None
              else np.full_like(f_work, np.inf))
    kind = prep.objective.kind
    if kind not in ENERGY_OBJECTIVES:
        return Pricing(cpu_w[:, _T] * 1e3, f_work[:, _T] * 1e3, r_work[:, _T] * 1e3,
                       float(fixed_w[_T] * 1e3), None, None, None, 0.0, 1)
    power = prep.ctx.board.power
    res = prep.resources(design, glue, attn)
    rest, dyn = static_w(power, res), pl_dynamic_w(power, res, design.clock_mhz)
    coef = np.array([rest, power.ps_core_active_w, power.ddr_pj_per_byte * 1e-12, dyn])
    tokens = prep.scenarios[0][0].sequences
    per_token = 1.0 / tokens if kind == "energy" else 1.0
    cpu, stream, res_j = (w @ coef * per_token for w in (cpu_w, f_work, r_work))
    fixed = float(fixed_w @ coef) * per_token
    if kind == "energy":
        return Pricing(cpu, stream, res_j, fixed, None, None, None, 0.0, tokens)
    return Pricing(cpu, stream, res_j, fixed, cpu_w[:, _T], f_work[:, _T], r_work[:, _T],
                   float(fixed_w[_T]), tokens)


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
    #: Whether the FFN glue unit is part of the design's best placement.
    glue: bool = False
    #: Whether the attention unit is, and the KV-cache format chosen.
    attn: bool = False
    kv_dtype: str = "fp16"

    def speedup(self, baseline_ms: float) -> float:
        return baseline_ms / self.objective_ms


def _group_bytes(design: EngineDesign, n: int, k: int, ternary: bool) -> int:
    if ternary:
        return design.packing_spec.matrix_bytes(n, k)
    return layer_weight_bytes(Layer("", "lm_head", None, n, k, False, 0.0, 1, 0.0), design)


def fpga_sig(prep: Prepared, design: EngineDesign, resident: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
    """Work of one call of each signature on ``design`` (inf where it cannot run there),
    and the weight bytes it streams from DDR."""
    board, c = prep.ctx.board, prep.ctx.constants
    work = np.zeros((len(prep.sigs), 4))
    ddr = np.zeros(len(prep.sigs))
    for s, (n, k, ternary) in enumerate(prep.sigs):
        if not ternary and not prep.objective.two_stage_head and not design.head:
            work[s] = math.inf
            continue
        wbytes = 0 if resident else _group_bytes(design, n, k, ternary)
        dense = None if ternary else design.head
        for sc, w in prep.scenarios:
            m = sc.m * sc.sequences if ternary else sc.sequences
            # the launch is the runtime's: RuntimeCosts.offload_ps carries it
            cc = call_cost(design, board, c, n=n, k=k, m=m, weight_bytes=wbytes, dense=dense,
                           launch_us=0.0)
            work[s] += w * _vec(call_work(cc))
            ddr[s] += w * cc.weight_bytes
            if not ternary and not dense:  # two-stage head: stage 2 on the PS
                _, cpu, threads = cpus(prep.workload, board, sc)
                head = Layer("lm_head", "lm_head", None, n, k, False, 0.0, 1, 0.0)
                work[s] += w * _vec(two_stage_work(head, prep.objective.head_top_k, sc, cpu,
                                                   threads, c))
    return work, ddr


def evaluate_design(prep: Prepared, design: EngineDesign) -> DesignEval:
    """Best objective of ``design``: every group placed where it costs less, under the best
    runtime (exact for time and energy: given the runtime the groups are independent; for
    the energy-delay product the groups are placed by energy)."""
    sig, ddr = fpga_sig(prep, design)
    best = None
    kind = prep.objective.kind
    # The KV format and (in time) the attention unit change only the fixed work: the groups'
    # prices and so the offload choice do not depend on them, and an additive objective
    # reuses one pricing per runtime and glue choice (in energy, per attention choice too:
    # the unit's leakage is paid every second, so it changes the groups' prices).
    additive = kind != "edp"
    groups_part: dict[tuple, tuple[float, np.ndarray]] = {}
    options: dict[str, list[tuple[bool, bool]]] = {}  # by KV format: the rest is the design's
    for rc in prep.runtimes:
        if rc.kv_dtype not in options:
            options[rc.kv_dtype] = unit_options(prep, design, rc)
        for glue, attn in options[rc.kv_dtype]:
            key = (rc.runtime, glue) if kind not in ENERGY_OBJECTIVES else (rc.runtime, glue,
                                                                            attn)
            if additive and key in groups_part:
                part, offload = groups_part[key]
                total = part + _fixed_units(prep, design, rc, glue, attn)
            else:
                pr = pricing(prep, design, rc, sig, glue=glue, attn=attn)
                offload = pr.stream < pr.cpu
                total = pr.total(offload, np.zeros_like(offload))
                if additive:
                    groups_part[key] = (total - pr.fixed, offload)
            if best is None or total < best[0]:
                best = (total, rc, offload, glue, attn)
    total, rc, offload, glue, attn = best
    ddr_bytes = float(ddr[prep.sig_of][offload].sum())
    res = prep.resources(design, glue, attn)
    tok_s = j_tok = None
    power = prep.ctx.board.power
    if power is not None and len(prep.scenarios) == 1 and prep.scenarios[0][0].phase == "decode":
        cpu_w, offload_ps, fixed_w = variant_work(prep, design, rc, glue, attn)
        work = fixed_w + np.where(offload[:, None], sig[prep.sig_of] + offload_ps,
                                  cpu_w).sum(axis=0)
        tokens = prep.scenarios[0][0].sequences
        coef = np.array([static_w(power, res), power.ps_core_active_w,
                         power.ddr_pj_per_byte * 1e-12,
                         pl_dynamic_w(power, res, design.clock_mhz)])
        tok_s = tokens / work[_T] if work[_T] > 0 else None
        j_tok = float(work @ coef) / tokens
    return DesignEval(design, rc.runtime, total, offload, res.lut, ddr_bytes, tok_s, j_tok,
                      glue, attn, rc.kv_dtype)


def _fixed_units(prep: Prepared, design: EngineDesign, rc: RuntimeCosts, glue: bool,
                 attn: bool) -> float:
    """The fixed work of one variant in the objective's units (ms, or J per token), as
    ``pricing`` prices it (time and energy objectives)."""
    fixed_w = variant_work(prep, design, rc, glue, attn)[2]
    if prep.objective.kind not in ENERGY_OBJECTIVES:
        return float(fixed_w[_T] * 1e3)
    power = prep.ctx.board.power
    res = prep.resources(design, glue, attn)
    coef = np.array([static_w(power, res), power.ps_core_active_w,
                     power.ddr_pj_per_byte * 1e-12, pl_dynamic_w(power, res, design.clock_mhz)])
    return float(fixed_w @ coef) / prep.scenarios[0][0].sequences


def glue_options(prep: Prepared, design: EngineDesign, rc: RuntimeCosts) -> tuple[bool, ...]:
    """Whether to try the design without and with a glue unit (where the model has an FFN,
    the objective allows it and the unit fits beside the engines)."""
    # The shipped overlay builds no glue unit: a design it builds stays without one.
    if (rc.glue_needs is None or not prep.objective.glue_unit or design.buildable
            or not glue_fits(prep, design)):
        return (False,)
    return (False, True)


def attention_options(prep: Prepared, design: EngineDesign, rc: RuntimeCosts
                      ) -> tuple[bool, ...]:
    """Whether to try the design without and with the attention unit: where the objective
    offers one, the costs keep an int8 KV cache (the unit reads no other), the unit serves
    the model and the scenario, it fits beside the engines, and (for a design the overlay
    builds) the overlay builds the unit too."""
    obj = prep.objective
    unit = obj.attention
    if (unit is None or rc.kv_dtype != "int8" or rc.attn_ps is None
            or (design.buildable and not obj.attention_buildable)
            or not prep.fits(design, False, True)):
        return (False,)
    serves = prep._resources.get("attn_serves")
    if serves is None:
        serves = prep._resources["attn_serves"] = not any(
            unit.violations(prep.workload.config, sc) for sc, _ in obj.scenarios("int8"))
    if not serves:
        return (False,)
    return (False, True)


def unit_options(prep: Prepared, design: EngineDesign, rc: RuntimeCosts
                 ) -> list[tuple[bool, bool]]:
    """Every (glue, attention) combination to try for the design under ``rc``."""
    out = []
    for attn in attention_options(prep, design, rc):
        for glue in glue_options(prep, design, rc):
            if glue and attn and not glue_fits(prep, design, attn=True):
                continue
            out.append((glue, attn))
    return out


def onchip_capacity_bytes(prep: Prepared, design: EngineDesign, glue: bool = False,
                          attn: bool = False) -> int:
    """Bytes of URAM and BRAM left within the caps after the engine itself (and its PL
    units)."""
    board = prep.ctx.board
    res = prep.resources(design, glue, attn)
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
               allow_resident: bool = True, runtime: str | None = None,
               glue: bool | None = None, attn: bool | None = None,
               kv_dtype: str | None = None) -> Solution:
    """Optimal offload and resident sets for ``design`` under ``runtime`` (the best runtime
    when None): a MILP, exact up to HiGHS's tolerance.

    Variables per group: s (streamed on the FPGA) and r (resident), s + r <= 1. Minimise
    sum (f - cpu) s + (f_res - cpu) r subject to resident bytes <= on-chip capacity and, on
    the board, the plan's DDR footprint <= DDR capacity.
    """
    if runtime is None or glue is None or attn is None or kv_dtype is None:
        sols = [solve_plan(prep, design, name, allow_resident, rc.runtime, g, a, rc.kv_dtype)
                for rc in prep.runtimes if runtime in (None, rc.runtime)
                and kv_dtype in (None, rc.kv_dtype)
                for g, a in unit_options(prep, design, rc)
                if glue in (None, g) and attn in (None, a)]
        if not sols:
            raise DseError(f"no plan for {design.label()} with runtime {runtime}, glue {glue}, "
                           f"attention {attn}, KV {kv_dtype}: not among the options")
        return min(sols, key=lambda s: (not s.optimal, s.objective_ms))
    rc = prep.runtime(runtime, kv_dtype)
    groups = prep.groups
    ng = len(groups)
    # the shipped overlay streams every weight from DDR: no resident set for its designs
    allow_resident = allow_resident and not design.buildable
    cap = onchip_capacity_bytes(prep, design, glue, attn) if allow_resident else 0
    pr = pricing(prep, design, rc, fpga_sig(prep, design)[0],
                 fpga_sig(prep, design, resident=True)[0] if cap else None, glue=glue,
                 attn=attn)
    big = 1e12
    f = np.where(np.isfinite(pr.stream), pr.stream, big)
    fr = np.where(np.isfinite(pr.resident), pr.resident, big)
    cpu = np.where(np.isfinite(pr.cpu), pr.cpu, big)  # a glue unit's groups must offload
    wbytes = np.array([_group_bytes(design, g.n, g.k, g.ternary) for g in groups], dtype=float)
    cost = np.concatenate([f - cpu, fr - cpu])
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
                                prep.ctx, replace(sc, kv_dtype=kv_dtype))
        delta = _memory_delta(prep, design, runtime)
        rows.append(np.concatenate([delta, delta])[None, :])
        lo.append(np.array([-np.inf]))
        hi.append(np.array([float(board.ddr.capacity_bytes - base_mem)]))
    cons = LinearConstraint(np.vstack(rows), np.concatenate(lo), np.concatenate(hi))
    res = milp(cost, constraints=cons, integrality=np.ones(2 * ng), bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        # infeasible (e.g. the model does not fit DDR even on the CPU): offload nothing
        plan = Plan(name, design, frozenset(), note=f"MILP: {res.message}", runtime=runtime,
                    kv_dtype=kv_dtype)
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
    unit = (prep.objective.attention or AttentionUnit()) if attn else None
    return Solution(Plan(name, d, offload, resident, runtime=runtime,
                         head_top_k=prep.objective.head_top_k,
                         glue=GlueUnit() if glue else None, attention=unit, kv_dtype=kv_dtype),
                    total, method, True)


def _with_resident(design: EngineDesign, nbytes: int) -> EngineDesign:
    return replace(design, resident_bytes=nbytes)


def brute_force(prep: Prepared, design: EngineDesign, runtime: str, glue: bool = False,
                attn: bool = False, kv_dtype: str | None = None
                ) -> tuple[float, frozenset[str], frozenset[str]]:
    """Exhaustive search over every group's three options (tests only: 3**groups plans)."""
    import itertools

    rc = prep.runtime(runtime, kv_dtype)
    pr = pricing(prep, design, rc, fpga_sig(prep, design)[0],
                 fpga_sig(prep, design, resident=True)[0], glue=glue, attn=attn)
    cap = onchip_capacity_bytes(prep, design, glue, attn)
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
