"""What the model predicts for one measurement-log entry (pure).

One function, ``predict``, maps (entry, parameters in force) to the model's time for what the
entry measured, so a fit, a held-out check and a report all compare the same thing. Each kind
has its predictor: engine calls and layers through ``call_cost``; components of a token (the
engines' weight stream, the per-run overhead, the sums read back) as sums over the token's
engine calls; PS-side components (attention, norms/quantization/RoPE/residuals) and
bitnet.cpp runs through the operator model's projection (``dse.model.project``, native
runtime), the FFN glue unit through its PL unit (``units.glue.glue_work``) where the log
states one;
phases (a DDR read test, the PS's read bandwidth) through the board's roofline figures; a
two-stage head's sync + top-K and rescore through ``cpu.head_stage2`` and the stage-1 call's
hand-off, the glue unit's shift scan through ``units.glue.scan_work``; a prompt rate of a
design that drives engines (a phase ``prefill`` entry with the runs' ``prompts`` and its group
``m``) through ``dse.model.prompt`` (each prompt in groups, to its first token), on the
plan the log's configuration describes (``entry_plan``). What the model cannot price yet
(power) comes back as ``Prediction(None, why)``: reported, never dropped, never faked. New
devices add predictors here, entry kind by kind.

Times are compared, whatever the entry's unit: a rate (tok/s) is one over a time, a
bandwidth is bytes over a time, cycles are a time at the entry's clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from dse.errors import DseError
from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.cost import CallCost, call_cost, launch_us, layer_weight_bytes
from dse.model.engine import EngineDesign, engine_cycles
from dse.model.measurement_log import UNITS, LogEntry, MeasurementLog
from dse.model.workload import Workload

NOT_PRICED = "not priced by this model yet"


@dataclass(frozen=True)
class Prediction:
    """The model's time for an entry (s), or None with the reason it is not priced."""

    time_s: float | None
    why: str = ""
    #: (model, measured) stall-free engine cycles, where the entry has cycle counters.
    free_cycles: tuple[float, float] | None = None

    @property
    def priced(self) -> bool:
        return self.time_s is not None


def not_priced(why: str) -> Prediction:
    return Prediction(None, f"{NOT_PRICED}: {why}")


#: Designs already built from a configuration: id -> (the configuration, its design). A fit
#: predicts each entry hundreds of times; the configuration is kept so an id is never reused.
_DESIGNS: dict[int, tuple[object, EngineDesign]] = {}


def entry_design(e: LogEntry, where: str) -> EngineDesign:
    """The engine an entry was measured on (its configuration's ``engine``)."""
    hit = _DESIGNS.get(id(e.config))
    if hit is not None and hit[0] is e.config:
        return hit[1]
    design = _entry_design(e, where)
    if len(_DESIGNS) > 256:
        _DESIGNS.clear()
    _DESIGNS[id(e.config)] = (e.config, design)
    return design


def _entry_design(e: LogEntry, where: str) -> EngineDesign:
    eng = e.config.engine
    if not eng:
        raise DseError(f"{where}: entries ({e.id}): config.engine: expected the engine design "
                       f"the value was measured on (pe, simd, packing, ...)")
    fields = dict(eng)
    if "clock_mhz" not in fields and e.config.pl_clock_mhz:
        fields["clock_mhz"] = e.config.pl_clock_mhz
    return EngineDesign(**fields).validate(f"{where}: entries ({e.id}): config.engine")


def clock_hz(e: LogEntry, where: str) -> float:
    eng = e.config.engine or {}
    mhz = eng.get("clock_mhz") or e.config.pl_clock_mhz
    if not mhz:
        raise DseError(f"{where}: entries ({e.id}): config.pl_clock_mhz: expected the PL clock "
                       f"(a value in cycles needs it)")
    return float(mhz) * 1e6


def entry_bytes(e: LogEntry) -> float:
    """Bytes a bandwidth entry moved; without them, a nominal 1 GB (the ratio of predicted
    to measured bandwidth does not depend on it)."""
    return float(e.get("bytes") or e.get("weight_bytes") or 1e9)


def measured_s(e: LogEntry, where: str) -> float | None:
    """The entry as a time in seconds (None for power and energy)."""
    dim = e.dimension
    if dim == "time":
        return e.si
    if dim == "rate":
        return 1.0 / e.si
    if dim == "bandwidth":
        return entry_bytes(e) / e.si
    if dim == "cycles":
        return e.si / clock_hz(e, where)
    return None


