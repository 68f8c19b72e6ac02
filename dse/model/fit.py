"""Fitting the cost model's free parameters to a measurement log (pure; scipy least squares).

``fit_log`` adjusts named parameters (see ``dse.model.calibration``) so that the model's
predictions of the log's entries (``dse.model.predict``) match, in relative terms, and
reports each parameter's standard error (from the Jacobian), every entry's error before and
after, and a held-out check. Which parameters a log may move depends on its source: a
simulation informs only what it simulates. ``Measurement`` is the calibration flow's record
of one layer run on an engine, before it becomes a log entry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from dse.model.board import Board
from dse.model.calibration import (
    PARAM_BOUNDS,
    FittedParam,
    apply_params,
    bound_of,
    default_value,
)
from dse.model.constants import CostConstants
from dse.model.cost import call_cost
from dse.model.engine import engine_cycles
from dse.model.measurement_log import Measurement

#: Bounds of each fittable parameter (``dse.model.calibration.PARAM_BOUNDS``).
BOUNDS = PARAM_BOUNDS


def error_summary(errors: Sequence[float]) -> dict[str, float]:
    """Max and mean absolute relative error (0 for none)."""
    a = np.abs(np.asarray(errors, dtype=float))
    if not a.size:
        return {"max_abs_rel_error": 0.0, "mean_abs_rel_error": 0.0}
    return {"max_abs_rel_error": float(a.max()), "mean_abs_rel_error": float(a.mean())}


def predict_s(meas: Measurement, board: Board, c: CostConstants) -> float:
    """The model's time for one measured call."""
    return call_cost(meas.design, board, c, n=meas.n, k=meas.k, m=meas.m,
                     weight_bytes=meas.weight_bytes, dense=meas.dense).time_s


def predict_cycles(meas: Measurement, c: CostConstants) -> int:
    """The model's stall-free busy cycles for one measured call."""
    d = meas.design
    return engine_cycles(math.ceil(meas.n / d.engines), meas.k, meas.m, d.pe, d.simd,
                         d.vectors, d.stream_bits // 8, round(c.pipeline_latency_cycles),
                         d.vectors_per_clock)


def _covariance(res, nparams: int) -> tuple[list[float | None], np.ndarray | None]:
    """(standard errors, covariance) from the Jacobian: inv(J'J) * s^2, the standard errors
    its diagonal's roots; a standard error is None where the parameter is unidentified or
    held at a bound.

    The parameters span twenty orders of magnitude (an efficiency of 0.75 beside a cache
    maintenance rate of 5.3e9 bytes/s), so J'J is inverted in units of each parameter's own
    value (columns scaled by it) and scaled back: inverted raw, the pseudo-inverse drops the
    large parameter's tiny column as noise and reports a standard error of ~0.

    A parameter the fit left on a bound (``res.active_mask``: ``run_burst_us`` at 0 when the
    data say the term is absent) is not an estimate with a symmetric error: the curvature
    there says nothing of how far it could move (a standard error of 2e-29 us was printed for
    one). It is held fixed: no standard error, and the others' covariance is that of the fit
    with it fixed (its column left out of J'J).
    """
    jac = np.asarray(res.jac, dtype=float)
    active = np.asarray(getattr(res, "active_mask", np.zeros(nparams)), dtype=int)
    free = [i for i in range(nparams) if active[i] == 0]
    dof = max(1, jac.shape[0] - len(free))
    s2 = 2.0 * res.cost / dof
    x = np.asarray(res.x, dtype=float)
    scale = np.where(np.abs(x) > 0, np.abs(x), 1.0)
    js = jac[:, free] * scale[free]
    out: list[float | None] = [None] * nparams
    cov = np.zeros((nparams, nparams))
    try:
        cov[np.ix_(free, free)] = (np.linalg.pinv(js.T @ js) * s2
                                   * np.outer(scale[free], scale[free]))
    except np.linalg.LinAlgError:
        return [None] * nparams, None
    for i in free:
        if np.any(jac[:, i]):  # else the measurements do not constrain this parameter
            out[i] = float(math.sqrt(max(0.0, cov[i, i])))
    return out, (cov + cov.T) / 2


