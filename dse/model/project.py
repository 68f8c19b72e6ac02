"""Projecting a plan: where every operator of a forward runs, and what the token costs.

A ``Plan`` is an engine design, the Linears it runs (offload), the subset whose weights stay
on chip (resident), and the software runtime of the PS (``torch`` or ``native``) for all that
stays on the CPU. ``project`` prices it for one ``Scenario`` (view, phase, tokens, context,
KV-cache type, sequences, threads) and returns a ``Projection``: per-Linear placement and
times, every other operator on its device with the assumption its time rests on, the per-token
breakdown by component, the CPU-only baselines of every runtime (with whether they fit the
board), resources, memory fit and what binds. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from dse.errors import DseError
from dse.model.board import Board
from dse.model.calibration import Calibration, resolve_calibration
from dse.model.constants import DEFAULT_CONSTANTS, CostConstants
from dse.model.cost import CallCost, call_cost, launch_us, layer_weight_bytes, with_launch
from dse.model.cpu import (
    RUNTIME_TEXT,
    RUNTIMES,
    CpuSpec,
    head_rescore,
    head_stage2,
    native_linear,
    native_op,
    torch_linear_s,
    torch_ops,
)
from dse.model.energy import Energy, Work, energy_of
from dse.model.engine import (
    EngineDesign,
    Resources,
    engine_resources,
    link_limit_error,
)
from dse.model.evidence import PlanEvidence, plan_evidence
from dse.model.fabric import Fabric
from dse.model.msg import Msg, msg
from dse.model.ops import (
    COMPONENT,
    QUANT_GROUP,
    Op,
    kv_bytes,
    op_bytes,
    op_flops,
)
from dse.model.packing import DENSE_BYTES_PER_WEIGHT, get_packing
from dse.model.parts import OpProjection
from dse.model.price import (
    Fixed,
    Group,
    PriceTable,
    PsPrices,
    T,
    fixed_side,
    group_layers,
    price_table,
    row,
    work,
)
from dse.model.scenario import Scenario
from dse.model.units import (
    ATTENTION_OPS,
    GLUE_OPS,
    SCANNED_ROLES,
    AttentionUnit,
    GlueUnit,
    PLUnit,
    UnitEnv,
)
from dse.model.units.base import check_make_args
from dse.model.workload import Layer, Workload

VIEWS = ("on-board", "host-attached")
VIEW_TEXT = {
    "on-board": "on-board: everything runs on the board; the CPU is the board's PS, profiled "
    "times moved to it by the ratio of the two CPUs' roofline times",
    "host-attached": "host-attached: the FPGA serves the profiled host, which drives it like "
    "the PS would (same link and per-call cost); the CPU is the profiled host",
}
#: Per-token components of the breakdown, in report order.
COMPONENTS = ("ternary_pl", "ternary_cpu", "head", "attention", "norms_quant_rope_residual",
              "elementwise", "handoff", "sampling")
#: Finer items of the breakdown, each inside one component (``Projection.items``): the
#: engines' weight stream; the head's stream, its sync + top-K (the head call's hand-off and
#: the selection) and exact rescore; every other call's hand-off by part; the glue unit and the
#: PS's shift scan for it.
ITEMS = {"weight_stream": "ternary_pl", "head_stream": "head", "head_topk": "head",
         "head_rescore": "head", "activation_loads": "handoff", "run_overhead": "handoff",
         "sums_readout": "handoff", "rescale": "handoff", "ffn_glue": "elementwise",
         "shift_scan": "elementwise", "ffn_scale": "elementwise"}


def call_items(cc: CallCost, head: bool) -> dict[str, float]:
    """One call's share of ``ITEMS``, ms: a head call's hand-off is the head's sync."""
    if head:
        return {"head_stream": cc.stream_s * 1e3, "head_topk": cc.handoff_s * 1e3}
    return {"weight_stream": cc.stream_s * 1e3, "activation_loads": cc.act_s * 1e3,
            "run_overhead": cc.overhead_s * 1e3, "sums_readout": cc.readout_s * 1e3,
            "rescale": cc.rescale_s * 1e3}


def _fields_of(obj) -> tuple:
    """A frozen dataclass's fields as (name, value) pairs, the overlay's verdict left out."""
    from dataclasses import fields as dc_fields

    def norm(v):  # 300 and 300.0 MHz are one clock
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return tuple((f.name, norm(getattr(obj, f.name))) for f in dc_fields(obj)
                 if f.name not in ("buildable", "build_note"))


