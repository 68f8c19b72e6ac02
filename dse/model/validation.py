"""Validation as data: what was measured, what the model said before any calibration, which
component classes each measurement exercises and the regime it was measured in (pure).

Why: the model's error is not uniform. The engines' weight stream and the A53's attention are
within a few percent of measurement, other parts much less so, and some features of a plan (a
unit kind, a clock, a sequence count, a context) were never measured at all. A band on a
projected figure must come from those rows, class by class, and say where a plan leaves them.

A ``Row`` is one measurement (a published design's, bitnet.cpp's, or the RTL simulation's)
beside the model's figure for it, the model's figure split into the ``CLASSES`` it exercises
(``parts``), the ``regime`` it was measured in (board, context, sequences, units, clock, KV
format, ...) and, if the row set a constant of the model, which (``sets``: such a row is
listed but never used for a band nor counted as a check). The rows are package data
(dse/data/validation.json, written by bench/bench_validate.py), read at the edge
(``dse.validation_data``) and passed in.

``class_parts`` and ``regime_of`` describe a ``Projection`` in the same terms, so the rows and
any plan meet in one vocabulary (``dse.model.band`` turns them into bands).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dse.model.msg import Msg, msg

if TYPE_CHECKING:  # the rows' vocabulary loads without the projection (the i18n reads it)
    from dse.model.project import Plan, Projection

#: What a row's figure is, and how it scales with the time of its parts: ``time`` (ms or s,
#: the parts' sum), ``rate`` (tokens or bytes per second: the inverse of its parts' time),
#: ``power`` (W), ``energy`` (J: power times time), ``resource`` (LUT, FF, BRAM36, URAM),
#: ``cycles`` (busy cycles of a unit in RTL simulation).
FIGURES = ("time", "rate", "power", "energy", "resource", "cycles")
#: Where a row's measurement comes from.
ORIGINS = ("published", "bitnet.cpp", "sim")
#: The kind of error a figure's classes carry (an unmeasured class is no better than the
#: worst measured class of its kind).
KIND_OF_FIGURE = {"time": "time", "rate": "time", "energy": "time", "power": "power",
                  "resource": "resource", "cycles": "cycles"}

#: Regime features compared as a range (a value between the lowest and highest measured is
#: covered); every other feature is compared by value.
NUMERIC = ("context", "vectors", "m", "threads", "engines", "sequences")
#: Features that are a yes/no about the plan: covered only when no (never measured yes).
YES_NO = ("resident", "clock_beyond")
FEATURES = ("board", "phase", "context", "vectors", "m", "sequences", "threads", "runtime",
            "kv_dtype", "packing", "engines", "clock_mhz", "clock_supported_mhz",
            "clock_beyond", "attention", "glue", "glue_cycles_per_elem", "head", "resident")


@dataclass(frozen=True)
class ClassSpec:
    """A component class: the kind of error it carries, the regime features its error depends
    on, the classes whose rows also show what regime it was checked in (RTL simulation checks
    the engines' cycle count for packings the board never ran), and what to say when no row
    measures it at all."""

    kind: str
    features: tuple[str, ...]
    also: tuple[str, ...] = ()
    #: (message key, English template) when the class has no row at all; ``{value}`` is the
    #: regime's value of the feature the class is named by (its unit count), ``{what}`` the
    #: class's name.
    unmeasured: tuple[str, str] = ("band.class_unmeasured", "{what}: never measured")
    what: tuple[str, str] = ("", "")


#: Every class a projection's figures are split into (``class_parts``): its kind, the regime
#: features its error depends on, and its name (zh, en).
CLASSES: dict[str, ClassSpec] = {
    # the engines' weight stream (DDR- or compute-bound), per forward
    "pl.stream": ClassSpec("time", ("board", "packing", "engines", "vectors", "resident",
                                    "clock_beyond"), ("pl.engine_cycles",),
                           what=("引擎权重流", "engines' weight stream")),
    # the output head as two stages: the ternary copy on the engines, top-K on the PS
    "head.two_stage": ClassSpec("time", ("board", "engines", "sequences", "phase", "m"),
                                what=("两级输出头", "two-stage head")),
    "pl.head_unit": ClassSpec("time", ("board",),
                              unmeasured=("band.head_unit", "dense head unit: no measured "
                                          "design"),
                              what=("稠密输出头单元", "dense head unit")),
    # its rate: cycles a vector element takes (the published unit's 4, the search's 1 is
    # another design, never measured)
    "pl.glue": ClassSpec("time", ("board", "glue", "glue_cycles_per_elem", "clock_beyond", "m",
                                  "sequences"),
                         unmeasured=("band.glue", "glue unit count {value}: no measured design"),
                         what=("FFN 胶合单元", "FFN glue unit")),
    "pl.attention": ClassSpec("time", ("board", "attention", "clock_beyond", "context"),
                              ("pl.attention_cycles",),
                              unmeasured=("band.attention_unit", "attention unit count "
                                          "{value}: no measured design"),
                              what=("注意力单元", "attention unit")),
    # around the engines' calls: the activation loads and the run control (register
    # accesses, launches); the results' read-out (cache invalidation)
    "handoff.loads": ClassSpec("time", ("board", "runtime", "engines", "m", "sequences"),
                               what=("激活加载与运行控制", "activation loads and run control")),
    "handoff.readout": ClassSpec("time", ("board", "runtime", "engines", "m",
                                                   "sequences"),
                                 what=("结果读出", "results' read-out")),
    "ps.attention": ClassSpec("time", ("board", "kv_dtype", "context", "threads", "runtime",
                                        "m", "sequences"),
                              what=("PS 上的注意力", "attention on the PS")),
    "ps.ops": ClassSpec("time", ("board", "threads", "runtime", "m", "sequences"),
                        what=("PS 上的归一化、量化、RoPE、残差",
                              "norms, quantization, RoPE, residuals on the PS")),
    "ps.shift_scan": ClassSpec("time", ("board", "threads", "m", "sequences"),
                               what=("PS 上的移位扫描", "shift scan on the PS")),
    "ps.linear.native": ClassSpec("time", ("board", "threads", "phase", "m"),
                                  what=("PS 上的 Linear（原生运行时）",
                                        "Linears on the PS (native runtime)")),
    "ps.linear.torch": ClassSpec("time", ("board",),
                                 unmeasured=("band.torch", "PS runtime torch: never measured "
                                             "on a board"),
                                 what=("PS 上的 Linear（torch）", "Linears on the PS (torch)")),
    "other": ClassSpec("time", (), what=("其他", "other")),
    # the board's power model while a plan runs
    "board.power": ClassSpec("power", ("board", "runtime"),
                             what=("板卡功耗", "board power")),
    # resources by basis: synthesized and scaled to Vivado, memories by Vivado's inference
    # rules, published Vivado rows (as they are), estimated constants
    "res.synth.lut": ClassSpec("resource", (), what=("综合的 LUT", "synthesized LUT")),
    "res.synth.ff": ClassSpec("resource", (), what=("综合的 FF", "synthesized FF")),
    "res.rule.bram36": ClassSpec("resource", (), what=("推断的 BRAM", "inferred BRAM")),
    "res.rule.uram": ClassSpec("resource", (), what=("推断的 URAM", "inferred URAM")),
    "res.published": ClassSpec("resource", (), what=("已发表的 Vivado 行",
                                                     "published Vivado rows")),
    "res.estimated.lut": ClassSpec("resource", (), what=("估算的 LUT", "estimated LUT")),
    "res.estimated.ff": ClassSpec("resource", (), what=("估算的 FF", "estimated FF")),
    "res.estimated.bram36": ClassSpec("resource", (), what=("估算的 BRAM", "estimated BRAM")),
    "res.estimated.uram": ClassSpec("resource", (), what=("估算的 URAM", "estimated URAM")),
    # busy cycles in RTL simulation
    "pl.engine_cycles": ClassSpec("cycles", ("packing", "engines", "vectors"),
                                  what=("引擎周期", "engine cycles")),
    "pl.attention_cycles": ClassSpec("cycles", ("attention",),
                                     what=("注意力单元周期", "attention unit cycles")),
}


@dataclass(frozen=True)
class Row:
    """One validation row: a measurement beside the model's figure for it, before any
    calibration. ``residual`` is ``predicted / measured - 1`` (against a measured range, from
    its nearest end, 0 inside it); ``parts`` the predicted figure by class (ms for time, rate
    and energy rows, plus ``board.power`` in W for energy; W for power; the resource count;
    cycles); ``regime`` its features (``FEATURES``); ``sets``: the constant it set, if any."""

    id: str
    origin: str
    group: str
    what: str
    source: str
    figure: str
    unit: str
    measured: float
    predicted: float
    residual: float
    parts: dict[str, float]
    regime: dict[str, object] = field(default_factory=dict)
    measured_range: tuple[float, float] | None = None
    sets: str = ""

    @property
    def check(self) -> bool:
        """Whether the row checks the model (it set no constant)."""
        return not self.sets

    @property
    def single_decode(self) -> bool:
        """A row of one sequence decoding one token a forward."""
        r = self.regime
        return (r.get("phase") == "decode" and r.get("sequences", 1) == 1
                and r.get("vectors", 1) == 1 and self.figure in ("time", "rate", "energy",
                                                                 "power"))

    def contains(self, lo: float, hi: float) -> bool:
        """Whether ``lo..hi`` (the row's figure's band) holds the measurement (touches its
        range, for a measured range)."""
        if self.measured_range is not None:
            a, b = self.measured_range
            return hi >= a - 1e-12 and lo <= b + 1e-12
        return lo - 1e-9 * abs(self.measured) <= self.measured <= hi + 1e-9 * abs(
            self.measured)


def residual_of(measured: float, predicted: float,
                measured_range: tuple[float, float] | None = None) -> float:
    """``predicted / measured - 1``; against a measured range, from its nearest end (0 inside
    it). The one definition the bench writes and the loader checks."""
    if measured_range is not None:
        lo, hi = measured_range
        if lo <= predicted <= hi:
            return 0.0
        end = lo if predicted < lo else hi
        return predicted / end - 1.0
    return predicted / measured - 1.0


@dataclass(frozen=True)
class Validation:
    """The validation rows in force and where they came from (``path``, ``sha256``)."""

    rows: tuple[Row, ...]
    generated: str = ""
    path: str = ""
    sha256: str = ""

    def label(self) -> str:
        """``FILE, sha256 1a2b3c4d5e6f``: what reports and JSON name the rows by."""
        digest = f", sha256 {self.sha256[:12]}" if self.sha256 else ""
        return f"{self.path or 'validation rows'}{digest}"

    def checks(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.check)


# -- a projection in the rows' terms ---------------------------------------------------------

def head_class(plan: Plan, proj: Projection) -> str | None:
    """Where the projection's lm_head runs, as a class (None: on the CPU, with the Linears)."""
    on_pl = any(lp.role == "lm_head" and lp.placement != "cpu" for lp in proj.layers)
    if not on_pl:
        return None
    return "pl.head_unit" if plan.design.head else "head.two_stage"


def class_parts(proj: Projection) -> dict[str, float]:
    """The projection's time per forward by class, ms; the parts add up to ``plan_ms`` (what
    the breakdown cannot place is ``other``).

    The calls' weight stream is ``pl.stream``, their activation loads and run control
    ``handoff.loads``, their results' read-out ``handoff.readout`` (their PS rescale joins
    the PS's own float work, ``ps.ops``, as the published design's split counts it); the
    head is its own class on the PL, and a Linear of the runtime's where it stays on the
    CPU; every other part by its device: a PL unit's by kind (``pl.attention``), the PS's by
    component (attention, the shift scan, the rest); a credit of the calls' read-out (a unit
    reads the results itself) is in the read-out's item already."""
    plan = proj.plan
    comp, items = proj.components, proj.items
    out: dict[str, float] = {}

    def add(cls: str, ms: float) -> None:
        if ms:
            out[cls] = out.get(cls, 0.0) + ms

    linear = f"ps.linear.{plan.runtime}" if f"ps.linear.{plan.runtime}" in CLASSES else "other"
    add("pl.stream", comp.get("ternary_pl", 0.0))
    add(linear, comp.get("ternary_cpu", 0.0))
    add(head_class(plan, proj) or linear, comp.get("head", 0.0))
    add("handoff.loads", items.get("activation_loads", 0.0) + items.get("run_overhead", 0.0))
    add("handoff.readout", items.get("sums_readout", 0.0))
    add("ps.ops", items.get("rescale", 0.0))
    for o in proj.ops:
        if not o.time_ms:
            continue
        if o.device == "pl":
            cls = f"pl.{o.kind}" if f"pl.{o.kind}" in CLASSES else "other"
        elif o.device == "engines":
            continue  # a credit of the calls' read-out: in the items' sums_readout already
        elif o.component == "attention":
            cls = "ps.attention"
        elif o.item == "shift_scan":
            cls = "ps.shift_scan"
        else:
            cls = "ps.ops"
        add(cls, o.time_ms)
    rest = proj.plan_ms - sum(out.values())
    if abs(rest) > 1e-9 * max(1.0, abs(proj.plan_ms)):
        add("other", rest)
    return out


def regime_of(proj: Projection) -> dict[str, object]:
    """The projection's regime in the rows' features (``FEATURES``)."""
    plan, sc = proj.plan, proj.scenario
    d = plan.design
    offloaded = bool(plan.offload)
    ev = proj.evidence
    out: dict[str, object] = {
        "board": proj.board, "phase": sc.phase, "context": sc.context_tokens, "m": sc.m,
        "sequences": sc.sequences, "threads": proj.threads, "runtime": plan.runtime,
        "kv_dtype": sc.kv_dtype,
        "attention": plan.attention.count if plan.attention is not None else 0,
        "glue": plan.glue.count if plan.glue is not None else 0,
        "resident": bool(plan.resident), "head": "cpu"}
    if plan.glue is not None:
        out["glue_cycles_per_elem"] = float(plan.glue.cycles_per_elem)
    if offloaded:
        hc = head_class(plan, proj)
        out.update({"packing": d.packing, "engines": d.engines, "clock_mhz": float(d.clock_mhz),
                    "vectors": sc.m * sc.sequences,
                    "head": {"pl.head_unit": "dense", "head.two_stage": "two-stage"}.get(
                        hc or "", "cpu")})
        if ev is not None:
            out["clock_beyond"] = bool(ev.beyond)
            if ev.clock.mhz is not None:
                out["clock_supported_mhz"] = float(ev.clock.mhz)
    return out


def resource_parts(plan: Plan, board, c) -> dict[str, dict[str, float]]:
    """The plan's fabric per resource kind (lut, ff, bram36, uram) by basis class: the
    engines synthesized and scaled (``res.synth.*``) with their memories by Vivado's inference
    rules (``res.rule.*``), the infrastructure from published Vivado rows (``res.published``),
    every estimated part (a head unit, a resident buffer, engines no synthesis covers:
    ``res.estimated.*``); a unit by its own basis. Empty for a plan that offloads nothing."""
    from dse.model.engine import (
        _head_and_resident,
        engine_resources,
        synthesized_engine,
    )

    kinds = ("lut", "ff", "bram36", "uram")
    out: dict[str, dict[str, float]] = {k: {} for k in kinds}
    if not plan.offload:
        return {}
    design = plan.design

    def add(kind: str, cls: str, v: float) -> None:
        if v:
            out[kind][cls] = out[kind].get(cls, 0.0) + v

    def synth(kind: str) -> str:
        return f"res.synth.{kind}" if kind in ("lut", "ff") else f"res.rule.{kind}"

    total = engine_resources(design, board, c)
    one = synthesized_engine(design, c)
    if one is None:
        for k in kinds:
            add(k, f"res.estimated.{k}", getattr(total, k))
    else:
        extra = _head_and_resident(design, board, c)
        for k in kinds:
            eng = getattr(one, k) * design.engines
            add(k, synth(k), eng)
            add(k, f"res.estimated.{k}", getattr(extra, k))
            add(k, "res.published", getattr(total, k) - eng - getattr(extra, k))
    fab = c.fabric
    for u in plan.units:
        r = u.resources(c)
        for k in kinds:
            v = getattr(r, k)
            if fab is not None and u.kind == "attention" and fab.attention is not None:
                add(k, synth(k), v)
            elif fab is not None and u.kind == "glue":
                add(k, "res.published", v)
            else:
                add(k, f"res.estimated.{k}", v)
    return out


def class_what(cls: str, lang: str) -> str:
    """A class's name in ``lang``."""
    spec = CLASSES.get(cls)
    if spec is None:
        return cls
    zh, en = spec.what
    return (zh if lang == "zh" else en) or cls


def finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


__all__ = ["CLASSES", "FEATURES", "FIGURES", "KIND_OF_FIGURE", "NUMERIC", "ORIGINS", "YES_NO",
           "ClassSpec", "Msg", "Row", "Validation", "class_parts", "class_what", "finite",
           "head_class", "msg", "regime_of", "residual_of", "resource_parts"]