# -- fitting a measurement log -----------------------------------------------------------------

#: What each kind of source can inform. A simulator's wall time is the RTL's busy cycles plus
#: the model's own per-call overhead and PS-side formula, so from a sim log only the DDR supply
#: (efficiency) and the pipeline latency carry information; a board (or paper) log measured
#: the overheads and the PS-side costs too.
SOURCE_PARAMS = {
    "sim": ("ddr_pl_efficiency", "pipeline_latency_cycles"),
    "board": ("ddr_pl_efficiency", "pipeline_latency_cycles", "per_call_overhead_us",
              "native_call_overhead_us", "run_burst_us", "axi_lite_access_us",
              "cache_maint_bytes_per_s", "ps_memory_bandwidth_gb_s",
              "native_op_overhead_us", "native_topk_cycles_per_elem",
              "native_attn_layer_overhead_us", "native_shift_scan_cycles_per_elem"),
}


def source_params(backend: str) -> tuple[str, ...]:
    return SOURCE_PARAMS["sim" if backend == "sim" else "board"]


@dataclass(frozen=True)
class EntryResult:
    """One log entry: measured, predicted before and after the fit, in the entry's unit."""

    id: str
    kind: str
    what: str
    unit: str
    measured: float
    status: str  # fitted | checked | not priced | composed
    why: str = ""
    before: float | None = None
    after: float | None = None
    measured_fraction: float | None = None

    @property
    def error_before(self) -> float | None:
        return None if self.before is None else self.before / self.measured - 1.0

    @property
    def error_after(self) -> float | None:
        return None if self.after is None else self.after / self.measured - 1.0

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "what": self.what, "unit": self.unit,
                "measured": self.measured, "status": self.status, "why": self.why,
                "predicted_before": self.before, "predicted_after": self.after,
                "error_before": self.error_before, "error_after": self.error_after,
                "measured_fraction": self.measured_fraction}


@dataclass(frozen=True)
class LogFit:
    """What a fit made of a log: parameters with standard errors, and every entry's errors."""

    params: dict[str, FittedParam]
    entries: tuple[EntryResult, ...]
    held_out: dict | None
    cost: float
    message: str
    #: The fitted parameters' covariance (parameter -> parameter -> value, in their units),
    #: over the parameters the entries constrain; a calibrated projection propagates it.
    covariance: dict[str, dict[str, float]] = field(default_factory=dict)

    def fitted(self) -> list[EntryResult]:
        return [r for r in self.entries if r.status == "fitted"]

    def summary(self, which: str) -> dict[str, float]:
        errs = [getattr(r, f"error_{which}") for r in self.fitted()]
        return error_summary([e for e in errs if e is not None])


def _where(log, e) -> str:
    return f"{log.path or 'log'}: entries ({e.id})"


#: The running fit's progress: [evaluations, callback, last report time] (None: no one asked).
_PROGRESS: ContextVar[list | None] = ContextVar("dse_fit_progress", default=None)


def _tick() -> None:
    """Count one evaluation of the model over the log; report at most five times a second."""
    state = _PROGRESS.get()
    if state is None:
        return
    state[0] += 1
    now = time.monotonic()
    if now - state[2] >= 0.2:
        state[2] = now
        state[1](state[0], 0)


def _residual_fn(log, entries, wl, board, c, params):
    from dse.model.predict import measured_s, predict

    meas = [measured_s(e, log.path) for e in entries]

    def residuals(x: np.ndarray) -> np.ndarray:
        _tick()
        b, cc = apply_params(board, c, dict(zip(params, x, strict=True)))
        memo: dict = {}  # these parameters' calls and projections, shared by the entries
        r = []
        for e, t in zip(entries, meas, strict=True):
            p = predict(e, wl, b, cc, log.path, memo)
            r.append(p.time_s / t - 1.0)
            if p.free_cycles is not None:
                r.append(p.free_cycles[0] / p.free_cycles[1] - 1.0)
        return np.asarray(r, dtype=float)

    return residuals