def in_unit(e: LogEntry, time_s: float, where: str) -> float:
    """A time expressed in the entry's own unit (the inverse of ``measured_s``)."""
    factor = UNITS[e.unit][1]
    dim = e.dimension
    if dim == "time":
        return time_s / factor
    if dim == "rate":
        return 1.0 / time_s / factor
    if dim == "bandwidth":
        return entry_bytes(e) / time_s / factor
    return time_s * clock_hz(e, where)


def entry_launch_us(e: LogEntry, board: Board, c: CostConstants) -> float:
    """What launching one engine call cost the entry's PS software: a C driver's figure when
    the log says its runtime is dse's ``native``, else the board's (a Python PYNQ driver)."""
    return launch_us(board, c, e.config.ps_runtime or "torch")


def token_calls(wl: Workload, design: EngineDesign, board: Board, c: CostConstants,
                m: int = 1, launch: float | None = None) -> list[CallCost]:
    """The engine calls of one forward when every ternary Linear runs on the engine, layers
    sharing an input fused (q/k/v, gate/up): 4 calls per decoder layer (each call shape
    priced once: the 30 layers' q/k/v calls cost the same)."""
    from dse.model.project import group_calls

    groups = group_calls([layer for layer in wl.layers if layer.ternary], fuse=True)
    priced: dict[tuple[int, int, int], CallCost] = {}
    out = []
    for g in groups.values():
        shape = (sum(la.n for la in g), g[0].k, sum(layer_weight_bytes(la, design) for la in g))
        if shape not in priced:
            priced[shape] = call_cost(design, board, c, n=shape[0], k=shape[1], m=m,
                                      weight_bytes=shape[2], launch_us=launch)
        out.append(priced[shape])
    return out


def _token_calls(e: LogEntry, wl: Workload, design: EngineDesign, board: Board,
                 c: CostConstants, m: int, memo: dict | None) -> list[CallCost]:
    """``token_calls`` at the entry's launch cost, shared through ``memo``."""
    launch = entry_launch_us(e, board, c)
    key = ("token_calls", design, m, launch)
    if memo is not None and key in memo:
        return memo[key]
    calls = token_calls(wl, design, board, c, m, launch)
    if memo is not None:
        memo[key] = calls
    return calls


def _stream_s(cc: CallCost) -> float:
    """The stream part of a call: the engine, its DDR reads and its streams overlapped, plus
    its runs' burst starts (``CallCost.stream_s``)."""
    return cc.stream_s


#: Components of a token priced as sums over the token's engine calls (``cost.handoff``):
#: the weight stream, everything outside the weight bursts (activation loads and run control),
#: the activation loads alone, and the results' read-out (cache invalidation).
PRICED_COMPONENTS = ("weight_stream", "run_overhead", "sums_readout", "activation_loads",
                     "head_stream")

#: Components of the two-stage head's stage 2 and the glue unit's PS share.
HEAD_COMPONENTS = ("head_sync_topk", "head_rescore")


#: Components of a token on the PS that the operator model prices (``Projection.components``).
PS_COMPONENTS = ("attention", "norms_quant_rope_residual")

#: The fitted parameters the operators' parts of a token (``project.operator_components``)
#: read: the PS's memory bandwidth and the native runtime's per-operator costs, plus the
#: cache maintenance the shift scan does itself. The others (the DDR's efficiency for the PL,
#: the pipeline's latency, the per-call, burst, register-access and top-k costs) price the
#: engine calls and the head, not these operators; ``tests/test_fit.py`` perturbs each of
#: them and holds the parts unchanged.
OPERATOR_PARAMS = ("ps_memory_bandwidth_gb_s", "native_op_overhead_us",
                   "native_attn_layer_overhead_us", "native_shift_scan_cycles_per_elem",
                   "cache_maint_bytes_per_s")

#: Within one fit (``dse.model.fit.fit_log``: one workload, one board and its constants, the
#: fitted parameters varying), the operators' parts of a token priced once per plan, scenario
#: and values of ``OPERATOR_PARAMS``: a finite-difference column of a parameter that does not
#: reach them reuses them (about half the operator pricing of the shipped KV260 fit).
_OPERATOR_MEMO: ContextVar[dict | None] = ContextVar("dse_operator_memo", default=None)


@contextmanager
def shared_operator_parts() -> Iterator[None]:
    """Share the operators' parts of a token across parameter sets for the enclosed fit."""
    token = _OPERATOR_MEMO.set({})
    try:
        yield
    finally:
        _OPERATOR_MEMO.reset(token)


