"""Fabric from evidence: synthesized unit resources, the Yosys-to-Vivado relation, the
infrastructure a plan instantiates, and the memories every unit's RTL infers.

The data (``Fabric``) is loaded at the edge (``dse.fabric_data``: dse/data/synth/*.json and
dse/data/fabric.yaml, each figure with its tool or its source) and carried by the constants
in force (``CostConstants.fabric``); everything here is pure. Without it the model falls back
to the estimated constants of ``dse.model.constants`` and labels its figures "estimated".

Memories are counted the way Vivado infers them from the RTL's parameters (UG573/UG574
geometry): block RAM in the fewest RAMB18/RAMB36 aspect ratios (a tile is one RAMB36 or two
RAMB18), UltraRAM as 4K x 72 blocks, LUT RAM as RAM32M16 (14 bits x 32 per 8 LUTs) or RAM64M8
(7 bits x 64 per 8 LUTs). ``unit_memories`` applies them to each unit's RTL;
bench/bench_synth.py checks them against Yosys's own mapping at every synthesized point.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

#: RAMB18E2 simple-dual-port aspect ratios (width, depth) and RAMB36E2's (UG573 tables 1-3,
#: 1-4): a RAMB36 tile holds one RAMB36 or two RAMB18.
RAMB18_SHAPES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
RAMB36_SHAPES = ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384),
                 (1, 32768))
#: A memory at most this deep with no ram_style goes to LUT RAM (Vivado's default for
#: shallow memories; UG901 "RAM HDL Coding Techniques").
LUTRAM_MAX_DEPTH = 64


def bram_tiles(width: int, depth: int) -> float:
    """Block RAM tiles (RAMB36 = 1, RAMB18 = 0.5) for a width x depth memory: the cheapest
    single aspect ratio, as Vivado picks for one inferred memory."""
    if width <= 0 or depth <= 0:
        return 0.0
    r18 = min(math.ceil(width / w) * math.ceil(depth / d) for w, d in RAMB18_SHAPES)
    r36 = min(math.ceil(width / w) * math.ceil(depth / d) for w, d in RAMB36_SHAPES)
    return min(r18 / 2, float(r36))


def uram_blocks(width: int, depth: int) -> int:
    """URAM288 blocks (4,096 x 72) for a width x depth memory."""
    return math.ceil(width / 72) * math.ceil(depth / 4096) if width > 0 and depth > 0 else 0


def lutram_luts(width: int, depth: int) -> int:
    """LUTs of a 1-write/1-read LUT RAM: RAM32M16 (14 bits x 32 per 8 LUTs) up to 32 deep,
    RAM64M8 (7 bits x 64 per 8 LUTs) beyond, in 64-deep slices."""
    if width <= 0 or depth <= 1:
        return 0
    if depth <= 32:
        return 8 * math.ceil(width / 14)
    return 8 * math.ceil(width / 7) * math.ceil(depth / 64)


def _clog2(x: int) -> int:
    return max(0, math.ceil(math.log2(x))) if x > 1 else 0


@functools.lru_cache(maxsize=1024)
def actbuf_geometry(pe: int, simd: int, packing: int) -> tuple[int, int, int]:
    """(R bytes a beat, NB banks, NS window starts) of tgemv_actbuf for an engine shape: its
    localparams restated (RBYTES = W/8, G = gcd(SIMD, R), NB the power of two >= the rows a
    window can touch, NS = NB x R/G)."""
    rb = (8 * simd) // 5 if packing else 2 * simd
    r = pe * rb // 8
    g = math.gcd(simd, r)
    nbmin = (r - g + simd + r - 1) // r
    nb = 1 << _clog2(nbmin)
    return r, nb, nb * (r // g)


def engine_memories(pe: int, simd: int, packing: int, vmax: int, kmax: int,
                    out_depth: int = 32) -> dict[str, float]:
    """The memories overlays/rtl/ternary_gemv.v infers (its localparams restated): the
    activation buffer (tgemv_actbuf: NB banks of a beat x BD rows, ram_style block), the
    accumulators (32*PE x VMAX, LUT RAM; registers when VMAX = 1) and the result FIFO
    ((32*PE + 1) x OUT_DEPTH, LUT RAM)."""
    return dict(_engine_memories(pe, simd, packing, vmax, kmax, out_depth))


@functools.lru_cache(maxsize=4096)
def _engine_memories(pe: int, simd: int, packing: int, vmax: int, kmax: int,
                     out_depth: int) -> tuple[tuple[str, float], ...]:
    """``engine_memories`` once per shape (the search asks for the same few thousands of
    times), as items so the cached value cannot be changed by a caller."""
    r, nb, _ = actbuf_geometry(pe, simd, packing)
    abmax = math.ceil(kmax / r)
    bd = (vmax * abmax + nb - 1) // nb + 1
    bram = nb * bram_tiles(8 * r, bd)
    lutram = (lutram_luts(32 * pe, vmax) if vmax > 1 else 0) + lutram_luts(32 * pe + 1,
                                                                            out_depth)
    return (("bram36", bram), ("uram", 0), ("lut_ram", lutram))


def attention_memories(g: int, d: int, hmax: int, tmax: int, out_depth: int = 32
                       ) -> dict[str, float]:
    """The memories overlays/rtl/kv_attn.v infers: G q banks (128 x HMAX*D/16, no ram_style:
    LUT RAM when shallow, else block RAM), the p block (128 x TMAX*HMAX*G/8, block), the
    accumulator (512*G x HMAX*D/16, distributed) and the result FIFO ((32*G + 1) x OUT_DEPTH)."""
    qrows = hmax * d // 16
    # TMAX*HMAX*G/8 rows: 8/G groups of p a 128-bit row (exact for the RTL's G of 1, 2, 4, 8;
    # a what-if G beyond 8, a model's wider GQA group, takes G/8 rows a position and head)
    prows = math.ceil(tmax * hmax * g / 8)
    bram = bram_tiles(128, prows)
    lutram = lutram_luts(512 * g, qrows) + lutram_luts(32 * g + 1, out_depth)
    if qrows <= LUTRAM_MAX_DEPTH:
        lutram += g * lutram_luts(128, qrows)
    else:
        bram += g * bram_tiles(128, qrows)
    return {"bram36": bram, "uram": 0, "lut_ram": lutram}


def unit_memories(unit: str, params: dict[str, int]) -> dict[str, float]:
    """Memories of one synthesized point (bench/bench_synth.py's parameter names)."""
    p = params
    if unit == "engine":
        return engine_memories(p["PE"], p["SIMD"], p["PACKING"], p["VMAX"], p["KMAX"],
                               p.get("OUT_DEPTH", 32))
    if unit == "attention":
        return attention_memories(p["G"], p["D"], p["HMAX"], p["TMAX"], p.get("OUT_DEPTH", 32))
    raise ValueError(f"unit {unit!r}: expected engine or attention")


@dataclass(frozen=True)
class LinearFit:
    """``value = sum(coef_i * x_i)`` over named features, with its largest residual."""

    features: tuple[str, ...]
    coefs: tuple[float, ...]
    max_residual: float

    def __call__(self, x: dict[str, float]) -> float:
        return sum(c * x[f] for f, c in zip(self.features, self.coefs, strict=True))


# -- the evidence, as loaded (dse.fabric_data) ---------------------------------------------

@dataclass(frozen=True)
class IpBlock:
    """One AMD IP instance as Vivado reports it (post-route), with its configuration."""

    name: str
    lut: float
    ff: float
    bram36: float
    config: str
    source: str


@dataclass(frozen=True)
class Flow:
    """What a Vivado flow instantiates around its units: IP names per engine, per attention
    unit, per unit of its own kind (the glue's attachment) and once."""

    name: str
    per_engine: tuple[str, ...] = ()
    per_attention: tuple[str, ...] = ()
    per_unit: tuple[str, ...] = ()
    once: tuple[str, ...] = ()
    differs: str = ""


@dataclass(frozen=True)
class Closure:
    """A published timing closure: a design met ``clock_mhz`` with ``wns_ns`` of slack at
    ``lut_util`` of the part's LUTs (None: not published), covering the unit ``kinds`` it
    holds; ``logic_levels_yosys`` its deepest unit's logic depth synthesized as ours are."""

    design: str
    family: str
    speed_grade: str
    clock_mhz: float
    wns_ns: float | None
    lut_util: float | None
    kinds: tuple[str, ...]
    logic_levels_yosys: int
    critical: str
    source: str
    #: How many units of each kind the closed design held ((kind, count); a kind absent: no
    #: limit published).
    counts: tuple[tuple[str, int], ...] = ()
    #: Delay of one logic level of its synthesized depth on its critical path, ns: the path's
    #: LUT stages (data path less the RAM's clock-to-out) over ``logic_levels_yosys``.
    level_ns: float | None = None


@dataclass(frozen=True)
class VivadoRow:
    design: str
    instance: str
    lut: float
    ff: float
    bram36: float
    uram: float


@dataclass(frozen=True)
class Relation:
    """Vivado / Yosys per resource, fitted on one design's rows of a module, with its spread
    (the lowest and highest ratio of those rows) and the rows it is checked on."""

    module: str
    tool: str
    yosys: tuple[float, float, float, float]      # lut, ff, bram36, uram
    lut: float
    ff: float
    lut_range: tuple[float, float]
    ff_range: tuple[float, float]
    fit_design: str
    check_design: str
    rows: tuple[VivadoRow, ...]

    def check_errors(self) -> dict[str, float]:
        """Mean relative error of the relation on the rows it was not fitted to."""
        rows = [r for r in self.rows if r.design == self.check_design]
        out = {}
        for i, k in enumerate(("lut", "ff")):
            pred = self.yosys[i] * getattr(self, k)
            meas = sum(getattr(r, k) for r in rows) / len(rows)
            out[k] = pred / meas - 1
        return out


def relation_from_rows(module: str, tool: str, yosys: tuple[float, float, float, float],
                       rows: tuple[VivadoRow, ...], fit: str, check: str) -> Relation:
    """The ratios of the mean ``fit`` rows to Yosys's counts, with their spread."""
    fitted = [r for r in rows if r.design == fit]
    if not fitted or not any(r.design == check for r in rows):
        raise ValueError(f"relation: rows of both {fit!r} and {check!r} are needed")
    ratios = {k: [getattr(r, k) / yosys[i] for r in fitted]
              for i, k in enumerate(("lut", "ff"))}
    return Relation(module, tool, yosys,
                    lut=sum(r.lut for r in fitted) / len(fitted) / yosys[0],
                    ff=sum(r.ff for r in fitted) / len(fitted) / yosys[1],
                    lut_range=(min(ratios["lut"]), max(ratios["lut"])),
                    ff_range=(min(ratios["ff"]), max(ratios["ff"])),
                    fit_design=fit, check_design=check, rows=rows)


@dataclass(frozen=True)
class SynthPoint:
    """One synthesized point of a unit (bench/bench_synth.py)."""

    params: tuple[tuple[str, int], ...]
    lut_logic: float
    lut_srl: float
    lut_ram: float
    ff: float
    bram36: float
    uram: float
    dsp: float
    logic_levels: int

    def p(self, name: str) -> int:
        return dict(self.params)[name]


@dataclass(frozen=True)
class UnitSynth:
    """A unit's synthesized points and the tool that made them."""

    unit: str
    tool: str
    date: str
    points: tuple[SynthPoint, ...]

    @functools.cached_property
    def logic_levels(self) -> int:
        """The deepest synthesized point's logic levels (once: the search asks per design)."""
        return max(p.logic_levels for p in self.points)

    @functools.cached_property
    def memo(self) -> dict[tuple, object]:
        """What ``engine_logic``, ``attention_logic`` (and ``dse.model.evidence.unit_kinds``)
        computed from these points, per shape: the search asks for the same shapes thousands
        of times, and hashing the points for ``_fit``'s cache each time cost more than the
        fit. Not a field (equality, hash and repr stay the points'); the points are frozen,
        so it never goes stale."""
        return {}


@dataclass(frozen=True)
class EngineRtl:
    """An engine RTL besides ours: the one shape it has, the flow that builds it, its
    synthesized counts (Yosys; the relation's module)."""

    name: str
    pe: int
    simd: int
    packing: str
    vectors: int
    flow: str


@dataclass(frozen=True)
class Fabric:
    """Everything the fabric and clock of a plan are priced from (see the module docstring)."""

    relation: Relation
    ip: tuple[IpBlock, ...]
    flows: tuple[Flow, ...]
    engines: tuple[EngineRtl, ...]
    closures: tuple[Closure, ...]
    grade_rank: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    step_mhz: float
    engine: UnitSynth | None = None
    attention: UnitSynth | None = None
    path: str = ""
    #: (family, family) pairs whose programmable logic is the same (rfsoc -> zynqmp).
    same_fabric: tuple[tuple[str, str], ...] = ()

    @functools.cached_property
    def memo(self) -> dict[tuple, tuple]:
        """``infrastructure``'s answers, per flow and unit counts: the search asks for the
        same few of them for every design. Not a field; the evidence is frozen."""
        return {}

    def ip_block(self, name: str) -> IpBlock:
        return next(b for b in self.ip if b.name == name)

    def flow(self, name: str) -> Flow:
        return next(f for f in self.flows if f.name == name)

    def engine_rtl(self, name: str) -> EngineRtl | None:
        return next((e for e in self.engines if e.name == name), None)

    def rank(self, family: str, grade: str) -> int | None:
        return self._ranks.get(family, {}).get(grade)

    @functools.cached_property
    def _ranks(self) -> dict[str, dict[str, int]]:
        """``grade_rank`` as nested dicts, built once (the search asks thousands of times)."""
        return {family: dict(grades) for family, grades in dict(self.grade_rank).items()}

    @functools.cached_property
    def closure_peers(self) -> tuple[tuple[Closure, ...], ...]:
        """For each closure (same order), the closures whose slack its derating interpolates
        between: same family and clock, a unit kind in common (``_closure_fmax``)."""
        return tuple(tuple(p for p in self.closures if p.family == c.family
                           and p.clock_mhz == c.clock_mhz and set(p.kinds) & set(c.kinds))
                     for c in self.closures)


# -- pricing from the evidence (pure) ------------------------------------------------------

def _features(d: dict[str, int]) -> dict[str, float]:
    """The features the fits use, from a point's RTL parameters: the engine's lanes (PE x
    SIMD), the base-3 lanes (their decoders), PE, its window mux (8*SIMD activation bits x
    log2 of the window starts NS) and kv_attn's G and q/accumulator words G x HMAX x D/16."""
    out = {"1": 1.0, "g": float(d.get("G", 0)),
           "qwords": d.get("G", 0) * d.get("HMAX", 0) * d.get("D", 0) / 16}
    if "PE" in d:
        pe, simd, pk = d["PE"], d["SIMD"], d["PACKING"]
        ns = actbuf_geometry(pe, simd, pk)[2]
        out.update(lanes=pe * simd, lanes_b3=pe * simd * pk, pe=pe,
                   mux=8 * simd * _clog2(ns))
    return out


@functools.lru_cache(maxsize=64)
def _fit(points: tuple[SynthPoint, ...], features: tuple[str, ...], key: str) -> LinearFit:
    """Least squares of ``key`` (lut = logic + SRL LUTs; ff; dsp) over ``features`` of the
    points (``_features``)."""
    import numpy as np

    def val(p: SynthPoint) -> float:
        return {"lut": p.lut_logic + p.lut_srl, "ff": p.ff, "dsp": p.dsp}[key]

    a = np.array([[_features(dict(p.params))[f] for f in features] for p in points])
    y = np.array([val(p) for p in points])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = float(np.abs(y - a @ coef).max()) if len(points) else 0.0
    return LinearFit(features, tuple(float(c) for c in coef), resid)


ENGINE_FEATURES = ("lanes", "lanes_b3", "pe", "mux", "1")


def engine_logic(synth: UnitSynth, packing_code: int, pe: int, simd: int
                 ) -> tuple[float, float, LinearFit]:
    """Yosys logic LUTs (with SRLs) and FFs of our engine at (PE, SIMD) in a packing: a
    least-squares fit over every synthesized point in its lanes, base-3 lanes, PE and window
    mux (bench/results/synth.json: largest residual 205 LUT, 169 FF over 2,000-12,300)."""
    key = ("engine", packing_code, pe, simd)
    hit = synth.memo.get(key)
    if hit is None:
        lut, ff = _fit(synth.points, ENGINE_FEATURES, "lut"), _fit(synth.points,
                                                                     ENGINE_FEATURES, "ff")
        x = _features({"PE": pe, "SIMD": simd, "PACKING": packing_code})
        hit = synth.memo[key] = (lut(x), ff(x), lut)
    return hit  # type: ignore[return-value]


def attention_logic(synth: UnitSynth, g: int, d: int, hmax: int) -> tuple[float, float, float]:
    """Yosys logic LUTs, FFs and DSPs of one kv_attn instance: fits over its synthesized
    builds in G (the MACs scale with it) and the q/accumulator words G x HMAX x D/16."""
    key = ("attention", g, d, hmax)
    hit = synth.memo.get(key)
    if hit is None:
        feats = ("g", "qwords", "1")
        x = _features({"G": g, "D": d, "HMAX": hmax})
        hit = synth.memo[key] = tuple(_fit(synth.points, feats, k)(x)
                                      for k in ("lut", "ff", "dsp"))
    return hit  # type: ignore[return-value]


def infrastructure(fab: Fabric, flow_name: str, engines: int, attention: int = 0,
                   glue: int = 0) -> tuple[float, float, float, tuple[str, ...]]:
    """(LUT, FF, BRAM36, sources) of the IP a flow instantiates for ``engines`` engines,
    ``attention`` attention units and ``glue`` glue units (published Vivado rows); its
    once-per-design IP (PS, reset, control SmartConnect) with the engines only."""
    key = (flow_name, engines, attention, glue)
    hit = fab.memo.get(key)
    if hit is not None:
        return hit
    flow = fab.flow(flow_name)
    names = ([*flow.per_engine] * engines + [*flow.per_attention] * attention
             + [*fab.flow("glue").per_unit] * glue + ([*flow.once] if engines else []))
    blocks = [fab.ip_block(n) for n in names]
    hit = fab.memo[key] = (sum(b.lut for b in blocks), sum(b.ff for b in blocks),
                           sum(b.bram36 for b in blocks),
                           tuple(sorted({b.source for b in blocks})))
    return hit


@functools.lru_cache(maxsize=64)
def speed_grade(part: str) -> str:
    """The speed grade of an AMD part name: xck26-sfvc784-2LV-c -> -2LV, xc7z020clg400-1 -> -1."""
    for tok in part.split("-")[1:]:
        if tok[:1].isdigit() and (tok[1:] == "" or tok[1:].isalpha()):
            return "-" + tok
    return ""


@dataclass(frozen=True)
class ClockSupport:
    """The clock the evidence supports for a plan (MHz, a multiple of the step; None: no
    evidence speaks for it) and why, in one line; ``closure`` the binding closure and
    ``kind`` the unit kind it binds for, ``util`` the plan's LUT utilization."""

    mhz: float | None
    evidence: str
    closure: Closure | None = None
    kind: str = ""
    util: float = 0.0
    #: Logic levels the binding unit has beyond the closed design's (0: none).
    extra_levels: int = 0


def _closure_fmax(c: Closure, util: float, peers: list[Closure]) -> float | None:
    """Highest clock a closure supports at LUT utilization ``util``: its clock when it
    published no slack; else 1/(period - slack), the slack interpolated in utilization
    between the closures of the same clock (``peers``; the derating), None beyond the
    fullest of them."""
    if c.wns_ns is None or c.lut_util is None:
        return c.clock_mhz
    return _fmax_at(c, util, _slack_points(peers))


def _slack_points(peers) -> tuple[tuple[float, float], ...]:
    """The (LUT utilization, WNS) points of the closures a closure's derating interpolates
    between, by utilization."""
    return tuple(sorted((p.lut_util, p.wns_ns) for p in peers
                        if p.wns_ns is not None and p.lut_util is not None))


def _fmax_at(c: Closure, util: float, pts: tuple[tuple[float, float], ...]) -> float | None:
    """``_closure_fmax`` of a closure with published slack, its peers' points given."""
    if util > pts[-1][0] + 1e-9:
        return None
    if util <= pts[0][0]:
        slack = pts[0][1]
    else:
        slack = next(s0 + (s1 - s0) * (util - u0) / (u1 - u0)
                     for (u0, s0), (u1, s1) in itertools.pairwise(pts)
                     if u0 <= util <= u1)
    return 1000.0 / (1000.0 / c.clock_mhz - slack)


def _covering(fab: Fabric, family: str, grade: str, kind: str, count: int
              ) -> tuple[tuple[Closure, tuple[tuple[float, float], ...] | None], ...]:
    """The closures that may cover ``count`` units of ``kind`` on ``family`` (already mapped
    through ``same_fabric``) at speed ``grade``, in the evidence's order, each with its
    peers' slack points (None: it published no slack): what ``supported_clock`` filters
    before it reads the utilization (once per evidence and question; the search asks
    thousands of times)."""
    key = ("covering", family, grade, kind, count)
    hit = fab.memo.get(key)
    if hit is None:
        rank = fab.rank(family, grade)
        out = []
        for c, peers in zip(fab.closures, fab.closure_peers, strict=True):
            limit = dict(c.counts).get(kind)
            if (c.family != family or kind not in c.kinds or rank is None
                    or (fab.rank(c.family, c.speed_grade) or 99) > rank
                    or (limit is not None and count > limit)):
                continue
            out.append((c, None if c.wns_ns is None or c.lut_util is None
                        else _slack_points(peers)))
        hit = fab.memo[key] = tuple(out)
    return hit


def _kind_fmax(fab: Fabric, family: str, grade: str, kind: str, depth: int, count: int,
               lut_util: float, explain: bool) -> tuple[float, Closure, str, int] | None:
    """The best closure covering ``count`` units of ``kind`` at ``lut_util``: (its clock for
    the unit, rounded down to the step; the closure; how a deeper unit scaled it, "" unless
    ``explain``; the extra logic levels), or None (``supported_clock``'s rule per kind)."""
    best: tuple[float, Closure, str, int] | None = None
    for c, pts in _covering(fab, family, grade, kind, count):
        f = c.clock_mhz if pts is None else _fmax_at(c, lut_util, pts)
        if f is None:
            continue
        how, extra = "", 0
        if depth and c.logic_levels_yosys and depth > c.logic_levels_yosys:
            extra = depth - c.logic_levels_yosys
            if c.level_ns:
                f = 1000.0 / (1000.0 / f + extra * c.level_ns)
                if explain:
                    how = (f"; {extra} logic level(s) deeper than its "
                           f"{c.logic_levels_yosys}, {c.level_ns:g} ns each")
            else:
                f *= c.logic_levels_yosys / depth
                if explain:
                    how = f"; scaled by logic depth {c.logic_levels_yosys}/{depth}"
        f = min(c.clock_mhz, math.floor(f / fab.step_mhz + 1e-9) * fab.step_mhz)
        if f <= 0:  # derated below one step: this closure supports no clock
            continue
        if best is None or f > best[0]:
            best = (f, c, how, extra)
    return best


def supported_mhz(fab: Fabric, family: str, grade: str, kinds: dict[str, tuple[int, int]],
                  lut_util: float) -> float | None:
    """``supported_clock(...).mhz`` without its wording: what the search asks of every
    design (whether its clock is beyond the evidence)."""
    family = dict(fab.same_fabric).get(family, family)
    mhz = None
    for kind, (depth, count) in kinds.items():
        best = _kind_fmax(fab, family, grade, kind, depth, count, lut_util, False)
        if best is None:
            return None
        if mhz is None or best[0] < mhz:
            mhz = best[0]
    return mhz


def supported_clock(fab: Fabric, family: str, grade: str, kinds: dict[str, tuple[int, int]],
                    lut_util: float) -> ClockSupport:
    """The clock the closures support for a plan holding the unit ``kinds`` (kind -> (our
    synthesized logic depth, 0 when unknown; the plan's count of that kind)) at ``lut_util``
    of the part's LUTs on a board of ``family`` and speed ``grade``: for every kind the best
    closure that covers it (same family, a grade at least as fast, at least as many units of
    the kind, the utilization within its range; a unit deeper than the closed design's
    scales the clock by the ratio of the depths), the lowest over the kinds, rounded down to
    the step."""
    family = dict(fab.same_fabric).get(family, family)
    best_per_kind = []
    for kind, (depth, count) in kinds.items():
        best = _kind_fmax(fab, family, grade, kind, depth, count, lut_util, True)
        if best is None:
            return ClockSupport(None, f"no published closure covers {count} {kind} unit(s) on "
                                f"{family} {grade or '?'} at {lut_util:.0%} LUT", None, kind,
                                lut_util)
        best_per_kind.append((*best, kind))
    if not best_per_kind:
        return ClockSupport(None, "no units")
    mhz, c, how, extra, kind = min(best_per_kind, key=lambda t: t[0])
    slack = f", WNS {c.wns_ns:g} ns at {c.lut_util:.0%} LUT" if c.wns_ns is not None else ""
    return ClockSupport(mhz, f"{c.design} closed {c.clock_mhz:g} MHz on {c.family} "
                        f"{c.speed_grade}{slack} (binding kind: {kind}{how}); plan at "
                        f"{lut_util:.0%} LUT", c, kind, lut_util, extra)