def _moved_by(log, e, wl, board, c, params: tuple[str, ...],
              probed: _Probed | None = None) -> bool:
    """Whether any of ``params`` moves the prediction of ``e``."""
    if not params:
        return False
    if probed is not None and probed.exact and probed.has(e):
        moved = probed.sensitive([e])
        return any(m for p, m in zip(probed.allowed, moved, strict=True) if p in params)
    x0 = np.clip(np.array([default_value(p, board, c) for p in params], dtype=float),
                 [BOUNDS[p][0] for p in params], [BOUNDS[p][1] for p in params])
    fn = _residual_fn(log, [e], wl, board, c, params)
    return any(_sensitive(fn, params, x0, np.array([BOUNDS[p][0] for p in params]),
                          np.array([BOUNDS[p][1] for p in params])))


def _sensitive(residuals, params, x0, lo, hi) -> list[bool]:
    """Which parameters move any residual anywhere in their range (not only at x0: a max()
    of roofline terms is flat where another term binds)."""
    r0 = residuals(x0)
    out = []
    for i in range(len(params)):
        moved = False
        for probe in _probe_points(x0[i], lo[i], hi[i]):
            x = x0.copy()
            x[i] = probe
            if np.any(np.abs(residuals(x) - r0) > 1e-12):
                moved = True
                break
        out.append(moved)
    return out


def _identifiable(residuals, x0, lo, hi, keep: list[bool]) -> list[bool]:
    """Of the parameters that move the residuals (``keep``), those the entries can tell
    apart: in ``allowed`` order, a parameter is kept only if its Jacobian column (finite
    differences at ``x0``, normalised) is not a combination of the columns kept before it.
    Two parameters that move every entry alike (a per-run burst start and a per-call launch
    when every call is one run) cannot both be fitted; the first one named is."""
    r0 = residuals(x0)
    cols = []
    for i, k in enumerate(keep):
        if not k:
            cols.append(None)
            continue
        h = max(abs(x0[i]) * 1e-3, 1e-3)
        x = x0.copy()
        x[i] = x0[i] + h if x0[i] + h <= hi[i] else x0[i] - h
        col = (residuals(x) - r0) / (x[i] - x0[i])
        norm = float(np.linalg.norm(col))
        cols.append(col / norm if norm > 0 else None)
    return _independent(cols)