def _ps_component(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str,
                  memo: dict | None = None) -> Prediction:
    """A PS-side component of a token with every ternary Linear on the entry's engine: the
    operator model's time for it (``dse.model.project``, the ``native`` runtime's kernels)."""
    from dse.model.ops import KV_DTYPES
    from dse.model.project import Plan
    from dse.model.scenario import Scenario

    context = e.get("context")
    if context is None:
        raise DseError(f"{where}: entries ({e.id}): context: expected the tokens of context "
                       f"of the measured token (attention is priced at its context)")
    kv = e.config.kv_dtype or "fp16"
    if kv not in KV_DTYPES:
        raise DseError(f"{where}: entries ({e.id}): config.kv_dtype: expected one of "
                       f"{', '.join(KV_DTYPES)}, got {kv!r}")
    design = entry_design(e, where)
    offload = frozenset(layer.name for layer in wl.layers if layer.ternary)
    sc = Scenario("on-board", "decode", 1, context, kv, 1, e.config.threads)
    # the design's glue unit, where the log states one, takes its element-wise work off the PS
    glue = _glue(e)
    plan = Plan("component", design, offload, runtime="native",
                units=() if glue is None else (glue,))
    # the operators' parts of the token (``operator_components``: what ``project`` sums for
    # them, without pricing the calls), shared by the entries of one scenario
    key = ("components", plan, sc)
    if memo is None or key not in memo:
        shared = _OPERATOR_MEMO.get()
        skey = None
        if shared is not None:
            from dse.model.calibration import default_value

            skey = (key, tuple(default_value(p, board, c) for p in OPERATOR_PARAMS))
        comp = None if shared is None else shared.get(skey)
        if comp is None:
            from dse.model.project import operator_components

            try:
                comp = operator_components(wl, plan, _context(board, c), sc)
            except DseError as exc:
                raise DseError(f"{where}: entries ({e.id}): {exc}") from None
            if shared is not None:
                shared[skey] = comp
        if memo is not None:
            memo[key] = comp
    else:
        comp = memo[key]
    extra = 0.0
    if e.what == "norms_quant_rope_residual":
        # the results' int32 -> float scaling is done by the norms/residual code on the PS
        # (the published design's split counts it there; bench/bench_validate.py compares it
        # so): the calls' rescale, as the projection's items sum it
        calls = _token_calls(e, wl, design, board, c, 1, memo)
        extra = sum(cc.rescale_s * 1e3 for cc in calls)
    return Prediction((comp[e.what] + extra) * 1e-3)


def _glue(e: LogEntry):
    """The log's FFN glue unit as the model's ``GlueUnit`` (None without one)."""
    from dse.model.units import GlueUnit

    g = e.config.glue
    return None if not g else GlueUnit(g["passes"], float(g["cycles_per_elem"]))


def _project(e: LogEntry, wl: Workload, plan, board: Board, c: CostConstants, sc, where: str,
             memo: dict | None = None):
    """``project`` for an entry; a scenario the model cannot run names the log and entry.
    ``memo`` (one per set of parameters in force): entries that price the same plan in the
    same scenario share one projection (a log's PS components of one token)."""
    from dse.model.project import project

    key = ("project", plan, sc)
    if memo is not None and key in memo:
        return memo[key]
    try:
        p = project(wl, plan, _context(board, c), sc, with_baselines=False)
    except DseError as exc:
        raise DseError(f"{where}: entries ({e.id}): {exc}") from None
    if memo is not None:
        memo[key] = p
    return p


def _context(board: Board, c: CostConstants):
    """A cost context holding exactly the board and constants in force (a fit's trial)."""
    from dse.model.project import CostContext

    return CostContext(board, c, "fit")


def _head_call(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str
               ) -> CallCost:
    """The two-stage head's stage-1 call on the entry's engine (the workload's head)."""
    head = next(la for la in wl.layers if not la.ternary)
    design = entry_design(e, where)
    return call_cost(design, board, c, n=head.n, k=head.k, m=1,
                     weight_bytes=design.packing_spec.matrix_bytes(head.n, head.k),
                     launch_us=entry_launch_us(e, board, c))


def _ps_spec(e: LogEntry, wl: Workload, board: Board):
    from dse.model.cpu import CpuSpec

    cpu = CpuSpec.of_board(board)
    return cpu, e.config.threads or cpu.cores


def _head_part(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str
               ) -> Prediction:
    """Stage 2 of a two-stage head (``cpu.head_stage2``): its sync + top-K (with the stage-1
    call's hand-off: activation load, run control, the sums read out) or its rescore."""
    from dse.model.cpu import head_stage2

    top_k = e.get("top_k") or 256
    head = next(la for la in wl.layers if not la.ternary)
    cpu, threads = _ps_spec(e, wl, board)
    sel, res = head_stage2(head.n, head.k, top_k, 1, cpu, threads, c)
    if e.what == "head_rescore":
        return Prediction(res.time_s)
    return Prediction(sel.time_s + _head_call(e, wl, board, c, where).handoff_s)


