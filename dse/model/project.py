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

from dse.errors import DseError
from dse.model.arch import ModelConfig
from dse.model.board import Board
from dse.model.calibration import Calibration, resolve_calibration
from dse.model.constants import DEFAULT_CONSTANTS, CostConstants
from dse.model.cost import CallCost, call_cost, handoff, launch_us, layer_weight_bytes
from dse.model.cpu import (
    RUNTIME_TEXT,
    RUNTIMES,
    CpuSpec,
    head_rescore,
    head_stage2,
    native_linear,
    native_op,
    shift_scan,
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
from dse.model.kv_attn import (
    KV_ATTN_BEAT_BYTES,
    MODE_SCORES,
    MODE_XV,
    kv_attn_cycles,
    kv_attn_p_beats,
)
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
from dse.model.scenario import Scenario
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
         "shift_scan": "elementwise"}


def call_items(cc: CallCost, head: bool) -> dict[str, float]:
    """One call's share of ``ITEMS``, ms: a head call's hand-off is the head's sync."""
    if head:
        return {"head_stream": cc.stream_s * 1e3, "head_topk": cc.handoff_s * 1e3}
    return {"weight_stream": cc.stream_s * 1e3, "activation_loads": cc.act_s * 1e3,
            "run_overhead": cc.overhead_s * 1e3, "sums_readout": cc.readout_s * 1e3,
            "rescale": cc.rescale_s * 1e3}


#: What a glue unit takes off the PS: the element-wise work between gate/up and down.
GLUE_OPS = ("act_fn", "gate_mul", "ffn_sub_norm", "quant_down")
#: The calls whose results the glue's shift scan reads out (``dse.model.cpu.shift_scan``).
SCANNED_ROLES = frozenset({"gate_proj", "up_proj"})


@dataclass(frozen=True)
class GlueUnit:
    """A PL unit fused behind the engines for the FFN's element-wise work (squared ReLU, gate
    product, the sub-norm's scaling, re-quantization for down_proj): ``passes`` over the
    intermediate vector per layer (a reduction, then the scaling), ``cycles_per_elem`` each,
    at the engine's clock."""

    passes: int = 2
    cycles_per_elem: float = 1.0


def glue_work(glue: GlueUnit, wl: Workload, m_tokens: int, clock_mhz: float) -> Work:
    """The glue unit's time (the PS waits on it), PL busy time and DDR traffic per forward:
    it reads the gate and up int32 results and writes down_proj's int8 input."""
    cfg = wl.config
    elems = cfg.layers * m_tokens * cfg.intermediate
    t = glue.passes * elems * glue.cycles_per_elem / (clock_mhz * 1e6)
    return Work(t, t, float(elems * (2 * 4 + 1)), t)


def glue_scan_work(wl: Workload, board: Board, scenario: Scenario, c: CostConstants) -> Work:
    """What a fixed-point glue unit needs from the PS per forward: the shift scan
    (``dse.model.cpu.shift_scan``), on the PS of the scenario's view, busy and waited for."""
    _, cpu, threads = cpus(wl, board, scenario)
    oc = shift_scan(wl.config.intermediate, wl.config.layers, scenario.m * scenario.sequences,
                    cpu, threads, c)
    return Work(oc.time_s, oc.time_s * oc.cores, oc.ddr_bytes)


def scan_readout_work(wl: Workload, m_tokens: int, c: CostConstants) -> Work:
    """The gate/up results' cache invalidation for ``m_tokens`` tokens, which a glue unit's
    shift scan does itself (``dse.model.cpu.shift_scan``): taken out of those calls' hand-off,
    so a plan with a glue unit pays it once. A PS core does it: busy and waited for."""
    n = sum(layer.n for layer in wl.layers if layer.role in SCANNED_ROLES)
    t = m_tokens * n * 4 / c.cache_maint_bytes_per_s
    return Work(t, t)


def glue_resources(c: CostConstants) -> Resources:
    return Resources(lut=c.glue_lut, ff=c.glue_ff, bram36=c.glue_bram36)


#: What the attention unit takes off the PS: the two passes over the KV cache. The softmax
#: between them stays on the PS (dse.model.kv_attn says why).
ATTENTION_OPS = ("attn_score", "attn_v")