class _Probed:
    """The residuals of a log's entries at the defaults and at every probe ``_sensitive`` and
    ``_identifiable`` take, computed once for all of them: every entry's prediction depends on
    the parameters alone (not on which other entries are fitted), so the rows of a subset of
    entries are those entries' rows, and a subset's sensitivities and Jacobian columns follow
    from them exactly as from probing the subset on its own."""

    def __init__(self, log, entries, wl, board, c, allowed) -> None:
        from dse.model.predict import predict

        self.entries, self.allowed = list(entries), tuple(allowed)
        self._index = {id(e): i for i, e in enumerate(self.entries)}
        x0 = np.array([default_value(p, board, c) for p in allowed], dtype=float)
        self.lo = np.array([BOUNDS[p][0] for p in allowed])
        self.hi = np.array([BOUNDS[p][1] for p in allowed])
        self.x0 = np.clip(x0, self.lo, self.hi)
        # a default outside its bounds is clipped here but left as it is where a subset
        # does not list it: the shortcut would not be exact, so it is not taken
        self.exact = bool(np.array_equal(self.x0, x0))
        fn = _residual_fn(log, self.entries, wl, board, c, self.allowed)
        memo: dict = {}
        self.owner = np.array([i for i, e in enumerate(self.entries)
                               for _ in range(2 if predict(e, wl, board, c, log.path, memo)
                                              .free_cycles is not None else 1)])
        self.r0 = fn(self.x0)
        self.probes: list[list[np.ndarray]] = []
        self.cols: list[np.ndarray | None] = []
        for i in range(len(self.allowed)):
            vs = []
            for probe in _probe_points(self.x0[i], self.lo[i], self.hi[i]):
                x = self.x0.copy()
                x[i] = probe
                vs.append(fn(x))
            self.probes.append(vs)
            h = max(abs(self.x0[i]) * 1e-3, 1e-3)
            x = self.x0.copy()
            x[i] = self.x0[i] + h if self.x0[i] + h <= self.hi[i] else self.x0[i] - h
            self.cols.append((fn(x) - self.r0) / (x[i] - self.x0[i]))
        # [entry, parameter]: whether any probe of the parameter moves any of the entry's
        # rows (a subset's sensitivity is the OR of its entries': linear, not quadratic)
        self.moves = np.zeros((len(self.entries), len(self.allowed)), dtype=bool)
        for i, vs in enumerate(self.probes):
            for v in vs:
                self.moves[self.owner[np.abs(v - self.r0) > 1e-12], i] = True

    def has(self, e) -> bool:
        """Whether ``e`` (this very entry) is one of the probed ones."""
        return id(e) in self._index

    def _positions(self, entries) -> np.ndarray:
        return np.fromiter((self._index[id(e)] for e in entries), dtype=int)

    def rows(self, entries) -> np.ndarray:
        mark = np.zeros(len(self.entries), dtype=bool)
        mark[self._positions(entries)] = True
        return mark[self.owner]

    def sensitive(self, entries) -> list[bool]:
        """``_sensitive`` of ``entries`` over the allowed parameters."""
        return [bool(x) for x in self.moves[self._positions(entries)].any(axis=0)]

    def identifiable(self, entries, keep: list[bool]) -> list[bool]:
        """``_identifiable`` of ``entries`` (the Jacobian columns at the defaults)."""
        rows = self.rows(entries)
        cols = []
        for k, col in zip(keep, self.cols, strict=True):
            if not k:
                cols.append(None)
                continue
            c = col[rows]
            norm = float(np.linalg.norm(c))
            cols.append(c / norm if norm > 0 else None)
        return _independent(cols)


def _probe_points(x0: float, lo: float, hi: float) -> tuple[float, ...]:
    """Where ``_sensitive`` probes a parameter: half, double, and a tenth into its range (a
    max() of roofline terms is flat where another term binds)."""
    return tuple(float(np.clip(p, lo, hi)) for p in (x0 * 0.5, x0 * 2 + 1e-3,
                                                       lo + 0.1 * (min(hi, 10 * x0 + 1) - lo)))


def _independent(cols: list) -> list[bool]:
    """Of normalised Jacobian columns (None: not a candidate), those not a combination of the
    ones kept before them."""
    out, chosen = [], []
    for col in cols:
        if col is None:
            out.append(False)
            continue
        trial = np.column_stack([*chosen, col])
        sv = np.linalg.svd(trial, compute_uv=False)
        ok = sv[-1] > 1e-6 * sv[0]
        out.append(bool(ok))
        if ok:
            chosen.append(col)
    return out


