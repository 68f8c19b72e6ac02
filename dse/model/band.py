"""Bands on projected figures, from the validation rows (pure).

Why: a projection that prints "19.98 tok/s" claims an accuracy nobody measured. What dse knows
about its own error is in the validation rows (``dse.model.validation``): per component class,
how far the model was from measurement before any calibration, and in which regime. A band
says that in the figure: decode tok/s, time to first token, aggregate tok/s, J/token and
resources carry a range, and what in a plan was never measured is named.

The rule, in four steps:

1. **Residuals per class.** A row whose figure is one class (a component of a measured split,
   attention at one context, a weight pass), or whose prediction is at least ``DOMINANT`` of
   one class (bitnet.cpp's token is 97% its Linears), gives that class one residual
   ``e = ln(measured / predicted)`` of the class's own share (the other classes' shares taken
   as predicted). Rows that set a constant, and composite rows (a whole token of the
   published design; energy, which is power times time), give none: they are checks.
2. **A band per class**, on the measured-to-predicted ratio: the mean of its residuals (the
   sign: the model's bias) plus and minus a 90% prediction interval, ``t(0.95, dof) x s x
   sqrt(1 + 1/n)``, widened to include the prediction itself (a band always holds the
   figure it is on). ``s`` is the class's own spread where it has ``OWN_SPREAD_ROWS`` rows or
   more; else the typical spread of its kind, the median of the spreads of its kind's
   classes measured at least twice (robust to the one class of sub-millisecond hand-offs
   that scatters by tens of percent), with their pooled degrees of freedom. A class no row
   measures is **unmeasured**: its band is plus and minus the largest residual of any
   measured class of its kind ("no better than the worst we have measured"; of any kind,
   when its kind has none).
3. **Regimes.** Each class's error depends on a few features of the regime (a board, a
   context, a KV format, a sequence count, a unit count, a clock beyond the clock evidence);
   a plan outside every row of the class (and of the classes that check its regime, as RTL
   simulation checks the engines' cycles for a packing the board never ran, and as a whole
   measured token checks each class that is at least ``REGIME_SHARE`` of it) widens the
   class to at least the unmeasured band, and the feature is named ("attention unit count
   2: no measured design", "clock 300 MHz: above evidence (250 MHz)").
4. **Propagation.** A figure is a sum of class shares; each class moves its share by its
   band. Classes measured in the figure's regime are taken as independent (their deviations
   add in quadrature; a class's own parts move together); the classes outside every measured
   regime are one unknown (their deviations add linearly), in quadrature with the rest. A
   rate is the inverse of its time; energy is power times time (their log-bands add in
   quadrature). A calibrated projection adds the fit's parameter
   uncertainty (its covariance, or its standard errors, propagated through the projection by
   finite differences) in quadrature, at the same 90% level.

Everything here is a function of the rows passed in: no file is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from dse.model.msg import Msg, msg
from dse.model.validation import (
    CLASSES,
    NUMERIC,
    YES_NO,
    Row,
    Validation,
    class_parts,
    regime_of,
    resource_parts,
)

#: A row of several classes gives a residual to its largest one when that class is at least
#: this share of its prediction (the rest taken as predicted).
DOMINANT = 0.8
#: A class with at least this many residuals uses its own spread; fewer, the typical spread
#: of its kind (the median spread of its classes measured at least twice).
OWN_SPREAD_ROWS = 3
#: A whole-token check row (no residual of its own class) extends the measured regime of
#: each class that is at least this share of its time: the token's agreement bounds that
#: class's error there (a class of half the token off by x moves it by x/2).
REGIME_SHARE = 0.5
#: Classes taken as measured exactly: published Vivado rows of the IP a flow instantiates,
#: used as they are (the model adds nothing to them; their own spread across builds is not in
#: the evidence).
EXACT = frozenset({"res.published"})
#: The band's level: a two-sided 90% prediction interval (the coverage the bench checks).
LEVEL = 0.90
#: z of the same level, for the calibration's parameter uncertainty (a normal error).
Z_LEVEL = 1.6448536269514722


def t_central(x: float, dof: int) -> float:
    """``P(|T| < x)`` for Student's t with an integer ``dof`` (>= 1), in closed form
    (Abramowitz and Stegun 26.7.3-4: a finite series in ``cos(theta)``, ``theta =
    atan(x / sqrt(dof))``). Why not scipy.stats: importing it takes about 0.45 s, longer than
    a whole search, for a function of this size."""
    theta = math.atan(x / math.sqrt(dof))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2 == 0:
        term = total = 1.0
        for k in range(2, dof, 2):  # (1.3...(k-1)) / (2.4...k) cos^k
            term *= c2 * (k - 1) / k
            total += term
        return s * total
    if dof == 1:
        return 2 * theta / math.pi
    term = total = 1.0
    for k in range(3, dof, 2):  # (2.4...(k-1)) / (3.5...k) cos^(k-1)
        term *= c2 * (k - 1) / k
        total += term
    return 2 / math.pi * (theta + s * math.cos(theta) * total)


def t_quantile(dof: int, level: float = LEVEL) -> float:
    """Student's t at ``(1 + level) / 2`` with ``dof`` degrees of freedom (the prediction
    interval's factor): ``x`` with ``P(|T| < x) = level``, by bisection on ``t_central``
    (to 1e-12; the tests hold it to scipy's ``t.ppf``)."""
    dof = max(1, int(dof))
    lo, hi = 0.0, 1.0
    while t_central(hi, dof) < level:
        hi *= 2
    while hi - lo > 1e-12 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_central(mid, dof) < level else (lo, mid)
    return (lo + hi) / 2


# -- step 1: residuals per class -------------------------------------------------------------

@dataclass(frozen=True)
class Residual:
    """One class's residual from one row: ``e = ln(measured / predicted)`` of its share."""

    cls: str
    e: float
    row: str
    group: str


def _time_parts(row: Row) -> dict[str, float]:
    return {k: v for k, v in row.parts.items() if CLASSES[k].kind == "time"}


def measured_over_predicted(row: Row) -> float | None:
    """The row's measured-to-predicted ratio of the quantity its parts add up to (time for a
    rate: measured time over predicted time is predicted rate over measured rate); a
    measured range counts from its nearest end (1 inside it)."""
    r = row.residual
    if row.figure == "rate":
        return 1.0 + r
    return 1.0 / (1.0 + r) if 1.0 + r > 0 else None


def attribute(row: Row) -> Residual | None:
    """The class a row gives a residual to, and the residual (step 1); None for a check."""
    if not row.check or row.figure == "energy":
        return None
    parts = _time_parts(row) if row.figure in ("time", "rate") else dict(row.parts)
    total = sum(parts.values())
    ratio = measured_over_predicted(row)
    if not parts or total <= 0 or ratio is None:
        return None
    cls, share = max(parts.items(), key=lambda kv: kv[1])
    if share < DOMINANT * total or share <= 0:
        return None
    truth = total * ratio - (total - share)
    if truth <= 0:
        return None
    return Residual(cls, math.log(truth / share), row.id, row.group)


# -- step 2: a band per class ----------------------------------------------------------------

@dataclass(frozen=True)
class ClassBand:
    """A class's band on the measured-to-predicted ratio, as logs: ``lo <= 0 <= hi``; its
    bias (mean residual), spread, the residuals it rests on, and whether it is unmeasured."""

    cls: str
    lo: float
    hi: float
    bias: float = 0.0
    spread: float = 0.0
    rows: int = 0
    measured: bool = True


@dataclass(frozen=True)
class Bands:
    """Every class's band, the unmeasured band of each kind, and the regimes the rows of
    each class were measured in (what a plan is compared with)."""

    classes: dict[str, ClassBand]
    unmeasured: dict[str, float]
    regimes: dict[str, tuple[dict, ...]]
    rows_used: int = 0
    source: str = ""

    def band(self, cls: str) -> ClassBand:
        got = self.classes.get(cls)
        if got is not None:
            return got
        if cls in EXACT:
            return ClassBand(cls, 0.0, 0.0)
        u = self.unmeasured.get(CLASSES[cls].kind if cls in CLASSES else "time", 0.0)
        return ClassBand(cls, -u, u, measured=False)


def derive_bands(rows: tuple[Row, ...] | list[Row], leave_out: frozenset[str] = frozenset(),
                 leave_out_groups: frozenset[str] = frozenset(), source: str = "") -> Bands:
    """Bands from ``rows`` without the rows ``leave_out`` names (by id) and the groups
    ``leave_out_groups`` names (steps 1-2): what a held-out check of a row is judged by."""
    kept = [r for r in rows if r.id not in leave_out and r.group not in leave_out_groups]
    res = [a for r in kept if (a := attribute(r)) is not None]
    by_cls: dict[str, list[float]] = {}
    for a in res:
        by_cls.setdefault(a.cls, []).append(a.e)
    # the degrees of freedom of each kind's spread: every residual about its own class's mean
    pooled: dict[str, tuple[float, int]] = {}
    for kind in {spec.kind for spec in CLASSES.values()}:
        pooled[kind] = (0.0, sum(len(es) - 1 for cls, es in by_cls.items()
                                 if CLASSES[cls].kind == kind and len(es) >= 2))
    worst: dict[str, float] = {}
    for cls, es in by_cls.items():
        kind = CLASSES[cls].kind
        worst[kind] = max(worst.get(kind, 0.0), *(abs(e) for e in es))
    # the typical spread of a class of each kind: the median of the spreads of its classes
    # measured at least twice (robust to one class of sub-millisecond parts scattering by
    # tens of percent), with the pooled degrees of freedom
    typical: dict[str, float] = {}
    for kind in {spec.kind for spec in CLASSES.values()}:
        sds = sorted(_sd(es) for cls, es in by_cls.items()
                     if CLASSES[cls].kind == kind and len(es) >= 2)
        typical[kind] = _median(sds)
    fallback = max(worst.values(), default=0.0)
    classes = {}
    for cls, es in by_cls.items():
        n = len(es)
        kind = CLASSES[cls].kind
        mean = sum(es) / n
        s, dof = (_sd(es), n - 1) if n >= OWN_SPREAD_ROWS else (typical[kind], pooled[kind][1])
        half = (t_quantile(dof) * s * math.sqrt(1 + 1 / n) if dof
                else worst.get(kind) or fallback)
        classes[cls] = ClassBand(cls, min(0.0, mean - half), max(0.0, mean + half), mean, s, n)
    # a kind no row measured is no better than the worst of any kind
    unmeasured = {kind: worst.get(kind) or fallback
                  for kind in {spec.kind for spec in CLASSES.values()}}
    regimes: dict[str, list[dict]] = {}
    attributed = {a.row: a.cls for a in res}
    for r in kept:
        if not r.check:
            continue
        cls = attributed.get(r.id)
        if cls is None and r.figure == "cycles":  # a simulation row checks its class's regime
            cls = next(iter(r.parts), None)
        if cls is not None:
            regimes.setdefault(cls, []).append(dict(r.regime))
        elif r.figure in ("time", "rate", "energy"):
            # a whole token checks the regime of each class that is most of it: were that
            # class far off there, the token would be off by at least half as much
            tp = {k: v for k, v in r.parts.items() if CLASSES.get(k) is not None
                  and CLASSES[k].kind == "time"}
            total = sum(tp.values())
            for c, v in tp.items():
                if total > 0 and v >= REGIME_SHARE * total:
                    regimes.setdefault(c, []).append(dict(r.regime))
    return Bands(classes, unmeasured, {k: tuple(v) for k, v in regimes.items()}, len(res),
                 source)


def _sd(es: list[float]) -> float:
    """Sample standard deviation (0 for fewer than two)."""
    if len(es) < 2:
        return 0.0
    mean = sum(es) / len(es)
    return math.sqrt(sum((e - mean) ** 2 for e in es) / (len(es) - 1))


def _median(xs: list[float]) -> float:
    if not xs:
        return 0.0
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def bands_of(validation: Validation | None) -> Bands | None:
    """The bands of every row in force (None: no validation rows, no bands)."""
    if validation is None:
        return None
    return derive_bands(validation.rows, source=validation.label())


# -- step 3: regimes -------------------------------------------------------------------------

_FEATURE_MSG = {
    "board": ("band.board", "board {value}: no measurement on this board"),
    "packing": ("band.packing", "packing {value}: no measured design"),
    "engines": ("band.engines", "{value} engines: beyond the measured {lo:g}–{hi:g}"),
    "vectors": ("band.vectors", "{value} vectors a weight pass: beyond the measured "
                "{lo:g}–{hi:g}"),
    "m": ("band.m", "{value} positions a forward: beyond the measured {lo:g}–{hi:g}"),
    "context": ("band.context", "context {value}: beyond the measured {lo:g}–{hi:g} tokens"),
    "threads": ("band.threads", "{value} threads: beyond the measured {lo:g}–{hi:g}"),
    "sequences": ("band.sequences", "{value} sequences: beyond the measured {lo:g}–{hi:g}"),
    "kv_dtype": ("band.kv_dtype", "KV {value} on the PS: never measured"),
    "runtime": ("band.runtime", "PS runtime {value}: never measured on a board"),
    "phase": ("band.phase", "{what} in {value}: never measured"),
    "attention": ("band.attention_unit", "attention unit count {value}: no measured design"),
    "glue": ("band.glue", "glue unit count {value}: no measured design"),
    "glue_cycles_per_elem": ("band.glue_rate", "glue unit at {value:g} cycle(s) per element: no "
                             "measured design"),
    "resident": ("band.resident", "resident weights: no measured design"),
}


def _feature_flag(cls: str, feature: str, regime: dict, evidence: list) -> Msg | None:
    """Why ``regime`` is outside ``evidence`` (the class's rows' regimes) in ``feature``, or
    None when a row covers it (or the feature does not apply)."""
    v = regime.get(feature)
    if v is None:
        return None
    if feature == "clock_beyond":
        if not v:
            return None
        sup = regime.get("clock_supported_mhz")
        if sup is None:
            return msg("band.clock_none", "clock {mhz:g} MHz: no clock evidence",
                       mhz=regime.get("clock_mhz", 0.0))
        return msg("band.clock", "clock {mhz:g} MHz: above evidence ({sup:g} MHz)",
                   mhz=regime.get("clock_mhz", 0.0), sup=sup)
    seen = [r[feature] for r in evidence if r.get(feature) is not None]
    key, en = _FEATURE_MSG.get(feature, ("band.feature", "{feature} {value}: never measured"))
    what = class_name(cls)
    if feature in YES_NO:
        if not v or any(seen):
            return None
        return msg(key, en, value=v)
    if feature in NUMERIC and all(isinstance(x, (int, float)) for x in seen):
        if seen and min(seen) - 1e-9 <= v <= max(seen) + 1e-9:
            return None
        if not seen:
            return msg("band.feature", "{feature} {value}: never measured", feature=feature,
                       value=v)
        return msg(key, en, value=v, lo=min(seen), hi=max(seen))
    if v in seen:
        return None
    shown = msg(f"band.value.{v}", str(v)) if feature == "phase" else v
    return msg(key, en, value=shown, what=what, feature=feature)


def class_name(cls: str) -> Msg:
    """A class's name as a message (its Chinese name in ``dse.report.i18n``)."""
    spec = CLASSES.get(cls)
    return msg(f"band.class.{cls}", spec.what[1] if spec is not None else cls)


def class_flags(cls: str, regime: dict, bands: Bands) -> tuple[Msg, ...]:
    """What in ``regime`` no row of class ``cls`` (nor of the classes that check its regime)
    measured: empty when the class is measured in this regime."""
    spec = CLASSES.get(cls)
    if spec is None:
        return (msg("band.class_unmeasured", "{what}: never measured", what=class_name(cls)),)
    if cls in EXACT:
        return ()
    if cls not in bands.classes:
        key, en = spec.unmeasured
        fields: dict = {}
        if "{value}" in en:  # a unit's class: named by its count
            fields["value"] = regime.get(cls.split(".")[-1])
        if "{what}" in en:
            fields["what"] = class_name(cls)
        return (msg(key, en, **fields),)
    own = list(bands.regimes.get(cls, ()))
    also = [r for c in spec.also for r in bands.regimes.get(c, ())]
    out = []
    for f in spec.features:
        # a board, a runtime, a clock closure are the board's rows' alone: a simulation ran
        # no board
        evidence = own if f in ("board", "runtime", "clock_beyond", "kv_dtype",
                                "threads") else own + also
        flag = _feature_flag(cls, f, regime, evidence)
        if flag is not None:
            out.append(flag)
    return tuple(out)


# -- step 4: propagation ---------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A figure and its band (``lo <= value <= hi``), in the figure's unit."""

    value: float
    lo: float
    hi: float

    @property
    def width(self) -> float:
        """The band's width relative to the figure."""
        return (self.hi - self.lo) / self.value if self.value else 0.0

    def overlaps(self, other: Interval) -> bool:
        return self.lo <= other.hi and other.lo <= self.hi

    def scaled(self, f: float) -> Interval:
        return Interval(self.value * f, self.lo * f, self.hi * f)

    def inverse(self, k: float = 1.0) -> Interval:
        """``k / x``: a rate's band from its time's."""
        def inv(x: float) -> float:
            return k / x if x > 0 else math.inf
        return Interval(inv(self.value), inv(self.hi), inv(self.lo))


@dataclass(frozen=True)
class ClassUse:
    """One class's share of a figure and the band it moved by (logs), and why it is wide."""

    cls: str
    share: float
    lo: float
    hi: float
    measured: bool
    flags: tuple[Msg, ...] = ()


def class_factors(parts: dict[str, float], regime: dict, bands: Bands
                  ) -> tuple[list[ClassUse], tuple[Msg, ...]]:
    """Each class of ``parts`` with its band in this regime (widened to at least its kind's
    unmeasured band where the regime is outside its rows), and every flag once."""
    uses, flags = [], []
    for cls, share in parts.items():
        b = bands.band(cls)
        why = class_flags(cls, regime, bands)
        lo, hi = b.lo, b.hi
        if why:
            u = bands.unmeasured.get(CLASSES[cls].kind if cls in CLASSES else "time", 0.0)
            lo, hi = min(lo, -u), max(hi, u)
        uses.append(ClassUse(cls, share, lo, hi, b.measured and not why, why))
        flags += [f for f in why if f not in flags]
    return uses, tuple(flags)


def sum_band(uses: list[ClassUse], rel_sigma: float = 0.0) -> tuple[float, float]:
    """The measured-to-predicted factors (lo, hi) of a sum of class shares: each class's
    deviation from its band; the classes measured in this regime in quadrature (independent
    errors), the classes outside every measured regime together (one unknown: they move as
    one, linearly), the two in quadrature; ``rel_sigma`` (a calibration's relative 1-sigma)
    added in quadrature at the band's level."""
    total = sum(u.share for u in uses)
    if total <= 0:
        return 1.0, 1.0

    def dev(side) -> float:
        inside = sum(side(u) ** 2 for u in uses if u.measured)
        outside = sum(side(u) for u in uses if not u.measured)
        return inside + outside ** 2

    d_lo = dev(lambda u: abs(u.share) * (1 - math.exp(u.lo)))
    d_hi = dev(lambda u: abs(u.share) * (math.exp(u.hi) - 1))
    extra = (Z_LEVEL * rel_sigma * total) ** 2
    lo = 1 - math.sqrt(d_lo + extra) / total
    hi = 1 + math.sqrt(d_hi + extra) / total
    return max(lo, 1e-3), hi


def figure_factors(figure: str, parts: dict[str, float], regime: dict, bands: Bands,
                   rel_sigma: float = 0.0) -> tuple[float, float, tuple[Msg, ...]]:
    """The factors (lo, hi) by which a figure of kind ``figure`` made of ``parts`` may differ
    from measurement, and the flags of its regime. ``rate``: the inverse of its parts' time;
    ``energy``: power (``board.power``) times time."""
    if figure in ("time", "rate", "energy"):
        tp = {k: v for k, v in parts.items() if CLASSES.get(k, CLASSES["other"]).kind == "time"}
        uses, flags = class_factors(tp, regime, bands)
        lo, hi = sum_band(uses, rel_sigma)
        if figure == "rate":
            return 1 / hi, 1 / lo, flags
        if figure == "energy":
            pu, pflags = class_factors({"board.power": parts.get("board.power", 1.0)},
                                       regime, bands)
            plo, phi = sum_band(pu)
            lo = math.exp(-math.hypot(math.log(lo), math.log(plo)))
            hi = math.exp(math.hypot(math.log(hi), math.log(phi)))
            flags = flags + tuple(f for f in pflags if f not in flags)
        return lo, hi, flags
    uses, flags = class_factors(dict(parts), regime, bands)
    lo, hi = sum_band(uses)
    return lo, hi, flags


def row_band(row: Row, bands: Bands) -> Interval:
    """A row's figure with its band, in the row's unit, from ``bands``."""
    lo, hi, _ = figure_factors(row.figure, row.parts, row.regime, bands)
    return Interval(row.predicted, row.predicted * lo, row.predicted * hi)


@dataclass(frozen=True)
class ProjectionBand:
    """A projection's figures with their bands, and what in it was never measured.

    ``ms`` is the forward's time, ``tokens_per_s`` its rate (decode tok/s, or aggregate tok/s
    of several sequences), ``watts`` and ``j_per_token`` the board's (None without a power
    model), ``resources`` LUT, FF, BRAM36 and URAM; ``flags`` name each feature outside the
    rows once; ``classes`` the time's classes and their bands; ``calibration_sigma`` the
    calibrated fit's relative 1-sigma on the time (None: uncalibrated)."""

    ms: Interval
    tokens_per_s: Interval
    watts: Interval | None = None
    j_per_token: Interval | None = None
    resources: dict[str, Interval] = field(default_factory=dict)
    flags: tuple[Msg, ...] = ()
    classes: tuple[ClassUse, ...] = ()
    calibration_sigma: float | None = None

    def to_dict(self) -> dict:
        def iv(x: Interval | None, digits: int = 4) -> dict | None:
            if x is None:
                return None
            return {"value": round(x.value, digits), "lo": round(x.lo, digits),
                    "hi": round(x.hi, digits)}

        return {"ms": iv(self.ms), "tokens_per_s": iv(self.tokens_per_s),
                "watts": iv(self.watts), "j_per_token": iv(self.j_per_token),
                "resources": {k: iv(v, 1) for k, v in self.resources.items()},
                "never_measured": [str(f) for f in self.flags],
                "classes": [{"class": u.cls, "ms": round(u.share, 4),
                             "factor_lo": round(math.exp(u.lo), 4),
                             "factor_hi": round(math.exp(u.hi), 4),
                             "measured_in_regime": u.measured} for u in self.classes],
                "calibration_sigma": None if self.calibration_sigma is None
                else round(self.calibration_sigma, 5)}


def projection_band(proj, bands: Bands, constants=None, board=None,
                    rel_sigma: float | None = None) -> ProjectionBand:
    """The band of every headline figure of ``proj`` (step 4). ``constants`` and ``board``
    (the cost context's) price the resources' parts by basis; ``rel_sigma`` is a
    calibration's relative 1-sigma on the time (``calibration_sigma``)."""
    regime = regime_of(proj)
    parts = class_parts(proj)
    uses, flags = class_factors(parts, regime, bands)
    s = rel_sigma or 0.0
    lo, hi = sum_band(uses, s)
    ms = Interval(proj.plan_ms, proj.plan_ms * lo, proj.plan_ms * hi)
    tps = ms.inverse(proj.tokens * 1e3)
    watts = jpt = None
    if proj.energy is not None:
        plo, phi, pflags = figure_factors("power", {"board.power": proj.energy.watts},
                                          regime, bands)
        watts = Interval(proj.energy.watts, proj.energy.watts * plo, proj.energy.watts * phi)
        elo, ehi, _ = figure_factors("energy", {**parts, "board.power": proj.energy.watts},
                                     regime, bands, s)
        j = proj.energy.j_per_token
        jpt = Interval(j, j * elo, j * ehi)
        flags = flags + tuple(f for f in pflags if f not in flags)
    res: dict[str, Interval] = {}
    if constants is not None and board is not None:
        for kind, rparts in resource_parts(proj.plan, board, constants).items():
            v = getattr(proj.resources, kind)
            if not rparts or v <= 0:
                continue
            rlo, rhi, _ = figure_factors("resource", rparts, {}, bands)
            res[kind] = Interval(v, v * rlo, v * rhi)
    return ProjectionBand(ms, tps, watts, jpt, res, flags, tuple(uses), rel_sigma)


# -- a calibration's parameter uncertainty ---------------------------------------------------

def calibration_sigma(wl, plan, ctx, scenario, base_ms: float | None = None) -> float | None:
    """The relative 1-sigma of ``plan``'s time under the calibration in force (``ctx.fit``),
    from the fit's parameter covariance (or its standard errors when the file holds none):
    ``J C J'`` with ``J`` the time's derivative in each fitted parameter, by finite
    differences of the projection. None when the context is not calibrated."""
    from dse.model.calibration import apply_params, param_range_error
    from dse.model.project import project

    fit = getattr(ctx, "fit", None)
    if fit is None:
        return None
    names, cov = fit.covariance_matrix()
    if not names:
        return 0.0
    if base_ms is None:
        base_ms = project(wl, plan, ctx, scenario, with_baselines=False).plan_ms
    if base_ms <= 0:
        return 0.0
    grads = []
    for i, name in enumerate(names):
        v = fit.params[name].value
        h = math.sqrt(cov[i][i]) if cov[i][i] > 0 else 0.0
        h = max(h * 0.1, abs(v) * 1e-4, 1e-9)
        if param_range_error(name, v + h) is not None:
            h = -h  # at the top of its range: the derivative from below
            if param_range_error(name, v + h) is not None:
                grads.append(0.0)  # no room either way: it cannot move the time
                continue
        b, c = apply_params(ctx.board, ctx.constants, {name: v + h})
        t = project(wl, plan, replace(ctx, board=b, constants=c), scenario,
                    with_baselines=False).plan_ms
        grads.append((t - base_ms) / h)
    var = sum(grads[i] * cov[i][j] * grads[j] for i in range(len(names))
              for j in range(len(names)))
    return math.sqrt(max(0.0, var)) / base_ms


def weighted_interval(parts: list[tuple[Interval, float]]) -> Interval | None:
    """A weighted sum of figures with their bands (one model's: their ends add linearly)."""
    if not parts:
        return None
    return Interval(sum(w * iv.value for iv, w in parts), sum(w * iv.lo for iv, w in parts),
                    sum(w * iv.hi for iv, w in parts))


def plan_band(wl, plan, ctx, proj, bands: Bands) -> ProjectionBand:
    """``projection_band`` of ``proj`` (``plan`` priced in ``ctx``), with the calibration's
    parameter uncertainty when ``ctx`` is calibrated."""
    sigma = (calibration_sigma(wl, plan, ctx, proj.scenario, proj.plan_ms)
             if getattr(ctx, "fit", None) is not None else None)
    return projection_band(proj, bands, ctx.constants, ctx.board, sigma)


def forwards_band(wl, plan, ctx, parts, bands: Bands
                  ) -> tuple[Interval | None, tuple[Msg, ...]]:
    """A figure made of weighted forwards (a prompt to its first token: ``PromptCost.parts``)
    with its band (the forwards' bands, weighted: one model, so their ends add) and what its
    forwards were never measured in."""
    pbs = [(plan_band(wl, plan, ctx, p, bands), w) for p, w in parts if w]
    flags = tuple(dict.fromkeys(f for b, _ in pbs for f in b.flags))
    return weighted_interval([(b.ms, w) for b, w in pbs]), flags


def objective_band(bands: tuple[ProjectionBand | None, ...], units: tuple[float, ...],
                   weights: tuple[float, ...], kind: str) -> Interval | None:
    """The band of an objective (a weighted sum of its scenarios' figures, in its units):
    each scenario's band moves with the others (one model), so the ends add linearly."""
    if not bands or any(b is None for b in bands):
        return None
    lo = hi = value = 0.0
    for b, u, w in zip(bands, units, weights, strict=True):
        if kind == "energy" and b.j_per_token is not None:
            j = b.j_per_token
            flo, fhi = j.lo / j.value, j.hi / j.value
        elif kind == "edp" and b.j_per_token is not None:
            flo = b.j_per_token.lo / b.j_per_token.value * b.ms.lo / b.ms.value
            fhi = b.j_per_token.hi / b.j_per_token.value * b.ms.hi / b.ms.value
        else:
            flo, fhi = b.ms.lo / b.ms.value, b.ms.hi / b.ms.value
        value += w * u
        lo += w * u * flo
        hi += w * u * fhi
    return Interval(value, lo, hi)


__all__ = ["DOMINANT", "LEVEL", "OWN_SPREAD_ROWS", "REGIME_SHARE", "Bands", "ClassBand",
           "ClassUse",
           "Interval", "ProjectionBand", "Residual", "attribute", "bands_of",
           "calibration_sigma", "class_factors", "class_flags", "derive_bands",
           "figure_factors", "forwards_band", "objective_band", "plan_band",
           "projection_band", "row_band", "sum_band", "t_quantile", "weighted_interval"]