@dataclass(frozen=True)
class AttentionUnit:
    """The attention unit (overlays/rtl/kv_attn.v, priced by ``dse.model.kv_attn``): scores
    and x V over an int8 KV cache in DDR at the engine's clock, two calls per decoder layer.
    The fields are the build's parameters: G query heads per kv head, head dimension D, up to
    HMAX kv heads and TMAX positions (the p block it holds), and its pipeline fill/drain."""

    group: int = 4
    head_dim: int = 128
    max_kv_heads: int = 5
    max_positions: int = 4096
    latency_cycles: int = 10

    @property
    def macs_per_clock(self) -> int:
        """MACs per clock (int8 x int8 scores, uint16 x int8 for x V): 16 lanes of a 128-bit beat
        x the G query heads of a group."""
        return KV_ATTN_BEAT_BYTES * self.group

    @property
    def label(self) -> str:
        return f"kv_attn G{self.group} D{self.head_dim} T{self.max_positions}"

    def violations(self, cfg: ModelConfig, scenario: Scenario) -> list[Msg]:
        """Why this unit cannot run the scenario's attention (empty when it can)."""
        out = []
        if scenario.kv_dtype != "int8":
            out.append(msg("infeasible.attn_kv", "the attention unit reads an int8 KV cache; "
                           "the scenario's is {kv} (--kv-dtype int8)", kv=scenario.kv_dtype))
        shape = (cfg.heads // cfg.kv_heads, cfg.head_dim)
        if shape != (self.group, self.head_dim) or cfg.kv_heads > self.max_kv_heads:
            out.append(msg("infeasible.attn_shape", "the attention unit is built for {g} query "
                           "heads per kv head, head dimension {d} and up to {h} kv heads; the "
                           "model has {mg}, {md} and {mh}", g=self.group, d=self.head_dim,
                           h=self.max_kv_heads, mg=shape[0], md=shape[1], mh=cfg.kv_heads))
        if scenario.context_tokens > self.max_positions:
            out.append(msg("infeasible.attn_tmax", "the attention unit holds {tmax} positions, "
                           "the scenario attends over {ctx}", tmax=self.max_positions,
                           ctx=scenario.context_tokens))
        return out


def attention_work(unit: AttentionUnit, design: EngineDesign, wl: Workload, scenario: Scenario,
                   board: Board, c: CostConstants, runtime: str) -> Work:
    """Per forward, every layer's two unit calls and the PS work around them; the PS waits.

    A call takes the larger of its cycles (``kv_attn_cycles``, q or p block and cache rows
    included) and its bytes at the PL's DDR rate, plus the hand-off an engine call pays
    (``dse.model.cost.handoff`` for one unit: register accesses, the runtime's launch, the
    results' cache invalidation; the rescale only for the x V sums, as the softmax scales the
    scores itself). The inputs the PS writes (q, p, the token's new K/V rows) go through the
    uncached mapping as an engine's activations do. The PS folds the softmax's probabilities
    with the V scales into uint16 p (2 bytes each in the p block), one multiply and convert
    per element, priced as a rescale;
    the softmax stays an operator on the PS. Prefill runs one query position per call pair,
    at each position's own context (the mean, as the cycle count is linear in it).
    """
    cfg = wl.config
    h, g, d = cfg.kv_heads, cfg.heads // cfg.kv_heads, cfg.head_dim
    t = max(1, round(scenario.context_tokens - (scenario.m - 1) / 2))
    lat = unit.latency_cycles
    launch = launch_us(board, c, runtime)
    rows = t * h * d
    score_in = h * g * d + rows
    xv_in = kv_attn_p_beats(t, h, g) * KV_ATTN_BEAT_BYTES + rows
    pl = sum(max(kv_attn_cycles(mode, t, h, g, d, lat) / design.clock_hz,
                 nbytes / board.ddr_bytes_per_s)
             for mode, nbytes in ((MODE_SCORES, score_in), (MODE_XV, xv_in)))
    ps = t * h * g * c.rescale_ns_per_elem * 1e-9
    for n, rescale in ((t * h * g, False), (h * g * d, True)):
        ho = handoff(design, board, c, n=n, k=0, m=1, launch_us=launch, rescale=rescale,
                     engines=1)
        ps += ho.act_load_s + ho.run_s + ho.readout_s + ho.rescale_s
    reps = cfg.layers * scenario.m * scenario.sequences
    return Work(reps * (pl + ps), reps * ps, reps * (score_in + xv_in), reps * pl)


def attention_resources(unit: AttentionUnit, c: CostConstants) -> Resources:
    """The unit's fabric, counted from what overlays/rtl/kv_attn.v infers (overlays/KV_ATTN.md
    "Resources"; no synthesis): one DSP48E2 per MAC, the p block (2 bytes per uint16 p) in
    128-bit wide block RAM (4 BRAM36 columns per 1,024 words), the accumulator and q banks in
    LUT RAM (one LUT per bit per 64 words), a 32-bit adder per MAC, fixed control, adder tree
    and result FIFO, and its own AXI DMA."""
    g = unit.group
    words = unit.max_kv_heads * unit.head_dim // KV_ATTN_BEAT_BYTES  # q / accumulator depth
    lutram = (512 * g + 128 * g) * math.ceil(words / 64)
    p_words = kv_attn_p_beats(unit.max_positions, unit.max_kv_heads, g)
    return Resources(lut=c.attn_lut_fixed + lutram + unit.macs_per_clock * 32 + c.dma_lut,
                     ff=c.attn_ff_fixed + unit.macs_per_clock * 25 * 3 + 128 * g + c.dma_ff,
                     bram36=4 * math.ceil(p_words / 1024) + c.dma_bram36,
                     dsp=unit.macs_per_clock)


@dataclass(frozen=True)
class Plan:
    """An engine design and the layers it runs; ``resident`` layers keep weights on chip;
    ``runtime`` is the PS software for everything left on the CPU."""

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
    #: The FFN glue unit in the PL, if the plan has one.
    glue: GlueUnit | None = None
    #: The attention unit in the PL, if the plan has one.
    attention: AttentionUnit | None = None
    #: The KV-cache element type the plan keeps (None: the scenario's); the search chooses
    #: it among the formats the objective allows.
    kv_dtype: str | None = None

    @property
    def build_note(self) -> str:
        """How to build the plan's overlay: the engines' ``make`` line, plus the attention
        unit's build parameters when the plan has one (or the design's what-if note)."""
        note = self.design.build_note
        a = self.attention
        if a is None or not self.design.buildable:
            return note
        return (f"{note} ATTN=1 ATTN_G={a.group} ATTN_D={a.head_dim} ATTN_HMAX={a.max_kv_heads} "
                f"ATTN_TMAX={a.max_positions}")

    @property
    def units(self) -> tuple[str, ...]:
        """The PL units the plan needs besides the ternary engines."""
        out = []
        if self.design.head and "lm_head" in self.offload:
            out.append(f"head:{self.design.head}x{self.design.head_macs}")
        elif "lm_head" in self.offload:
            out.append(f"head:two-stage top-{self.head_top_k}")
        if self.glue is not None:
            out.append(f"glue:{self.glue.passes}x{self.glue.cycles_per_elem:g}")
        if self.attention is not None:
            out.append(f"attention:{self.attention.label}")
        return tuple(out)


@dataclass(frozen=True)
class CostContext:
    """The board, the constants in force, and which calibration they came from."""

    board: Board
    constants: CostConstants = DEFAULT_CONSTANTS
    calibration: str = "none"

    @classmethod
    def for_board(cls, board: Board, calibration: Calibration | None = None) -> CostContext:
        """The board's constants (its ``cost_overrides`` applied), then ``calibration``'s."""
        c = DEFAULT_CONSTANTS.with_overrides(board.cost_overrides,
                                             f"{board.path or board.name}: cost_overrides")
        if calibration is None:
            return cls(board, c, "none")
        if calibration.board != board.name:
            raise DseError(f"{calibration.path}: board: expected {board.name!r} (the board "
                           f"being projected), got {calibration.board!r}")
        b, c = calibration.apply(board, c)
        return cls(b, c, calibration.label())

    @classmethod
    def resolve(cls, board: Board, option: str | None = None) -> CostContext:
        """CLI helper: the calibration the user named (``--calibration FILE``, else the board
        file's ``calibration:`` field), none otherwise; ``none`` ignores the board's field."""
        return cls.for_board(board, resolve_calibration(board, option))


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
class OpProjection:
    """One non-Linear operator class on its device (ms per forward), and what its time rests
    on: measured and moved, or a roofline / kernel model."""

    role: str
    kind: str
    count: int
    device: str
    time_ms: float
    bound: str
    basis: Msg
    component: str
    work: Work = field(default_factory=Work)


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

    @property
    def bound(self) -> str:
        """What limits the plan: the PS (and its largest part) or the PL's binding term."""
        fpga_ms = dict.fromkeys(("compute", "ddr", "link", "overhead"), 0.0)
        for call in self.calls.values():
            fpga_ms[call.bound] += call.time_s * 1e3
        ps_ms = self.ops_ms + sum(p.time_ms for p in self.layers if p.placement == "cpu")
        top = max(fpga_ms, key=fpga_ms.__getitem__)
        if ps_ms >= fpga_ms[top]:
            ps_parts = {k: v for k, v in self.components.items() if k not in ("ternary_pl",
                                                                              "handoff")}
            if any(lp.placement != "cpu" and lp.role == "lm_head" for lp in self.layers):
                ps_parts.pop("head", None)
            return f"ps ({max(ps_parts, key=ps_parts.__getitem__)})" if ps_parts else "ps"
        return top


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
    sequence (llama.cpp and transformers' generate compute no other logits)."""
    return scenario.sequences if not layer.ternary else scenario.m * scenario.sequences


def layer_cpu(wl: Workload, layer: Layer, runtime: str, scenario: Scenario, host: CpuSpec,
              cpu: CpuSpec, threads: int, c: CostConstants) -> Work:
    """One Linear on the CPU under ``runtime``: its time, busy cores and weight bytes."""
    m = _linear_m(layer, scenario)
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


def _op_m(op: Op, scenario: Scenario) -> tuple[int, int, int]:
    """(tokens, context, repeats) an operator runs with: attention per sequence, its own
    cache; sampling once per sequence; the rest over every token of the forward."""
    if op.kind in ("rope", "kv_write", "attn_score", "softmax", "attn_v"):
        return scenario.m, scenario.context_tokens, scenario.sequences
    if op.kind == "sample":
        return scenario.sequences, scenario.sequences, 1
    m = scenario.m * scenario.sequences
    return m, max(m, scenario.context_tokens), 1


def op_costs(wl: Workload, runtime: str, scenario: Scenario, host: CpuSpec, cpu: CpuSpec,
             threads: int, c: CostConstants) -> tuple[OpProjection, ...]:
    """Every non-Linear operator on the CPU under ``runtime``, ms per forward.

    Quantization ops are priced whole here; ``project`` keeps the share whose consumer
    needs it (all under ``native``; under ``torch`` only inputs of offloaded Linears, since
    the profiled PyTorch Linears take float inputs).
    """
    kvb = kv_bytes(scenario.kv_dtype, "kv_dtype")
    act_bytes = float(wl.dtype_bytes)
    out: list[OpProjection] = []
    if runtime == "native":
        for op in wl.ops:
            m, ctx, rep = _op_m(op, scenario)
            oc = native_op(op, m, ctx, cpu, threads, scenario.kv_dtype, kvb, c)
            t = oc.time_s * rep
            out.append(OpProjection(op.role, op.kind, op.count, "ps", t * 1e3, oc.bound,
                                    oc.basis, COMPONENT[op.kind],
                                    Work(t, t * oc.cores, oc.ddr_bytes * rep)))
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
        m, ctx, rep = _op_m(ops[0], scenario)
        oc = torch_ops(tuple(ops), m, ctx, host, cpu, act_bytes, kvb, meas, c)
        # A module covering several operators: split its time by their roofline shares.
        shares = [max(op_flops(op, m, ctx) / (cpu.peak_fp32_gflops * 1e9),
                      op_bytes(op, m, ctx, act_bytes, kvb).total / cpu.bytes_per_s)
                  for op in ops]
        total = sum(shares) or 1.0
        for op, s in zip(ops, shares, strict=True):
            frac = s / total if len(ops) > 1 else 1.0
            t = oc.time_s * rep * frac
            out.append(OpProjection(op.role, op.kind, op.count, "ps", t * 1e3, oc.bound,
                                    oc.basis, COMPONENT[op.kind],
                                    Work(t, t * oc.cores, oc.ddr_bytes * rep * frac)))
    return tuple(out)


def quant_fraction(wl: Workload, plan: Plan, op: OpProjection, offloaded: frozenset[str]
                   ) -> float:
    """Share of a quantization op's instances the plan pays for (see ``op_costs``)."""
    if plan.runtime == "native":
        return 1.0
    group = next((g for g in ("qkv", "o", "gateup", "down") if op.role == f"quant_{g}"), None)
    blocks = {layer.layer_index for layer in wl.layers
              if layer.name in offloaded and QUANT_GROUP.get(layer.role) == group}
    return len(blocks) / op.count if op.count else 0.0


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
    total += wl.config.kv_bytes_per_token(kv_bytes(scenario.kv_dtype)) * (
        scenario.context_tokens * scenario.sequences)
    return int(total + ctx.constants.runtime_bytes)


def baselines(wl: Workload, ctx: CostContext, scenario: Scenario) -> tuple[Baseline, ...]:
    """Every runtime with everything on the CPU; on board, whether its memory fits."""
    out = []
    empty = EngineDesign(1, 1)
    for runtime in wl.runtimes:  # torch only where a profile measured the host
        plan = Plan(f"cpu {runtime}", empty, frozenset(), runtime=runtime)
        p = project(wl, plan, ctx, scenario, with_baselines=False)
        mem = p.memory_bytes
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
    calls: dict[str, list[Layer]] = {}
    for layer in layers:
        key = layer.fuse_key if fuse and layer.ternary else layer.name
        calls.setdefault(key, []).append(layer)
    return calls


DEFAULT_SCENARIO = Scenario()


def project(wl: Workload, plan: Plan, ctx: CostContext, scenario: Scenario = DEFAULT_SCENARIO,
            *, with_baselines: bool = True, base: tuple[Baseline, ...] | None = None
            ) -> Projection:
    """Price ``plan`` for ``scenario`` (pure). ``base`` may be passed in to save time."""
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
    offloaded = [layer for layer in wl.layers if layer.name in plan.offload]
    infeasible: list[str] = []
    comp = dict.fromkeys(COMPONENTS, 0.0)
    items = dict.fromkeys(ITEMS, 0.0)
    calls: dict[str, CallCost] = {}
    call_of: dict[str, str] = {}
    rescore: list[tuple[str, Work]] = []
    #: gate/up calls: with a glue unit the shift scan reads their results out (see shift_scan)
    scanned: list[str] = []
    moved = Work()
    for key, group in group_calls(offloaded, plan.fuse).items():
        n = sum(layer.n for layer in group)
        streamed = sum(0 if layer.name in plan.resident else layer_weight_bytes(layer, design)
                       for layer in group)
        dense = None if group[0].ternary else design.head
        head = not group[0].ternary
        cc = call_cost(design, board, c, n=n, k=group[0].k, m=_linear_m(group[0], scenario),
                       weight_bytes=streamed, dense=dense,
                       launch_us=launch_us(board, c, plan.runtime))
        calls[key] = cc
        comp["head" if head else "ternary_pl"] += cc.stream_s * 1e3
        comp["head" if head else "handoff"] += cc.handoff_s * 1e3
        for item, ms in call_items(cc, head).items():
            items[item] += ms
        if head and not dense:
            stage2 = two_stage_work(group[0], plan.head_top_k, scenario, cpu, threads, c)
            comp["head"] += stage2.time_s * 1e3
            sel, res = head_stage2(group[0].n, group[0].k, plan.head_top_k, scenario.sequences,
                                   cpu, threads, c)
            items["head_topk"] += sel.time_s * 1e3
            items["head_rescore"] += res.time_s * 1e3
            rescore.append((group[0].name, stage2))
        for layer in group:
            call_of[layer.name] = key
        if {layer.role for layer in group} <= SCANNED_ROLES:
            scanned.append(key)
    rows = []
    for layer in wl.layers:
        lw = layer_cpu(wl, layer, plan.runtime, scenario, host, cpu, threads, c)
        cpu_ms = lw.time_s * 1e3
        if layer.name in call_of:
            key = call_of[layer.name]
            call = calls[key]
            placement = "fpga-resident" if layer.name in plan.resident else "fpga"
            extra = next((w for name, w in rescore if name == layer.name), Work())
            rows.append(LayerProjection(layer.name, layer.role, layer.n, layer.k, placement,
                                        cpu_ms, (call.time_s * layer.n / call.n
                                                 + extra.time_s) * 1e3, key, call.bound,
                                        work=extra))
        else:
            comp["ternary_cpu" if layer.ternary else "head"] += cpu_ms
            rows.append(LayerProjection(layer.name, layer.role, layer.n, layer.k, "cpu",
                                        cpu_ms, cpu_ms, work=lw))
    off = frozenset(plan.offload)
    ops = []
    for op in op_costs(wl, plan.runtime, scenario, host, cpu, threads, c):
        if plan.glue is not None and op.role in GLUE_OPS:
            op = OpProjection(op.role, op.kind, op.count, "pl", 0.0, "pl",
                              msg("basis.in_glue", "in the FFN glue unit"), op.component)
        elif plan.attention is not None and op.kind in ATTENTION_OPS:
            op = OpProjection(op.role, op.kind, op.count, "pl", 0.0, "pl",
                              msg("basis.in_attention", "in the attention unit"),
                              op.component)
        elif op.kind == "quant":
            frac = quant_fraction(wl, plan, op, off)
            w = op.work
            op = OpProjection(op.role, op.kind, op.count, op.device, op.time_ms * frac,
                              op.bound, op.basis if plan.runtime == "native" else
                              msg("basis.quant_paid", "{basis}; paid for {frac:.0%} of layers "
                                  "(inputs of offloaded Linears)", basis=op.basis, frac=frac),
                              op.component,
                              Work(w.time_s * frac, w.core_s * frac, w.ddr_bytes * frac))
        ops.append(op)
        comp[op.component] += op.time_ms
    if plan.glue is not None:
        gw = glue_work(plan.glue, wl, scenario.m * scenario.sequences, design.clock_mhz)
        ops.append(OpProjection("ffn_glue", "glue", wl.config.layers, "pl", gw.time_s * 1e3,
                                "pl", msg("basis.glue", "PL glue unit: {passes} passes x "
                                          "{cpe:g} cycles/element at {mhz:g} MHz",
                                          passes=plan.glue.passes,
                                          cpe=plan.glue.cycles_per_elem, mhz=design.clock_mhz),
                                "elementwise", gw))
        comp["elementwise"] += gw.time_s * 1e3
        items["ffn_glue"] += gw.time_s * 1e3
        from dse.model.cpu import cycles as kernel_cycles

        sw = glue_scan_work(wl, board, scenario, c)
        ops.append(OpProjection("shift_scan", "shift_scan", wl.config.layers, "ps",
                                sw.time_s * 1e3, "compute",
                                msg("basis.shift_scan_op", "the PS chooses the glue unit's "
                                    "fixed-point shifts: {cycles:g} cycles/element",
                                    cycles=round(kernel_cycles(cpu, c).shift_scan_per_elem,
                                                 4)),
                                "elementwise", sw))
        comp["elementwise"] += sw.time_s * 1e3
        items["shift_scan"] += sw.time_s * 1e3
        # the scan invalidates and reads the gate/up results itself: not in their hand-off
        if scanned:
            moved = scan_readout_work(wl, scenario.m * scenario.sequences, c)
            comp["handoff"] -= moved.time_s * 1e3
            items["sums_readout"] -= moved.time_s * 1e3
        ffn = {layer.name for layer in wl.layers if layer.role in ("gate_proj", "up_proj",
                                                                   "down_proj")}
        if not ffn <= off:
            infeasible.append(msg("infeasible.glue", "the FFN glue unit needs gate_proj, "
                                  "up_proj and down_proj of every layer on the engines"))
    if plan.attention is not None:
        aw = attention_work(plan.attention, design, wl, scenario, board, c, plan.runtime)
        ops.append(OpProjection("attention_unit", "attention", wl.config.layers, "pl",
                                aw.time_s * 1e3, "pl",
                                msg("basis.attention", "PL attention unit ({unit}): 2 calls "
                                    "per layer, {macs} MACs/clock at {mhz:g} MHz, the "
                                    "KV cache streamed at up to {gbs:.2f} GB/s; softmax on "
                                    "the PS", unit=plan.attention.label,
                                    macs=plan.attention.macs_per_clock, mhz=design.clock_mhz,
                                    gbs=board.ddr_bytes_per_s / 1e9), "attention", aw))
        comp["attention"] += aw.time_s * 1e3
        infeasible += plan.attention.violations(wl.config, scenario)
    # the calls' time, less the gate/up read-out a glue unit's shift scan does instead
    fpga_ms = (sum(call.time_s for call in calls.values()) - moved.time_s) * 1e3
    cpu_lin = sum(r.time_ms for r in rows if r.placement == "cpu")
    stage2_ms = sum(w.time_s for _, w in rescore) * 1e3
    plan_ms = fpga_ms + stage2_ms + cpu_lin + sum(o.time_ms for o in ops)
    # resources and fit
    resident_bytes = sum(layer_weight_bytes(layer, design) for layer in offloaded
                         if layer.name in plan.resident)
    if resident_bytes > design.resident_bytes:
        infeasible.append(msg("infeasible.resident", "resident weights {need:,} B exceed the "
                              "engine's on-chip buffer {have:,} B", need=resident_bytes,
                              have=design.resident_bytes))
    res = engine_resources(design, board, c) if offloaded else Resources()
    if plan.glue is not None:
        res = res + glue_resources(c)
    if plan.attention is not None:
        res = res + attention_resources(plan.attention, c)
    infeasible += [msg("infeasible.cap", "{what}", what=r) for r in res.overflow(board)]
    if offloaded and (err := link_limit_error(design, board)) is not None:
        infeasible.append(msg("infeasible.link", "{what}", what=err))
    mem = memory_bytes(wl, plan, ctx, scenario)
    if scenario.view == "on-board" and mem > board.ddr.capacity_bytes:
        infeasible.append(msg("infeasible.memory", "memory: plan needs {need:,.0f} MiB of DDR, "
                              "board has {have:,.0f} MiB", need=mem / 2**20,
                              have=board.ddr.capacity_bytes / 2**20))
    ddr_weight = sum(call.weight_bytes for call in calls.values())
    floor_ms = ddr_weight / (board.ddr.peak_bandwidth_gb_s * 1e9) * 1e3
    work = Work(-moved.time_s, -moved.core_s)
    for part in [*(call_work(cc) for cc in calls.values()), *(r.work for r in rows),
                 *(o.work for o in ops)]:
        work = work + part
    energy = None
    if board.power is not None:
        energy = energy_of(board.power, work, res, design.clock_mhz,
                           scenario.m * scenario.sequences)
    if with_baselines and base is None:
        base = baselines(wl, ctx, scenario)
    return Projection(
        plan=plan, board=board.name, scenario=scenario, calibration=ctx.calibration,
        cpu=cpu.name, threads=threads, layers=tuple(rows), ops=tuple(ops), calls=calls,
        components=comp, plan_ms=plan_ms, baselines=base or (), resources=res,
        utilization=res.utilization(board), memory_bytes=mem,
        memory_capacity_bytes=board.ddr.capacity_bytes, ddr_weight_bytes=ddr_weight,
        ddr_floor_ms=floor_ms, infeasible=tuple(infeasible),
        notes=_notes(wl, plan, scenario), work=work, energy=energy,
        items={k: v for k, v in items.items() if v})


def _notes(wl: Workload, plan: Plan, scenario: Scenario) -> tuple[str, ...]:
    """The workload's assumptions, plus the runtime's and the scenario's."""
    notes = [*wl.notes, f"PS runtime: {RUNTIME_TEXT[plan.runtime]}",
             f"KV cache {scenario.kv_dtype}"
             + (" (the plan's kv_dtype)" if plan.kv_dtype is not None else "")
             + f", context {scenario.context_tokens} tokens, {scenario.sequences} sequence(s)"]
    if scenario.phase == "prefill":
        notes.append(f"prefill of {scenario.m} tokens: attention over {scenario.m} x "
                     f"{scenario.context_tokens} causal pairs; the head scores only the last "
                     f"token; PyTorch Linears take max(measured per-call time, GEMM at "
                     f"host_gemm_efficiency of peak)")
    return tuple(notes)


__all__ = [
    "COMPONENTS",
    "DENSE_BYTES_PER_WEIGHT",
    "ITEMS",
    "VIEWS",
    "VIEW_TEXT",
    "Baseline",
    "CostContext",
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
    "project",
    "quant_fraction",
]