def _least_squares(log, entries, wl, board, c, allowed, probed: _Probed | None = None,
                   start: dict | None = None):
    """Fit the allowed parameters that the entries constrain; check the result is plausible.
    ``probed``: the log's probes, computed once (else probed here). ``start``: fit exactly
    these parameters from these values (a refit of a fit already made, e.g. without one
    entry) instead of choosing them afresh from the defaults."""
    from dse.errors import DseError
    from dse.model.calibration import param_range_error

    x_all = np.array([default_value(p, board, c) for p in allowed], dtype=float)
    lo_all = np.array([BOUNDS[p][0] for p in allowed])
    hi_all = np.array([BOUNDS[p][1] for p in allowed])
    x_all = np.clip(x_all, lo_all, hi_all)
    if start is not None:
        keep = [p in start for p in allowed]
    elif probed is not None and probed.exact and probed.allowed == tuple(allowed):
        keep = probed.identifiable(entries, probed.sensitive(entries))
    else:
        probe = _residual_fn(log, entries, wl, board, c, allowed)
        keep = _sensitive(probe, allowed, x_all, lo_all, hi_all)
        keep = _identifiable(probe, x_all, lo_all, hi_all, keep)
    params = tuple(p for p, k in zip(allowed, keep, strict=True) if k)
    if not params:
        return {}, 0.0, "no parameter is constrained by these entries", {}
    idx = [allowed.index(p) for p in params]
    x0, lo, hi = x_all[idx], lo_all[idx], hi_all[idx]
    first = x0 if start is None else np.clip([start[p] for p in params], lo, hi)
    residuals = _residual_fn(log, entries, wl, board, c, params)
    res = least_squares(residuals, first, bounds=(lo, hi), x_scale="jac", method="trf")
    jac = np.asarray(res.jac, dtype=float)
    # the entry that pulls each parameter hardest (rows with cycle residuals map to entries)
    from dse.model.predict import predict

    rows = []
    for e in entries:
        rows.append(e)
        if predict(e, wl, board, c, log.path).free_cycles is not None:
            rows.append(e)
    if not res.success:
        worst = rows[int(np.argmax(np.abs(res.fun)))]
        raise DseError(f"{_where(log, worst)}: expected a fit that converges, least squares "
                       f"stopped: {res.message}")
    for i, name in enumerate(params):
        v = float(res.x[i])
        # a parameter whose default is its lower bound (a term not modelled by default, such
        # as run_burst_us = 0) may stay there: the data say the term is absent
        end = bound_of(name, v)
        at_bound = (end == "low" and not math.isclose(x0[i], lo[i], abs_tol=1e-12)) or (
            end == "high")
        why = param_range_error(name, v)
        if at_bound or why:
            worst = rows[int(np.argmax(np.abs(jac[:, i])))]
            raise DseError(f"{_where(log, worst)}: expected a physically plausible fit, "
                           f"{name} went to {v:.4g} (its bound: {lo[i]:g}..{hi[i]:g}); the "
                           f"model cannot explain this entry with that parameter, no "
                           f"calibration written")
    stderr, cov = _covariance(res, len(params))
    fitted = {p: FittedParam(float(v), s, float(d))
              for p, v, s, d in zip(params, res.x, stderr, x0, strict=True)}
    known = [i for i, s in enumerate(stderr) if s is not None]
    covariance = {} if cov is None else {
        params[i]: {params[j]: float(cov[i, j]) for j in known} for i in known}
    return fitted, float(res.cost), str(res.message), covariance


def fit_log(log, wl, board: Board, c: CostConstants, held_out: bool = True,
            progress=None) -> LogFit:
    """Fit the model's free parameters to a measurement log (pure; see dse.model.predict).

    Entries the model prices and that are marked ``fit`` are fitted; priced entries with
    ``fit: false`` are checked only; entries with parts (``part_of``) are composed from their
    parts, modelled where priced and measured where not, with the measured fraction stated.
    ``progress(evaluations, 0)`` is told, a few times a second, how many times the model has
    been evaluated over the log (the fit, the held-out and leave-one-out refits).
    """
    from dse.model.predict import shared_operator_parts

    token = _PROGRESS.set([0, progress, time.monotonic()]) if progress else None
    try:
        with shared_operator_parts():
            return _fit_log(log, wl, board, c, held_out)
    finally:
        if token is not None:
            _PROGRESS.reset(token)