def plan_identity(plan: Plan) -> str:
    """``Plan.identity``: a sha256 of the plan's content, first 8 hex digits."""
    import hashlib

    content = (_fields_of(plan.design), sorted(plan.offload), sorted(plan.resident),
               plan.fuse, plan.runtime, plan.head_top_k,
               sorted((u.kind, _fields_of(u)) for u in plan.units), plan.kv_dtype)
    return hashlib.sha256(repr(content).encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class Plan:
    """An engine design and the layers it runs; ``resident`` layers keep weights on chip;
    ``runtime`` is the PS software for everything left on the CPU; ``units`` the PL units
    beside the engines (``dse.model.units``: each N instances of one build of a kind, at most
    one entry per kind)."""

    name: str
    design: EngineDesign
    offload: frozenset[str]
    resident: frozenset[str] = frozenset()
    fuse: bool = True
    note: str = ""
    runtime: str = "native"
    #: Candidates stage 2 of a two-stage head rescores (an offloaded head without a dense
    #: head unit runs two-stage).
    head_top_k: int = 256
    units: tuple[PLUnit, ...] = ()
    #: The KV-cache element type the plan keeps (None: the scenario's); the search chooses
    #: it among the formats the objective allows.
    kv_dtype: str | None = None
    #: Positions of a prompt per forward, at most the engine's VMAX (None: VMAX); the search
    #: chooses it with the engine (``dse.model.prompt``).
    prompt_group: int | None = None

    def __post_init__(self) -> None:
        kinds = [u.kind for u in self.units]
        if len(set(kinds)) != len(kinds):
            raise DseError(f"plan {self.name}: units: expected at most one entry per kind "
                           f"(a count for several instances), got {', '.join(kinds)}")

    @property
    def identity(self) -> str:
        """What makes two plans the same plan whatever they are called, as 8 hex digits: the
        engine design, the offloaded and resident layers, fusion, the PS runtime, the head's
        top-k, the PL units and the KV format (not the name, the note or the overlay's
        verdict). Sections written by different commands name a plan by it, so a report can
        say when two of them speak of different versions of "best"."""
        return plan_identity(self)

    def unit(self, kind: str) -> PLUnit | None:
        """The plan's unit of ``kind``, if it has one."""
        return next((u for u in self.units if u.kind == kind), None)

    @property
    def glue(self) -> PLUnit | None:
        return self.unit("glue")

    @property
    def attention(self) -> PLUnit | None:
        return self.unit("attention")

    @property
    def buildable(self) -> bool:
        """Whether the shipped overlay builds the whole plan: its engines and every unit."""
        return self.design.buildable and all(u.buildable for u in self.units)

    @property
    def build_note(self) -> str:
        """How to build the plan's overlay: the engines' ``make`` line and each unit's build
        arguments; or, for a what-if, the first rule the engines or a unit break."""
        if not self.design.buildable:
            return self.design.build_note
        whatif = next((u for u in self.units if not u.buildable), None)
        if whatif is not None:
            return whatif.build_note
        return " ".join([self.design.build_note, *(a for u in self.units
                                                   if (a := check_make_args(u)))])

    @property
    def unit_labels(self) -> tuple[str, ...]:
        """The PL units the plan needs besides the ternary engines (the head's way included)."""
        out = []
        if self.design.head and "lm_head" in self.offload:
            out.append(f"head:{self.design.head}x{self.design.head_macs}")
        elif "lm_head" in self.offload:
            out.append(f"head:two-stage top-{self.head_top_k}")
        out += [f"{u.kind}:{u.label}" for u in self.units]
        return tuple(out)


@dataclass(frozen=True)
class CostContext:
    """The board, the constants in force, and which calibration they came from."""

    board: Board
    constants: CostConstants = DEFAULT_CONSTANTS
    calibration: str = "none"
    #: The calibration in force (its parameters and their covariance: a calibrated
    #: projection's band propagates them; None: uncalibrated).
    fit: Calibration | None = None

    @classmethod
    def for_board(cls, board: Board, calibration: Calibration | None = None,
                  fabric: Fabric | None = None) -> CostContext:
        """The board's constants (its ``cost_overrides`` applied), then ``calibration``'s,
        with ``fabric`` (``dse.fabric_data.load_fabric``) as the evidence in force (None:
        estimated resources, no clock evidence)."""
        c = DEFAULT_CONSTANTS.with_overrides(board.cost_overrides,
                                             f"{board.path or board.name}: cost_overrides"
                                             ).with_fabric(fabric)
        if calibration is None:
            return cls(board, c, "none")
        if calibration.board != board.name:
            raise DseError(f"{calibration.path}: board: expected {board.name!r} (the board "
                           f"being projected), got {calibration.board!r}")
        b, c = calibration.apply(board, c)
        return cls(b, c, calibration.label(), calibration)

    @classmethod
    def resolve(cls, board: Board, option: str | None = None,
                fabric: str | None = None) -> CostContext:
        """CLI helper: the calibration the user named (``--calibration FILE``, else the board
        file's ``calibration:`` field), none otherwise; ``none`` ignores the board's field;
        the fabric evidence the user named (``--fabric FILE``), else the shipped one."""
        from dse.fabric_data import load_fabric

        return cls.for_board(board, resolve_calibration(board, option), load_fabric(fabric))


@dataclass(frozen=True)
class LayerProjection:
    """Where one Linear runs and what it costs there (ms per forward of the scenario)."""

    name: str
    role: str
    n: int
    k: int
    placement: str
    #: Time of this layer on the CPU under the plan's runtime (what offloading saves).
    cpu_ms: float
    time_ms: float
    call: str | None = None
    bound: str | None = None
    #: What the layer keeps busy where it runs on the CPU (calls carry their own).
    work: Work = field(default_factory=Work)


@dataclass(frozen=True)
class RoleRow:
    """The Linears of one role in a projection (``Projection.by_role``)."""

    role: str
    layers: int
    fpga: int
    resident: int
    cpu: int
    cpu_ms: float
    time_ms: float
    bound: str


@dataclass(frozen=True)
class Account:
    """One line of where a forward's time goes, by device; a projection's ``accounts`` sum to
    its ``plan_ms`` exactly. ``device``: ``engines`` (the accelerator calls, hand-offs
    included), ``ps`` (the CPU's work), or ``pl:<kind>`` (a PL unit, its hand-offs included)."""

    key: str
    device: str
    ms: float


@dataclass(frozen=True)
class Baseline:
    """Everything on the CPU under one runtime, and whether its memory fits the board."""

    runtime: str
    ms: float
    memory_bytes: int
    feasible: bool
    reason: Msg | None = None
    energy: Energy | None = None
    #: The KV-cache format it keeps.
    kv_dtype: str = "fp16"


@dataclass(frozen=True)
class Projection:
    """A plan priced for one scenario on one board."""

    plan: Plan
    board: str
    scenario: Scenario
    calibration: str
    cpu: str
    threads: int
    layers: tuple[LayerProjection, ...]
    ops: tuple[OpProjection, ...]
    calls: dict[str, CallCost]
    components: dict[str, float]
    plan_ms: float
    baselines: tuple[Baseline, ...]
    resources: Resources
    utilization: dict[str, float]
    memory_bytes: int
    memory_capacity_bytes: int
    ddr_weight_bytes: int
    ddr_floor_ms: float
    infeasible: tuple[Msg, ...] = ()
    notes: tuple[Msg | str, ...] = field(default=())
    #: What the forward keeps busy in total, and its energy (None: no power model).
    work: Work = field(default_factory=Work)
    energy: Energy | None = None
    #: The breakdown's finer items (``ITEMS``), ms per forward.
    items: dict[str, float] = field(default_factory=dict)
    #: Where the forward's time goes by device (they sum to ``plan_ms``).
    accounts: tuple[Account, ...] = ()
    #: The components of the PS's own time (its share of ``components``), ms.
    ps_components: dict[str, float] = field(default_factory=dict)
    #: The PL's sustained DDR rate the plan streams at, bytes/s.
    ddr_bytes_per_s: float = 0.0
    #: What the fabric figures rest on and the clock the evidence supports
    #: (``dse.model.evidence``; None: nothing offloaded).
    evidence: PlanEvidence | None = None

    @property
    def baseline(self) -> Baseline:
        """The fastest CPU-only runtime that fits the board (the fastest of all if none fits)."""
        fits = [b for b in self.baselines if b.feasible] or list(self.baselines)
        return min(fits, key=lambda b: b.ms)

    @property
    def baseline_ms(self) -> float:
        return self.baseline.ms

    def baseline_of(self, runtime: str) -> Baseline:
        return next(b for b in self.baselines if b.runtime == runtime)

    @property
    def speedup(self) -> float:
        """Speedup over the best CPU runtime that fits the board."""
        return self.baseline_ms / self.plan_ms if self.plan_ms > 0 else math.inf

    def speedup_vs(self, runtime: str) -> float:
        b = self.baseline_of(runtime)
        return b.ms / self.plan_ms if self.plan_ms > 0 else math.inf

    @property
    def ops_ms(self) -> float:
        return sum(o.time_ms for o in self.ops)

    @property
    def tokens(self) -> int:
        """Tokens one forward produces or consumes (all sequences)."""
        return self.scenario.m * self.scenario.sequences

    @property
    def tokens_per_s(self) -> float:
        return self.tokens * 1e3 / self.plan_ms if self.plan_ms > 0 else math.inf

    @property
    def feasible(self) -> bool:
        return not self.infeasible

    def by_role(self) -> tuple[RoleRow, ...]:
        """The Linears by role, in the forward's order: how many, where, their time on the CPU
        and in the plan, and the bound holding most of their accelerator time."""
        roles: dict[str, list[LayerProjection]] = {}
        for lp in self.layers:
            roles.setdefault(lp.role, []).append(lp)
        out = []
        for role, lps in roles.items():
            by_bound: dict[str, float] = {}
            for lp in lps:
                if lp.placement != "cpu" and lp.bound:
                    by_bound[lp.bound] = by_bound.get(lp.bound, 0.0) + lp.time_ms
            out.append(RoleRow(role, len(lps), *(sum(lp.placement == p for lp in lps)
                                                 for p in ("fpga", "fpga-resident", "cpu")),
                               sum(lp.cpu_ms for lp in lps), sum(lp.time_ms for lp in lps),
                               max(by_bound, key=by_bound.__getitem__) if by_bound else "cpu"))
        return tuple(out)

    @property
    def ddr_floor_sustained_ms(self) -> float:
        """The streamed weights at the PL's sustained DDR rate (the peak's ``ddr_floor_ms``
        times the board's efficiency)."""
        return self.ddr_weight_bytes / self.ddr_bytes_per_s * 1e3 if self.ddr_bytes_per_s \
            else math.inf

    def account_ms(self, device: str) -> float:
        """Time of one device (``engines``, ``ps``, ``pl:<kind>``), ms per forward."""
        return sum(a.ms for a in self.accounts if a.device == device)

    @property
    def fpga_ms(self) -> float:
        """The accelerator calls' time, hand-offs included (the engines' account)."""
        return self.account_ms("engines")

    @property
    def bound(self) -> str:
        """What limits the plan: the device holding the most of the forward. The engines'
        calls count by their binding term (compute, ddr, link, overhead); a PL unit by its kind
        (``pl unit (attention)``); the PS names its largest component (``ps (attention)`` only
        when attention runs on the PS)."""
        terms = dict.fromkeys(("compute", "ddr", "link", "overhead"), 0.0)
        for call in self.calls.values():
            terms[call.bound] += call.time_s * 1e3
        for a in self.accounts:
            if a.device.startswith("pl:"):
                terms[f"pl unit ({a.device[3:]})"] = a.ms
        top = max(terms, key=terms.__getitem__)
        if self.account_ms("ps") >= terms[top]:
            parts = {k: v for k, v in self.ps_components.items() if v > 0}
            return f"ps ({max(parts, key=parts.__getitem__)})" if parts else "ps"
        return top

    def limit_parts(self, ddr_bytes_per_s: float) -> dict[str, float]:
        """The forward's time in parts that add up to ``plan_ms`` exactly, ms: the calls split
        into their weight bytes at the sustained DDR rate (``weights``), the rest of their DDR
        time (activations and results, ``actout``), compute or link time beyond DDR
        (``compute``), serial overhead (``overhead``: activation loads, launches, bursts) and
        the PS's read-out and rescale (``ps``); then every other account (``accounts``).

        Per call, the overlapped part ``max(compute, DDR, link)`` is at least the DDR time,
        which is at least the weight bytes at sustained bandwidth: what keeps the plan off its
        DDR floor."""
        parts = dict.fromkeys(("weights", "actout", "compute", "overhead", "ps"), 0.0)
        for cc in self.calls.values():
            w_s = cc.weight_bytes / ddr_bytes_per_s
            parts["weights"] += w_s * 1e3
            parts["actout"] += (cc.ddr_s - w_s) * 1e3
            parts["compute"] += (max(cc.compute_s, cc.ddr_s, cc.link_s) - cc.ddr_s) * 1e3
            parts["overhead"] += (cc.overhead_s + cc.act_s + cc.burst_s) * 1e3
            parts["ps"] += cc.ps_s * 1e3
        for a in self.accounts:
            if a.key != "calls":
                parts[a.key] = parts.get(a.key, 0.0) + a.ms
        return parts


# -- the CPU side ----------------------------------------------------------------------------

def cpus(wl: Workload, board: Board, scenario: Scenario) -> tuple[CpuSpec, CpuSpec, int]:
    """(profiled host, CPU of the scenario's view, threads it runs with)."""
    if wl.host is None:  # a model config alone: no host, and no torch runtime to price on it
        if scenario.view == "host-attached":
            raise DseError("--view host-attached: expected --profile (the CPU the FPGA serves "
                           "is the profiled host; a model config alone names none)")
        host = cpu = CpuSpec.of_board(board)
    else:
        host = CpuSpec.of_host(wl.host)
        cpu = host if scenario.view == "host-attached" else CpuSpec.of_board(board)
    threads = scenario.threads or cpu.cores
    if threads > cpu.cores:
        raise DseError(f"--threads: expected at most {cpu.cores} (the cores of {cpu.name}), "
                       f"got {threads}")
    return host, cpu, threads


def _linear_m(layer: Layer, scenario: Scenario) -> int:
    """Tokens a Linear sees per forward: the head only scores the last token of each
    sequence (llama.cpp and transformers' generate compute no other logits), and none in a
    forward without logits (a prompt group before the last)."""
    if not layer.ternary:
        return scenario.sequences if scenario.logits else 0
    return scenario.m * scenario.sequences


def idle_groups(groups, scenario: Scenario) -> np.ndarray:
    """Which groups do no work in the scenario: the head in a forward without logits."""
    return np.array([not g.ternary and not scenario.logits for g in groups], dtype=bool)


def layer_cpu(wl: Workload, layer: Layer, runtime: str, scenario: Scenario, host: CpuSpec,
              cpu: CpuSpec, threads: int, c: CostConstants) -> Work:
    """One Linear on the CPU under ``runtime``: its time, busy cores and weight bytes."""
    m = _linear_m(layer, scenario)
    if m == 0:
        return Work()
    if runtime == "torch":
        t = torch_linear_s(layer.host_call_ms, layer.n, layer.k, m, host, cpu, wl.dtype_bytes, c)
        return Work(t, t * threads, float(layer.weights * wl.dtype_bytes))
    oc = native_linear(layer.n, layer.k, m, layer.ternary, cpu, threads, c)
    return Work(oc.time_s, oc.time_s * oc.cores, oc.ddr_bytes)


def two_stage_work(head: Layer, top_k: int, scenario: Scenario, cpu: CpuSpec, threads: int,
                   c: CostConstants) -> Work:
    """What stage 2 of a two-stage head keeps busy on the PS (see ``cpu.head_rescore``)."""
    oc = head_rescore(head.n, head.k, top_k, scenario.sequences, cpu, threads, c)
    return Work(oc.time_s, oc.time_s * oc.cores, oc.ddr_bytes)


def call_work(cc: CallCost) -> Work:
    """An accelerator call: one PS core polls for its whole time; the PL toggles while it
    streams; DMA moves weights, activations and results through DDR."""
    return Work(cc.time_s, cc.time_s, float(cc.weight_bytes + cc.act_bytes + cc.out_bytes),
                max(cc.compute_s, cc.ddr_s, cc.link_s))


#: Operators each sequence of a round runs over its own KV cache, at its own context.
PER_SEQUENCE = ("rope", "kv_write", "attn_score", "softmax", "attn_v")
#: Operators only a forward that computes logits runs: the final norm and the sampling.
LOGITS_ROLES = ("norm", "sample")


def _op_m(op: Op, scenario: Scenario, per_vector: bool = False
          ) -> tuple[tuple[int, int, int], ...]:
    """(tokens, context, repeats) an operator runs with, one triple per distinct context:
    attention per sequence over its own cache (each sequence of the round at its own
    context); sampling once per sequence; the rest over every token of the forward; nothing
    for the final norm and the sampling of a forward without logits.

    ``per_vector``: each vector of the forward (each sequence of a round, each position of a
    prompt group) runs its operators on its own, as one token would: a runtime that drives
    the engines does the PS's work vector by vector between the engine calls (the published
    bitnet-kv260 runtime's forward_slots: per slot its norms, quantization, RoPE and attention
    at its own position, then one engine call for every slot), where a CPU-only runtime
    (ggml) splits a batch's rows over its threads."""
    if op.role in LOGITS_ROLES and not scenario.logits:
        return ()
    m = scenario.m
    if op.kind in PER_SEQUENCE:
        if per_vector and m > 1:  # each position of the group at its own context
            return tuple((1, ctx - j, n) for ctx, n in scenario.context_counts()
                         for j in range(m))
        return tuple((m, ctx, n) for ctx, n in scenario.context_counts())
    if op.kind == "sample":
        if per_vector:
            return ((1, 1, scenario.sequences),)
        return ((scenario.sequences, scenario.sequences, 1),)
    tokens = m * scenario.sequences
    if per_vector:
        return ((1, scenario.context_tokens, tokens),)
    return ((tokens, max(tokens, scenario.context_tokens), 1),)


def _no_logits(op: Op) -> OpProjection:
    """An operator a forward without logits does not run (zero time, said so)."""
    return OpProjection(op.role, op.kind, op.count, "ps", 0.0, "none",
                        msg("basis.no_logits", "not run: this forward computes no logits (a "
                            "prompt group before the last)"), COMPONENT[op.kind], Work())


def op_costs(wl: Workload, runtime: str, scenario: Scenario, host: CpuSpec, cpu: CpuSpec,
             threads: int, c: CostConstants, per_vector: bool = False
             ) -> tuple[OpProjection, ...]:
    """Every non-Linear operator on the CPU under ``runtime``, ms per forward.

    Quantization ops are priced whole here; ``project`` keeps the share whose consumer
    needs it (all under ``native``; under ``torch`` only inputs of offloaded Linears, since
    the profiled PyTorch Linears take float inputs). ``per_vector`` (``native`` only): each
    vector's operators on their own (``_op_m``).
    """
    kvb = kv_bytes(scenario.kv_dtype, "kv_dtype")
    act_bytes = float(wl.dtype_bytes)
    out: list[OpProjection] = []
    if runtime == "native":
        for op in wl.ops:
            runs = _op_m(op, scenario, per_vector)
            if not runs:
                out.append(_no_logits(op))
                continue
            t = core_s = ddr = 0.0
            for m, ctx, rep in runs:
                oc = native_op(op, m, ctx, cpu, threads, scenario.kv_dtype, kvb, c)
                t += oc.time_s * rep
                core_s += oc.time_s * rep * oc.cores
                ddr += oc.ddr_bytes * rep
            out.append(OpProjection(op.role, op.kind, op.count, "ps", t * 1e3, oc.bound,
                                    oc.basis, COMPONENT[op.kind], Work(t, core_s, ddr)))
        return tuple(out)
    phase = "prefill" if scenario.phase == "prefill" else "decode"
    groups: dict[str, list[Op]] = {}
    for op in wl.ops:
        meas = wl.measured_op(op.measured_as, phase) or wl.measured_op(op.measured_as, "decode")
        key = op.measured_as if op.measured_as and meas is not None else op.role
        groups.setdefault(key, []).append(op)
    for key, ops in groups.items():
        meas = None
        if ops[0].measured_as == key:
            meas = wl.measured_op(key, phase) or wl.measured_op(key, "decode")
        runs = _op_m(ops[0], scenario)
        if not runs:
            out += [_no_logits(op) for op in ops]
            continue
        times = [0.0] * len(ops)
        ddrs = [0.0] * len(ops)
        for m, ctx, rep in runs:
            oc = torch_ops(tuple(ops), m, ctx, host, cpu, act_bytes, kvb, meas, c)
            # A module covering several operators: split its time by their roofline shares.
            shares = [max(op_flops(op, m, ctx) / (cpu.peak_fp32_gflops * 1e9),
                          op_bytes(op, m, ctx, act_bytes, kvb).total / cpu.bytes_per_s)
                      for op in ops]
            total = sum(shares) or 1.0
            for i, share in enumerate(shares):
                frac = share / total if len(ops) > 1 else 1.0
                times[i] += oc.time_s * rep * frac
                ddrs[i] += oc.ddr_bytes * rep * frac
        for op, t, ddr in zip(ops, times, ddrs, strict=True):
            out.append(OpProjection(op.role, op.kind, op.count, "ps", t * 1e3, oc.bound,
                                    oc.basis, COMPONENT[op.kind], Work(t, t * oc.cores, ddr)))
    return tuple(out)


def _ps_layers(wl: Workload, runtime: str, scenario: Scenario, host: CpuSpec, cpu: CpuSpec,
               threads: int, c: CostConstants, per_vector: bool, linears: bool) -> tuple:
    """What ``ps_prices`` reads of the workload whatever the groups: the operators
    (``op_costs``), each Linear on the CPU by name and as a one-Linear group's row (``sum``'s
    0 + figure; none without ``linears``), the quantization instances (the op's time split
    evenly over its layers), their ops' roles, and the instance feeding each Linear's input."""
    ops = op_costs(wl, runtime, scenario, host, cpu, threads, c, per_vector=per_vector)
    works: dict[str, Work] = {}
    rows: dict[str, tuple[float, float, float, float]] = {}
    if linears:
        priced: dict[tuple, Work] = {}  # under native a Linear's price is its shape's
        for layer in wl.layers:
            key = (layer.n, layer.k, layer.ternary) if runtime == "native" else (layer.name,)
            if key not in priced:
                priced[key] = layer_cpu(wl, layer, runtime, scenario, host, cpu, threads, c)
            w = works[layer.name] = priced[key]
            rows[layer.name] = (0 + w.time_s, 0 + w.core_s, 0 + w.ddr_bytes, 0 + w.pl_busy_s)
    index: dict[tuple[int, str], int] = {}
    quant, roles = [], []
    for op in ops:
        if op.kind != "quant" or not op.count:
            continue
        each = row(op.work) / op.count
        for i in range(op.count):
            index[(i, op.role)] = len(quant)
            quant.append(each)
            roles.append(op.role)
    feed_of = {}
    for layer in wl.layers:
        feed = QUANT_GROUP.get(layer.role)
        q = index.get((layer.layer_index, f"quant_{feed}")) if feed else None
        if q is not None:
            feed_of[layer.name] = q
    return (ops, works, rows, np.array(quant).reshape(len(quant), 4), tuple(roles), feed_of)


def ps_prices(wl: Workload, runtime: str, scenario: Scenario, groups: tuple[Group, ...],
              host: CpuSpec, cpu: CpuSpec, threads: int, board: Board, c: CostConstants,
              linears: bool = True, engines: bool = False, memo: dict | None = None
              ) -> PsPrices:
    """The PS side of the price table (``dse.model.price.PsPrices``) for ``groups``: each
    group's Linears on the CPU under ``runtime`` (zero with ``linears`` False: for a caller
    that needs only the operators), each quantization instance (one per layer of each
    quantization op; the op's time split evenly) with the groups it feeds, the runtime's
    launch, and every other operator priced whole (``op_costs``; ``engines``: the runtime
    drives engines, so a native runtime does each vector's operators on their own).

    ``memo``: a dict kept by a caller that prices many plans of one workload on one context
    (``wl``, ``board`` and ``c``, hence ``host``, ``cpu`` and ``threads``, the same for every
    call that passes it): the operators and each Linear on the CPU are priced once per
    runtime and scenario (``_ps_layers``: the same objects, so the same floats)."""
    per_vector = engines and runtime == "native"
    key = ("ps.layers", runtime, scenario, per_vector, linears)
    side = None if memo is None else memo.get(key)
    if side is None:
        side = _ps_layers(wl, runtime, scenario, host, cpu, threads, c, per_vector, linears)
        if memo is not None:
            memo[key] = side
    ops, works, rows, quant, roles, feed_of = side
    if linears:
        per_layer = tuple(tuple(works[layer.name] for layer in g.layers) for g in groups)
        cpu_rows = np.array([rows[g.layers[0].name] if len(ws) == 1 else
                             (sum(w.time_s for w in ws), sum(w.core_s for w in ws),
                              sum(w.ddr_bytes for w in ws), sum(w.pl_busy_s for w in ws))
                             for g, ws in zip(groups, per_layer, strict=True)],
                            dtype=float).reshape(len(groups), 4)
    else:
        per_layer, cpu_rows = (), np.zeros((len(groups), 4))
    feeds = np.zeros((len(quant), len(groups)), dtype=bool)
    pairs = [(q, g) for g, group in enumerate(groups) for layer in group.layers
             if (q := feed_of.get(layer.name)) is not None]
    if pairs:
        qs, gs = zip(*pairs, strict=True)
        feeds[list(qs), list(gs)] = True
    launch_s = launch_us(board, c, runtime) * 1e-6
    return PsPrices(runtime, groups, per_layer, cpu_rows, quant, roles, feeds,
                    runtime == "native", np.array([launch_s, launch_s, 0.0, 0.0]), ops,
                    idle_groups(groups, scenario))


# -- memory ----------------------------------------------------------------------------------

def layer_board_bytes(layer: Layer, on_fpga: bool, design: EngineDesign, runtime: str,
                      dtype_bytes: int) -> int:
    """DDR bytes of one Linear's weights: the engine's format if offloaded, else the
    runtime's (2-bit ternary and an f16 head for ``native``, the profiled dtype for
    ``torch``)."""
    if on_fpga:
        return layer_weight_bytes(layer, design)
    if runtime == "torch":
        return layer.weights * dtype_bytes
    return get_packing("i2").matrix_bytes(layer.n, layer.k) if layer.ternary else layer.weights * 2


def embedding_bytes(wl: Workload, runtime: str, head_on_fpga: bool, design: EngineDesign) -> int:
    """The embedding table, unless it is tied to a head stored in the same format (held once:
    the CPU's head, or a bf16 head unit reading the native runtime's 2-byte table). A
    two-stage head adds the int8 copy its stage 2 rescores against, which a tied embedding
    then looks tokens up in."""
    cfg = wl.config
    table = cfg.vocab * cfg.hidden
    emb = 2 if runtime == "native" else wl.dtype_bytes
    if head_on_fpga and not design.head:
        return table + (0 if cfg.tied_embeddings else table * emb)
    shared = not head_on_fpga or (design.head == "bf16" and emb == 2)
    return 0 if cfg.tied_embeddings and shared else table * emb


def memory_bytes(wl: Workload, plan: Plan, ctx: CostContext, scenario: Scenario) -> int:
    """DDR bytes the plan needs on the board.

    On-board: every Linear (``layer_board_bytes``), the embedding (``embedding_bytes``), the
    KV cache of every sequence and the runtime. Host-attached: only what the FPGA reads.
    """
    design = plan.design
    if scenario.view != "on-board":
        return int(sum(layer_weight_bytes(layer, design) for layer in wl.layers
                       if layer.name in plan.offload))
    total = sum(layer_board_bytes(layer, layer.name in plan.offload, design, plan.runtime,
                                  wl.dtype_bytes) for layer in wl.layers)
    head_on_fpga = any(not layer.ternary and layer.name in plan.offload for layer in wl.layers)
    total += embedding_bytes(wl, plan.runtime, head_on_fpga, design)
    total += wl.config.kv_bytes_per_token(kv_bytes(scenario.kv_dtype)) * scenario.cached_tokens
    return int(total + ctx.constants.runtime_bytes)


def baselines(wl: Workload, ctx: CostContext, scenario: Scenario, memo: dict | None = None
              ) -> tuple[Baseline, ...]:
    """Every runtime with everything on the CPU; on board, whether its memory fits
    (``memo``: ``project``'s)."""
    out = []
    empty = EngineDesign(1, 1)
    for runtime in wl.runtimes:  # torch only where a profile measured the host
        plan = Plan(f"cpu {runtime}", empty, frozenset(), runtime=runtime)
        p = project_total(wl, plan, ctx, scenario, memo)
        mem = memory_bytes(wl, plan, ctx, scenario)  # as ``project``'s (no KV format of its own)
        cap = ctx.board.ddr.capacity_bytes
        fits = scenario.view == "host-attached" or mem <= cap
        reason = None if fits else msg("reason.memory", "needs {need:,.0f} MiB of DDR, the "
                                       "board has {have:,.0f} MiB", need=mem / 2**20,
                                       have=cap / 2**20)
        out.append(Baseline(runtime, p.plan_ms, mem, fits, reason, p.energy, scenario.kv_dtype))
    return tuple(out)


# -- the plan --------------------------------------------------------------------------------

def group_calls(layers: list[Layer], fuse: bool) -> dict[str, list[Layer]]:
    """Offloaded layers grouped into accelerator calls (fused groups share one input)."""
    return {g.key: list(g.layers) for g in group_layers(layers, fuse)}


DEFAULT_SCENARIO = Scenario()


@dataclass(frozen=True)
class _Priced:
    """A plan's forward priced (``_price``): what ``project`` reads on from, and all that
    ``project_total`` needs."""

    scenario: Scenario
    cpu: CpuSpec
    threads: int
    offloaded: list[Layer]
    call_groups: tuple[Group, ...]
    groups: tuple[Group, ...]
    ps: PsPrices
    fx: Fixed
    calls: dict[str, CallCost]
    stage2: dict[str, Work]
    shapes: dict[tuple, tuple[np.ndarray, CallCost]]
    table: PriceTable
    on: np.ndarray
    total: np.ndarray


def _price(wl: Workload, plan: Plan, ctx: CostContext, scenario: Scenario,
           memo: dict | None = None) -> _Priced:
    """The price table of ``plan``'s forward in ``scenario`` and its total: the plan's
    offloaded Linears as its calls, the rest on the CPU one by one (``project``'s first
    half, shared with ``project_total``)."""
    board, c, design = ctx.board, ctx.constants, plan.design
    if plan.runtime not in RUNTIMES:
        raise DseError(f"plan {plan.name}: runtime: expected one of {', '.join(RUNTIMES)}, "
                       f"got {plan.runtime!r}")
    if plan.runtime not in wl.runtimes:
        raise DseError(f"plan {plan.name}: runtime: {plan.runtime} prices measured host times "
                       f"and {wl.model} has none (give --profile), expected "
                       f"{' or '.join(wl.runtimes)}")
    if plan.kv_dtype is not None and plan.kv_dtype != scenario.kv_dtype:
        scenario = replace(scenario, kv_dtype=plan.kv_dtype)
    scenario.validate(wl.config)
    host, cpu, threads = cpus(wl, board, scenario)
    # the groups and their PS prices read the plan's runtime, offload set and fusion only
    key = ("ps", plan.runtime, scenario, plan.offload, plan.fuse)
    hit = None if memo is None else memo.get(key)
    if hit is None:
        offloaded = [layer for layer in wl.layers if layer.name in plan.offload]
        call_groups = group_layers(offloaded, plan.fuse)
        groups = call_groups + tuple(Group(layer.name, (layer,)) for layer in wl.layers
                                     if layer.name not in plan.offload)
        ps = ps_prices(wl, plan.runtime, scenario, groups, host, cpu, threads, board, c,
                       engines=bool(offloaded), memo=memo)
        hit = (tuple(offloaded), call_groups, groups, ps)
        if memo is not None:
            memo[key] = hit
    offloaded_t, call_groups, groups, ps = hit
    offloaded = list(offloaded_t)
    env = UnitEnv(wl, design.clock_mhz, design.engines, board, c, scenario, plan.runtime, cpu,
                  threads)
    fx = fixed_side(ps, plan.units, env)
    launch_s = float(ps.launch[0])
    stream = np.full((len(groups), 4), np.inf)
    calls: dict[str, CallCost] = {}
    stage2: dict[str, Work] = {}
    # a call shape is priced once (a forward repeats a few shapes layer after layer)
    shapes: dict[tuple, tuple[np.ndarray, CallCost]] = {}
    idle = ps.idle
    for i, g in enumerate(call_groups):
        if idle[i]:  # the head of a forward without logits: no call at all
            stream[i] = 0.0
            continue
        streamed = (sum(0 if layer.name in plan.resident else layer_weight_bytes(layer, design)
                        for layer in g.layers) if plan.resident else
                    sum(layer_weight_bytes(layer, design) for layer in g.layers))
        dense = None if g.ternary else design.head
        shape = (g.n, g.k, _linear_m(g.layers[0], scenario), streamed, dense, g.ternary)
        if shape not in shapes:
            cc = call_cost(design, board, c, n=shape[0], k=shape[1], m=shape[2],
                           weight_bytes=streamed, dense=dense, launch_us=0.0)
            shapes[shape] = (row(call_work(cc)), with_launch(cc, launch_s))
        stream[i], calls[g.key] = shapes[shape]
        if not g.ternary and not dense:
            stage2[g.key] = two_stage_work(g.layers[0], plan.head_top_k, scenario, cpu,
                                           threads, c)
            stream[i] += row(stage2[g.key])
    table = price_table(ps, fx, stream)
    on = np.arange(len(groups)) < len(call_groups)
    total = table.total(on, np.zeros(len(groups), dtype=bool))
    return _Priced(scenario, cpu, threads, offloaded, call_groups, groups, ps, fx, calls,
                   stage2, shapes, table, on, total)


def _plan_resources(plan: Plan, offloaded: bool, board: Board, c: CostConstants) -> Resources:
    """The plan's fabric: its engines (none when nothing is offloaded) and its PL units."""
    res = engine_resources(plan.design, board, c) if offloaded else Resources()
    for u in plan.units:
        res = res + u.resources(c)
    return res


def _energy(plan: Plan, board: Board, forward: Work, res: Resources, scenario: Scenario
            ) -> Energy | None:
    """The forward's energy through the board's power model (None without one)."""
    if board.power is None:
        return None
    return energy_of(board.power, forward, res, plan.design.clock_mhz,
                     scenario.m * scenario.sequences)


@dataclass(frozen=True)
class PlanTotal:
    """What ``project_total`` prices of a plan: its forward's time and energy, the same
    floats as ``project``'s ``plan_ms`` and ``energy``."""

    plan_ms: float
    energy: Energy | None


def project_total(wl: Workload, plan: Plan, ctx: CostContext,
                  scenario: Scenario = DEFAULT_SCENARIO, memo: dict | None = None
                  ) -> PlanTotal:
    """``project``'s ``plan_ms`` and ``energy`` alone (pure; the same price table, so the
    same floats), for a caller that needs only the objective: a sensitivity sweep
    re-projects a plan under many constants; the CPU-only baselines (``memo``:
    ``project``'s)."""
    pr = _price(wl, plan, ctx, scenario, memo)
    board = ctx.board
    energy = None
    if board.power is not None:
        energy = _energy(plan, board, work(pr.total),
                         _plan_resources(plan, bool(pr.offloaded), board, ctx.constants),
                         pr.scenario)
    return PlanTotal(float(pr.total[T]) * 1e3, energy)


def project(wl: Workload, plan: Plan, ctx: CostContext, scenario: Scenario = DEFAULT_SCENARIO,
            *, with_baselines: bool = True, base: tuple[Baseline, ...] | None = None,
            memo: dict | None = None) -> Projection:
    """Price ``plan`` for ``scenario`` (pure). ``base`` may be passed in to save time, and
    ``memo`` (``ps_prices``'s: one dict per workload and context) shared between calls.

    The plan's offloaded Linears form its calls, the rest stay on the CPU one by one; the price
    table (``dse.model.price``) holds every part and its total is the plan's time; the rest of
    the projection says where that time goes."""
    board, c, design = ctx.board, ctx.constants, plan.design
    pr = _price(wl, plan, ctx, scenario, memo)
    scenario, cpu, threads, offloaded = pr.scenario, pr.cpu, pr.threads, pr.offloaded
    call_groups, groups, ps, fx = pr.call_groups, pr.groups, pr.ps, pr.fx
    calls, stage2, shapes = pr.calls, pr.stage2, pr.shapes
    table, on, total = pr.table, pr.on, pr.total
    plan_ms = float(total[T]) * 1e3
    # where the time goes: components, items, accounts by device
    comp = dict.fromkeys(COMPONENTS, 0.0)
    ps_comp = dict.fromkeys(COMPONENTS, 0.0)
    items: dict[str, float] = {}

    def add_item(item: str, ms: float) -> None:
        items[item] = items.get(item, 0.0) + ms

    # in call order, so the sums are the same floating-point sums whatever the shapes
    parts = {id(cc): (not shape[-1], cc.stream_s * 1e3, cc.handoff_s * 1e3,
                      tuple(call_items(cc, not shape[-1]).items()))
             for shape, (_, cc) in shapes.items()}
    for cc in calls.values():
        head, stream_ms, handoff_ms, its = parts[id(cc)]
        comp["head" if head else "ternary_pl"] += stream_ms
        comp["head" if head else "handoff"] += handoff_ms
        for item, ms in its:
            items[item] = items.get(item, 0.0) + ms
    for key, st in stage2.items():
        head_layer = next(g.layers[0] for g in call_groups if g.key == key)
        comp["head"] += st.time_s * 1e3
        ps_comp["head"] += st.time_s * 1e3
        sel, res = head_stage2(head_layer.n, head_layer.k, plan.head_top_k, scenario.sequences,
                               cpu, threads, c)
        add_item("head_topk", sel.time_s * 1e3)
        add_item("head_rescore", res.time_s * 1e3)
    call_of = {layer.name: g.key for g in call_groups for layer in g.layers
               if g.key in calls}
    cpu_work = {layer.name: w for g, ws in zip(groups, ps.linears, strict=True)
                for layer, w in zip(g.layers, ws, strict=True)}
    rows = []
    cpu_lin_ms = 0.0
    idle = Work()  # what a call adds on the PS beside it, when nothing (one, shared: frozen)
    for layer in wl.layers:
        lw = cpu_work[layer.name]
        cpu_ms = lw.time_s * 1e3
        if layer.name in call_of:
            key = call_of[layer.name]
            call = calls[key]
            placement = "fpga-resident" if layer.name in plan.resident else "fpga"
            extra = stage2.get(key, idle) if not layer.ternary else idle
            rows.append(LayerProjection(layer.name, layer.role, layer.n, layer.k, placement,
                                        cpu_ms, (call.time_s * layer.n / call.n
                                                 + extra.time_s) * 1e3, key, call.bound,
                                        work=extra))
        elif layer.name in plan.offload:  # offloaded, no call in this forward (no logits)
            rows.append(LayerProjection(layer.name, layer.role, layer.n, layer.k, "fpga",
                                        cpu_ms, 0.0))
        else:
            part = "ternary_cpu" if layer.ternary else "head"
            comp[part] += cpu_ms
            ps_comp[part] += cpu_ms
            cpu_lin_ms += cpu_ms
            rows.append(LayerProjection(layer.name, layer.role, layer.n, layer.k, "cpu",
                                        cpu_ms, cpu_ms, work=lw))
    shown = _shown_ops(ps, fx, table, on, plan.runtime)
    ops = shown + fx.parts
    acc: dict[tuple[str, str], float] = {}
    for op, kind in zip(ops, ("",) * len(shown) + fx.part_kinds, strict=True):
        comp[op.component] += op.time_ms
        if op.item:
            add_item(op.item, op.time_ms)
        device = op.device if op.device in ("ps", "engines") else f"pl:{kind}"
        if device == "ps":
            ps_comp[op.component] += op.time_ms
        key = "ps_ops" if device == "ps" else ("credits" if device == "engines"
                                               else f"unit:{device[3:]}")
        acc[(key, device)] = acc.get((key, device), 0.0) + op.time_ms
    accounts = (Account("calls", "engines", sum(cc.time_s for cc in calls.values()) * 1e3),
                Account("head_stage2", "ps", sum(w.time_s for w in stage2.values()) * 1e3),
                Account("cpu_linears", "ps", cpu_lin_ms),
                *(Account(k, d, ms) for (k, d), ms in acc.items()))
    accounts = tuple(a for a in accounts if a.ms or a.key == "calls")
    # resources and fit
    infeasible: list[Msg] = list(fx.infeasible)
    off = frozenset(plan.offload)
    for u in plan.units:
        missing = sorted({layer.role for layer in wl.layers if layer.role in u.needs
                          and layer.name not in off})
        if missing:
            infeasible.append(msg("infeasible.unit_needs", "the {kind} unit needs {roles} of "
                                  "every layer on the engines", kind=u.kind,
                                  roles=", ".join(sorted(u.needs))))
    resident_bytes = sum(layer_weight_bytes(layer, design) for layer in offloaded
                         if layer.name in plan.resident)
    if resident_bytes > design.resident_bytes:
        infeasible.append(msg("infeasible.resident", "resident weights {need:,} B exceed the "
                              "engine's on-chip buffer {have:,} B", need=resident_bytes,
                              have=design.resident_bytes))
    res = _plan_resources(plan, bool(offloaded), board, c)
    infeasible += [msg("infeasible.cap", "{what}", what=r) for r in res.overflow(board)]
    evidence = plan_evidence(design, plan.units, board, c, res) if offloaded else None
    if offloaded and (err := link_limit_error(design, board)) is not None:
        infeasible.append(msg("infeasible.link", "{what}", what=err))
    mem = memory_bytes(wl, plan, ctx, scenario)
    if scenario.view == "on-board" and mem > board.ddr.capacity_bytes:
        infeasible.append(msg("infeasible.memory", "memory: plan needs {need:,.0f} MiB of DDR, "
                              "board has {have:,.0f} MiB", need=mem / 2**20,
                              have=board.ddr.capacity_bytes / 2**20))
    ddr_weight = sum(call.weight_bytes for call in calls.values())
    floor_ms = ddr_weight / (board.ddr.peak_bandwidth_gb_s * 1e9) * 1e3
    forward = work(total)
    energy = _energy(plan, board, forward, res, scenario)
    if with_baselines and base is None:
        base = baselines(wl, ctx, scenario, memo)
    return Projection(
        plan=plan, board=board.name, scenario=scenario, calibration=ctx.calibration,
        cpu=cpu.name, threads=threads, layers=tuple(rows), ops=tuple(ops), calls=calls,
        components=comp, plan_ms=plan_ms, baselines=base or (), resources=res,
        utilization=res.utilization(board), memory_bytes=mem,
        memory_capacity_bytes=board.ddr.capacity_bytes, ddr_weight_bytes=ddr_weight,
        ddr_floor_ms=floor_ms, infeasible=tuple(infeasible),
        notes=_notes(wl, plan, scenario), work=forward, energy=energy, evidence=evidence,
        items={k: v for k, v in items.items() if v}, accounts=accounts,
        ps_components={k: v for k, v in ps_comp.items() if v},
        ddr_bytes_per_s=board.ddr_bytes_per_s)


def operator_components(wl: Workload, plan: Plan, ctx: CostContext, scenario: Scenario
                        ) -> dict[str, float]:
    """The components of ``project(wl, plan, ctx, scenario)`` that its operators make (the
    PS's operators as the plan runs them and its units' parts), ms, without pricing its calls
    or Linears: the same parts ``project`` sums, in the same order (so the same floats), for
    a caller that needs only these (a fit's PS-side entries, evaluated many times)."""
    board, c = ctx.board, ctx.constants
    if plan.kv_dtype is not None and plan.kv_dtype != scenario.kv_dtype:
        scenario = replace(scenario, kv_dtype=plan.kv_dtype)
    scenario.validate(wl.config)
    host, cpu, threads = cpus(wl, board, scenario)
    call_groups = group_layers([la for la in wl.layers if la.name in plan.offload], plan.fuse)
    ps = ps_prices(wl, plan.runtime, scenario, call_groups, host, cpu, threads, board, c,
                   linears=False, engines=bool(call_groups))
    env = UnitEnv(wl, plan.design.clock_mhz, plan.design.engines, board, c, scenario,
                  plan.runtime, cpu, threads)
    fx = fixed_side(ps, plan.units, env)
    on = np.ones(len(call_groups), dtype=bool)
    table = price_table(ps, fx, np.zeros((len(call_groups), 4)))
    comp = dict.fromkeys(COMPONENTS, 0.0)
    for op in _shown_ops(ps, fx, table, on, plan.runtime) + fx.parts:
        comp[op.component] += op.time_ms
    return comp


def _shown_ops(ps: PsPrices, fx: Fixed, table: PriceTable, offloaded: np.ndarray,
               runtime: str) -> tuple[OpProjection, ...]:
    """The PS's operators as the plan runs them, in the forward's order: those a unit took at
    no PS time on the PL, each quantization class at what the plan pays of it (all of it
    under ``native``; under ``torch`` the instances feeding offloaded Linears), the rest as
    priced."""
    taken = {(op.role, op.kind): u for op, u in fx.taken}
    paid = table.quant_paid(offloaded)
    out = []
    for op in ps.ops:
        unit = taken.get((op.role, op.kind))
        if unit is not None:
            out.append(OpProjection(op.role, op.kind, op.count, "pl", 0.0, "pl",
                                    msg("basis.in_unit", "in the PL unit `{unit}`",
                                        unit=unit.label), op.component))
        elif op.kind == "quant":
            mine = np.array([r == op.role for r in ps.quant_role], dtype=bool)
            w = table.quant[mine & paid].sum(axis=0) if mine.any() else np.zeros(4)
            frac = float((mine & paid).sum()) / op.count if op.count else 0.0
            basis = op.basis if runtime == "native" else msg(
                "basis.quant_paid", "{basis}; paid for {frac:.0%} of layers (inputs of "
                "offloaded Linears)", basis=op.basis, frac=frac)
            out.append(OpProjection(op.role, op.kind, op.count, op.device, float(w[T]) * 1e3,
                                    op.bound, basis, op.component, work(w), op.item))
        else:
            out.append(op)
    return tuple(out)


def _notes(wl: Workload, plan: Plan, scenario: Scenario) -> tuple[str, ...]:
    """The workload's assumptions, plus the runtime's and the scenario's."""
    notes = [*wl.notes, f"PS runtime: {RUNTIME_TEXT[plan.runtime]}",
             f"KV cache {scenario.kv_dtype}"
             + (" (the plan's kv_dtype)" if plan.kv_dtype is not None else "")
             + f", context {scenario.context_tokens} tokens, {scenario.sequences} sequence(s)"]
    if scenario.phase == "prefill":
        notes.append(f"prefill of {scenario.m} tokens: attention over {scenario.m} x "
                     f"{scenario.context_tokens} causal pairs"
                     + ("; the head scores only the last token" if scenario.logits else
                        "; no logits (a prompt group before the last: no head, no sampling)")
                     + "; PyTorch Linears take max(measured per-call time, GEMM at "
                     "host_gemm_efficiency of peak)")
    vectors = scenario.m * scenario.sequences
    if vectors > 1 and plan.offload:
        d = plan.design
        notes.append(
            f"{vectors} vectors a forward: {math.ceil(vectors / d.vectors)} weight pass(es) "
            f"of up to {d.vectors}, ceil(vectors/{d.vectors_per_clock}) clocks a weight beat "
            f"(or the DDR bound); "
            + ("each vector's PS operators run on their own, between the engine calls, "
               if plan.runtime == "native" else "the PS's operators batched (PyTorch), ")
            + "each sequence's attention at its own context, and each vector's "
            "results are read out and gathered from the pass; PS and PL work do not overlap "
            "(the published runtime's forward_slots, runtime/bitnet_kria.c), but for the glue "
            "unit's FFN scale, beside its passes only at one vector a forward")
    return tuple(notes)


__all__ = [
    "ATTENTION_OPS",
    "COMPONENTS",
    "DENSE_BYTES_PER_WEIGHT",
    "GLUE_OPS",
    "ITEMS",
    "SCANNED_ROLES",
    "VIEWS",
    "VIEW_TEXT",
    "Account",
    "AttentionUnit",
    "Baseline",
    "CostContext",
    "GlueUnit",
    "LayerProjection",
    "OpProjection",
    "Plan",
    "Projection",
    "Scenario",
    "baselines",
    "call_work",
    "cpus",
    "embedding_bytes",
    "group_calls",
    "layer_board_bytes",
    "layer_cpu",
    "memory_bytes",
    "op_costs",
    "operator_components",
    "project",
    "project_total",
    "ps_prices",
]