def _shift_scan(e: LogEntry, wl: Workload, board: Board, c: CostConstants) -> Prediction:
    """The PS's shift scan for the log's glue unit (``units.glue.scan_work``)."""
    from dse.model.units.glue import scan_work

    cpu, threads = _ps_spec(e, wl, board)
    return Prediction(scan_work(wl, e.get("m") or 1, cpu, threads, c).time_s)


def _component(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str,
               memo: dict | None = None) -> Prediction:
    if e.what == "head_stream":
        return _call(e, board, c, where, span="busy")
    if e.what in HEAD_COMPONENTS and e.device == "ps":
        return _head_part(e, wl, board, c, where)
    if e.what == "shift_scan" and e.device == "ps" and e.config.glue:
        return _shift_scan(e, wl, board, c)
    if e.what in PS_COMPONENTS and e.device == "ps":
        return _ps_component(e, wl, board, c, where, memo)
    if e.what == "ffn_glue" and e.device == "pl" and e.config.glue:
        from dse.model.units.glue import glue_work

        return Prediction(glue_work(_glue(e), wl, e.get("m") or 1,
                                    entry_design(e, where).clock_mhz).time_s)
    if e.what not in PRICED_COMPONENTS:
        return not_priced(f"component {e.what!r} on the {e.device.upper()} has no unit in "
                          f"the model yet")
    design = entry_design(e, where)
    m = e.get("m") or 1
    calls = _token_calls(e, wl, design, board, c, m, memo)
    if e.get("calls") is not None and e.get("calls") != len(calls):
        raise DseError(f"{where}: entries ({e.id}): calls: expected {len(calls)} (the engine "
                       f"calls of one forward of {wl.model} with fused q/k/v and gate/up), "
                       f"got {e.get('calls')}")
    if e.what == "weight_stream":
        return Prediction(sum(_stream_s(cc) for cc in calls))
    if e.what == "run_overhead":
        return Prediction(sum(cc.act_s + cc.overhead_s for cc in calls))
    if e.what == "activation_loads":
        return Prediction(sum(cc.act_s for cc in calls))
    # with a glue unit the shift scan reads the gate/up results out, not their hand-off
    from dse.model.units.glue import scan_readout_work

    scanned = scan_readout_work(wl, m, c).time_s if e.config.glue is not None else 0.0
    return Prediction(sum(cc.readout_s for cc in calls) - scanned)