def _fit_log(log, wl, board: Board, c: CostConstants, held_out: bool) -> LogFit:
    from dse.model.predict import in_unit, predict

    allowed = source_params(log.config.backend)
    parts = parts_of(log)
    status: dict[str, tuple[str, str]] = {}
    fit_entries = []
    for e in log.entries:
        if e.id in parts:
            status[e.id] = ("composed", "")
            continue
        p = predict(e, wl, board, c, log.path)
        if not p.priced:
            status[e.id] = ("not priced", p.why)
        elif e.fit:
            status[e.id] = ("fitted", "")
            fit_entries.append(e)
        else:
            status[e.id] = ("checked", "fit: false in the log")
    params, cost, message, covariance = ({}, 0.0, "no entry to fit", {})
    probed = _Probed(log, fit_entries, wl, board, c, allowed) if fit_entries else None
    if fit_entries:
        params, cost, message, covariance = _least_squares(log, fit_entries, wl, board, c,
                                                           allowed, probed)
        for e in fit_entries:
            if not _moved_by(log, e, wl, board, c, tuple(params), probed):
                status[e.id] = ("checked", "no fitted parameter moves it")
    b1, c1 = apply_params(board, c, {k: p.value for k, p in params.items()})

    memos: dict[int, dict] = {}  # one per parameter set: entries share their projections

    def pred_s(e, b, cc):
        return predict(e, wl, b, cc, log.path, memos.setdefault(id(cc), {})).time_s

    results = []
    for e in log.entries:
        st, why = status[e.id]
        before = after = frac = None
        if st in ("fitted", "checked"):
            before = in_unit(e, pred_s(e, board, c), log.path)
            after = in_unit(e, pred_s(e, b1, c1), log.path)
        elif st == "composed":
            before, _ = _compose(log, e, wl, board, c, parts[e.id])
            after, frac = _compose(log, e, wl, b1, c1, parts[e.id])
            before, after = in_unit(e, before, log.path), in_unit(e, after, log.path)
            why = f"parts: {', '.join(x.id for x in parts[e.id])}"
        results.append(EntryResult(e.id, e.kind, e.what, e.unit, e.value, st, why, before,
                                   after, frac))
    held = None
    if held_out:
        # what no fitted parameter moves says nothing held out: only fitted entries take part
        moved = [e for e in fit_entries if status[e.id][0] == "fitted"]
        train, test, alone = half_split(log, moved, wl, board, c, allowed, probed)
        held = _held_out(log, moved, wl, board, c, allowed, split=(train, test),
                         probed=probed)
        if held is not None:
            held["alone"] = [e.id for e in alone]
            lone = {id(e) for e in alone}
            eligible = [e for e in moved if id(e) not in lone]
            targets = spread(eligible, LOO_MAX_TARGETS)
            start = None
            if len(targets) < len(eligible):
                # a large log: a sample of refits, each from the full fit (its parameters
                # and values) rather than chosen afresh from the defaults
                held["leave_one_out_of"] = len(eligible)
                start = {k: p.value for k, p in params.items()}
            held["leave_one_out"] = _leave_one_out(log, moved, targets, wl, board, c, allowed,
                                                   probed, start)
    return LogFit(params, tuple(results), held, cost, message, covariance)


#: Most entries a leave-one-out check refits for (each is a whole fit): a log with more
#: eligible entries gets this many, spread evenly over them, and says so.
LOO_MAX_TARGETS = 20


