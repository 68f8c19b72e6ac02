"""Fitting the cost model's free parameters to measured calls (pure; scipy least squares).

Each ``Measurement`` is one layer run on an engine (the board, or its RTL in simulation): the
median wall time per call, and where the backend reads them, the PL's busy and stall cycles.
``fit`` adjusts named parameters (see ``dse.model.calibration``) so that the model's predicted
call times match, in relative terms, and reports each parameter's standard error (from the
Jacobian) and the model's error before and after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from dse.model.board import Board
from dse.model.calibration import FittedParam, apply_params, default_value
from dse.model.constants import CostConstants
from dse.model.cost import call_cost
from dse.model.engine import EngineDesign, engine_cycles

#: Bounds of each fittable parameter (physical ranges, not guesses of the answer).
BOUNDS = {
    "ddr_pl_efficiency": (0.05, 1.0),
    "per_call_overhead_us": (0.0, 1e5),
    "pipeline_latency_cycles": (0.0, 1e5),
    "rescale_ns_per_elem": (0.0, 1e4),
    "dma_setup_us": (0.0, 1e5),
}
DEFAULT_PARAMS = ("ddr_pl_efficiency", "per_call_overhead_us", "pipeline_latency_cycles")


@dataclass(frozen=True)
class Measurement:
    """One layer measured on an engine: median wall time per call and PL cycle counters."""

    layer: str
    n: int
    k: int
    m: int
    design: EngineDesign
    weight_bytes: int
    wall_s: float
    wall_spread_s: float = 0.0
    busy_cycles: int | None = None
    stall_cycles: int | None = None
    repeats: int = 1
    dense: str | None = None


@dataclass(frozen=True)
class FitResult:
    """Fitted values, their errors, and the per-measurement errors before and after."""

    params: dict[str, FittedParam]
    before: tuple[float, ...]
    after: tuple[float, ...]
    predicted_before_s: tuple[float, ...]
    predicted_after_s: tuple[float, ...]
    cost: float
    success: bool
    message: str

    @staticmethod
    def summary(errors: Sequence[float]) -> dict[str, float]:
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
                         d.vectors, d.stream_bits // 8, round(c.pipeline_latency_cycles))


def rel_errors(ms: Sequence[Measurement], board: Board, c: CostConstants) -> list[float]:
    """(predicted - measured) / measured wall time, per measurement."""
    return [predict_s(m, board, c) / m.wall_s - 1.0 for m in ms]


def fit(ms: Sequence[Measurement], board: Board, c: CostConstants,
        params: Sequence[str] = DEFAULT_PARAMS) -> FitResult:
    """Least-squares fit of ``params`` to the measurements' wall times and busy cycles."""
    if not ms:
        raise ValueError("fit: no measurements")
    for name in params:
        if name not in BOUNDS:
            raise ValueError(f"fit: {name} is not a fittable parameter")
    x0 = np.array([default_value(p, board, c) for p in params], dtype=float)
    lo = np.array([BOUNDS[p][0] for p in params])
    hi = np.array([BOUNDS[p][1] for p in params])
    x0 = np.clip(x0, lo, hi)
    with_cycles = [m for m in ms if m.busy_cycles is not None and m.stall_cycles is not None]

    def residuals(x: np.ndarray) -> np.ndarray:
        b, cc = apply_params(board, c, dict(zip(params, x, strict=True)))
        r = [predict_s(m, b, cc) / m.wall_s - 1.0 for m in ms]
        # Stall-free cycles pin the pipeline latency exactly where the RTL is simulated.
        for m in with_cycles:
            free = m.busy_cycles - m.stall_cycles
            d = m.design
            model = (engine_cycles(math.ceil(m.n / d.engines), m.k, m.m, d.pe, d.simd,
                                   d.vectors, d.stream_bits // 8, 0)
                     + math.ceil(m.m / d.vectors) * cc.pipeline_latency_cycles)
            r.append(model / max(1, free) - 1.0)
        return np.asarray(r)

    # Parameters live on very different scales (0.75 vs 60 us vs 24 cycles): let scipy scale.
    res = least_squares(residuals, x0, bounds=(lo, hi), x_scale="jac", method="trf")
    stderr = _stderr(res, len(params))
    fitted = {p: FittedParam(float(v), s, float(d))
              for p, v, s, d in zip(params, res.x, stderr, x0, strict=True)}
    b1, c1 = apply_params(board, c, dict(zip(params, res.x, strict=True)))
    return FitResult(
        params=fitted,
        before=tuple(rel_errors(ms, board, c)), after=tuple(rel_errors(ms, b1, c1)),
        predicted_before_s=tuple(predict_s(m, board, c) for m in ms),
        predicted_after_s=tuple(predict_s(m, b1, c1) for m in ms),
        cost=float(res.cost), success=bool(res.success), message=str(res.message))


def _stderr(res, nparams: int) -> list[float | None]:
    """Standard errors from the Jacobian: sqrt(diag(inv(J'J)) * s^2); None where unidentified."""
    jac = np.asarray(res.jac, dtype=float)
    dof = max(1, jac.shape[0] - nparams)
    s2 = 2.0 * res.cost / dof
    jtj = jac.T @ jac
    out: list[float | None] = []
    try:
        cov = np.linalg.pinv(jtj) * s2
    except np.linalg.LinAlgError:
        return [None] * nparams
    for i in range(nparams):
        if not np.any(jac[:, i]):
            out.append(None)  # the measurements do not constrain this parameter
        else:
            out.append(float(math.sqrt(max(0.0, cov[i, i]))))
    return out