def _call(e: LogEntry, board: Board, c: CostConstants, where: str, span: str | None = None
          ) -> Prediction:
    n, k = e.get("n"), e.get("k")
    if n is None or k is None:
        raise DseError(f"{where}: entries ({e.id}): n: expected the call's N and K (n, k)")
    design = entry_design(e, where)
    m = e.get("m") or 1
    wbytes = e.get("weight_bytes")
    if wbytes is None:
        wbytes = design.packing_spec.matrix_bytes(n, k)
    cc = call_cost(design, board, c, n=n, k=k, m=m, weight_bytes=wbytes,
                   launch_us=entry_launch_us(e, board, c))
    per = (_stream_s(cc) if (span or e.span) == "busy" else cc.time_s) * (e.get("calls") or 1)
    free = None
    if e.get("busy_cycles") is not None and e.get("stall_cycles") is not None:
        rows = math.ceil(n / design.engines)
        model = (engine_cycles(rows, k, m, design.pe, design.simd, design.vectors,
                               design.stream_bits // 8, 0, design.vectors_per_clock)
                 + math.ceil(m / design.vectors) * c.pipeline_latency_cycles)
        free = (float(model), float(max(1, e.get("busy_cycles") - e.get("stall_cycles"))))
    return Prediction(per, free_cycles=free)


def _phase(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str,
           memo: dict | None = None) -> Prediction:
    nbytes = entry_bytes(e)
    if e.what == "ddr_read":
        eng = e.config.engine
        clock = clock_hz(e, where)
        ports = board.link.hp_ports * board.link.port_width_bits / 8
        width = ports if not eng else min(ports, (eng.get("engines") or 1)
                                          * (eng.get("stream_bits") or 128) / 8)
        rate = min(board.ddr_bytes_per_s, width * clock * c.mm2s_efficiency)
        return Prediction(nbytes / rate)
    if e.what == "ps_read":
        return Prediction(nbytes / (board.ps_cpu.memory_bandwidth_gb_s * 1e9))
    runtime = (e.config.runtime or "").lower()
    if e.what in ("decode", "prefill") and runtime.startswith("bitnet.cpp"):
        return _cpu_only(e, wl, board, c, where, memo)
    if e.what == "prefill" and e.config.engine and e.prompts:
        return _prompt_rate(e, wl, board, c, where, memo)
    return not_priced(f"phase {e.what!r} on runtime {e.config.runtime or '?'}")


def entry_plan(e: LogEntry, wl: Workload, where: str):
    """The plan an entry's configuration describes: every ternary Linear on its engine (q/k/v
    and gate/up fused), the head two-stage on the engines where ``config.head`` says so, its
    glue unit where it states one, the ``native`` runtime, the entry's prompt group (``m``)."""
    from dse.model.project import Plan

    design = entry_design(e, where)
    head = e.config.head == "two-stage"
    offload = frozenset(la.name for la in wl.layers if la.ternary or head)
    glue = _glue(e)
    m = e.get("m") or design.vectors
    if m > design.vectors:
        raise DseError(f"{where}: entries ({e.id}): m: expected a prompt group of at most "
                       f"config.engine.vectors ({design.vectors}), got {m}")
    return Plan(f"log {e.id}", design, offload, runtime="native",
                units=() if glue is None else (glue,), prompt_group=m)


def _prompt_rate(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str,
                 memo: dict | None = None) -> Prediction:
    """A prompt rate over the entry's runs (``prompts``): each prompt in groups of ``m``
    positions to its first token (``dse.model.prompt``), the rate their tokens over their
    summed times, as the published runtime reports it; seconds per prompt token."""
    from dse.model.prompt import prompt_scenarios

    plan = entry_plan(e, wl, where)
    kv = e.config.kv_dtype or "fp16"
    memo = {} if memo is None else memo  # prompts of one length share their forwards
    total_s = 0.0
    for prompt in e.prompts:
        if prompt > wl.config.max_positions:
            raise DseError(f"{where}: entries ({e.id}): prompts: expected prompts of at most "
                           f"{wl.config.max_positions} tokens (the model's context), got "
                           f"{prompt}")
        for sc, w in prompt_scenarios(prompt, plan.prompt_group, kv_dtype=kv,
                                      threads=e.config.threads):
            if w:
                total_s += w * _project(e, wl, plan, board, c, sc, where, memo).plan_ms * 1e-3
    return Prediction(total_s / sum(e.prompts))


def _cpu_only(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str,
              memo: dict | None = None) -> Prediction:
    """A bitnet.cpp run: the model's whole token on the PS with its ``native`` runtime."""
    from dse.model.project import Plan
    from dse.model.scenario import Scenario

    m = e.get("m") or 1
    context = e.get("context")
    if context is None:
        raise DseError(f"{where}: entries ({e.id}): context: expected the tokens of context "
                       f"the run attended over (a CPU token is priced at its context)")
    if e.what == "decode" and m != 1:
        raise DseError(f"{where}: entries ({e.id}): m: expected 1 for decode, got {m}")
    sc = Scenario("on-board", e.what, m, context, e.config.kv_dtype or "fp16", 1,
                  e.config.threads)
    plan = Plan("cpu", EngineDesign(1, 1), frozenset(), runtime="native")
    p = _project(e, wl, plan, board, c, sc, where, memo)
    return Prediction(p.plan_ms * 1e-3 / (m if e.dimension == "rate" else 1))


def predict(e: LogEntry, wl: Workload, board: Board, c: CostConstants, where: str,
            memo: dict | None = None) -> Prediction:
    """The model's time for what ``e`` measured, with ``board`` and ``c`` in force.

    ``memo``: a dict shared by the predictions of one set of parameters (a fit's residual
    evaluation), so entries of one token share its engine calls and projections; never
    shared across parameters (the values it holds are theirs)."""
    if e.dimension in ("power", "energy"):
        return not_priced("power and energy (no energy model yet)")
    if e.kind == "component":
        return _component(e, wl, board, c, where, memo)
    if e.kind == "phase":
        return _phase(e, wl, board, c, where, memo)
    if e.device != "pl":
        return not_priced(f"{e.kind} on the {e.device.upper()} (runtime "
                          f"{e.config.runtime or '?'}): the model has no device for it yet")
    return _call(e, board, c, where)


def children(log: MeasurementLog, entry_id: str) -> list[LogEntry]:
    """Entries that are parts of ``entry_id`` (a token's split into components)."""
    return [e for e in log.entries if e.part_of == entry_id]