def spread(items: list, most: int) -> list:
    """At most ``most`` of ``items``, evenly spread over them (all when there are fewer)."""
    if len(items) <= most:
        return list(items)
    return [items[(i * len(items)) // most] for i in range(most)]


def parts_of(log) -> dict[str, list]:
    """Each entry with parts, and its parts in log order (built once: linear in the log)."""
    out: dict[str, list] = {}
    for e in log.entries:
        if e.part_of is not None:
            out.setdefault(e.part_of, []).append(e)
    return out


def _compose(log, total, wl, board, c, parts: list) -> tuple[float, float]:
    """A composed time for ``total`` (s) and the fraction of it taken from measurements.

    Parts the model prices take its prediction; parts it does not, and the remainder the
    parts do not account for, take the measured values.
    """
    from dse.model.predict import measured_s, predict

    modelled = priced_measured = 0.0
    for part in parts:
        p = predict(part, wl, board, c, log.path)
        if p.priced:
            modelled += p.time_s
            priced_measured += measured_s(part, log.path)
    from_measurement = measured_s(total, log.path) - priced_measured
    composed = modelled + from_measurement
    return composed, from_measurement / composed


def half_split(log, entries, wl, board, c, allowed, probed: _Probed | None = None):
    """(train, test, alone): entries that constrain the same parameters alternate between
    the halves; an entry whose parameters no other entry constrains cannot be held out (it
    is the only evidence for them), so it trains and is listed as ``alone``."""
    x0 = np.clip(np.array([default_value(p, board, c) for p in allowed], dtype=float),
                 [BOUNDS[p][0] for p in allowed], [BOUNDS[p][1] for p in allowed])
    lo = np.array([BOUNDS[p][0] for p in allowed])
    hi = np.array([BOUNDS[p][1] for p in allowed])
    groups: dict[tuple[str, ...], list] = {}
    for e in entries:
        if probed is not None and probed.exact and probed.allowed == tuple(allowed) \
                and probed.has(e):
            moves = probed.sensitive([e])
        else:
            moves = _sensitive(_residual_fn(log, [e], wl, board, c, allowed), allowed, x0,
                               lo, hi)
        key = tuple(p for p, k in zip(allowed, moves, strict=True) if k)
        groups.setdefault(key, []).append(e)
    train, test, alone = [], [], []
    for group in groups.values():
        if len(group) < 2:
            train += group
            alone += group
        else:
            train += group[0::2]
            test += group[1::2]
    return train, test, alone


def _leave_one_out(log, entries, targets, wl, board, c, allowed,
                   probed: _Probed | None = None, start: dict | None = None
                   ) -> dict[str, dict]:
    """Each of ``targets`` predicted by a fit to all the other entries (None where that fit
    failed). Entries that are the only evidence for their parameters are not targets: left
    out, they would only be predicted at the defaults. ``start``: refit exactly these
    parameters from these values."""
    out = {}
    for e in targets:
        rest = [x for x in entries if x is not e]
        got = _held_out(log, [*rest, e], wl, board, c, allowed, split=(rest, [e]),
                        probed=probed, start=start)
        out[e.id] = {"error": (got or {}).get("errors", {}).get(e.id),
                     "params": sorted((got or {}).get("params", {}))}
    return out


def _held_out(log, entries, wl, board, c, allowed, split=None,
              probed: _Probed | None = None, start: dict | None = None) -> dict | None:
    """Fit on every other fitted entry, predict the rest with what that fit learned."""
    from dse.errors import DseError
    from dse.model.predict import in_unit, predict

    train, test = split or (list(entries[0::2]), list(entries[1::2]))
    if not train or not test:
        return None
    try:
        params, _, _, _ = _least_squares(log, train, wl, board, c, allowed, probed, start)
    except DseError as exc:
        return {"train": [e.id for e in train], "test": [e.id for e in test],
                "failed": str(exc)}
    b, cc = apply_params(board, c, {k: p.value for k, p in params.items()})
    errors = {e.id: in_unit(e, predict(e, wl, b, cc, log.path).time_s, log.path) / e.value - 1
              for e in test}
    a = [abs(v) for v in errors.values()]
    return {"train": [e.id for e in train], "test": [e.id for e in test],
            "params": {k: p.value for k, p in params.items()}, "errors": errors,
            "max_abs_rel_error": max(a), "mean_abs_rel_error": sum(a) / len(a)}
