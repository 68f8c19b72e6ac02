"""The calibration flow, the same for every backend.

pick layers -> get weights (loaded, or random ternary of the right shapes) -> run each unique
shape for decode (M=1) and a prefill M, ``repeats`` times -> check every result bit-exactly
against the golden model -> ``Measurement``s (median wall time, spread, PL cycles) -> fit the
cost model -> a ``Calibration``. Nothing here writes files: the command does, atomically,
only after every step has succeeded.
"""

from __future__ import annotations

import fnmatch
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from dse.errors import DseError
from dse.hw.backend import Backend, Job, Run
from dse.model.board import Board
from dse.model.calibration import Calibration
from dse.model.constants import CostConstants
from dse.model.engine import EngineDesign
from dse.model.fit import DEFAULT_PARAMS, FitResult, Measurement, fit
from dse.model.workload import Layer, Workload
from dse.packing.quant import golden_gemv


@dataclass(frozen=True)
class Shape:
    """A unique (N, K) among the chosen layers, and the layers that have it."""

    n: int
    k: int
    layers: tuple[str, ...]

    @property
    def label(self) -> str:
        role = self.layers[0].rsplit(".", 1)[-1]
        return f"{role} {self.n}x{self.k}"


def select_layers(wl: Workload, names: Iterable[str] | None = None, glob: str | None = None,
                  where: str = "--layers") -> list[Layer]:
    """The ternary layers to measure: by explicit names (a plan's offload set) or a glob."""
    ternary = [layer for layer in wl.layers if layer.ternary]
    if glob is not None:
        chosen = [layer for layer in ternary if fnmatch.fnmatchcase(layer.name, glob)]
        if not chosen:
            raise DseError(f"{where}: expected a glob matching ternary Linear layers, "
                           f"{glob!r} matches none")
        return chosen
    if names is not None:
        wanted = set(names)
        chosen = [layer for layer in ternary if layer.name in wanted]
        if not chosen:
            raise DseError(f"{where}: expected the plan to offload ternary layers, it has none")
        return chosen
    return ternary


def unique_shapes(layers: Sequence[Layer]) -> list[Shape]:
    """Layers grouped by (N, K), in first-seen order: equal shapes cost the same."""
    seen: dict[tuple[int, int], list[str]] = {}
    for layer in layers:
        seen.setdefault((layer.n, layer.k), []).append(layer.name)
    return [Shape(n, k, tuple(names)) for (n, k), names in seen.items()]


def random_ternary(n: int, k: int, rng: np.random.Generator, zero_fraction: float = 0.4
                   ) -> np.ndarray:
    """Random weights in {-1, 0, 1} with BitNet-like sparsity."""
    p = (1 - zero_fraction) / 2
    return rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(n, k), p=[p, zero_fraction, p])


def make_jobs(shapes: Sequence[Shape], m_values: Sequence[int], vectors: int, seed: int = 0,
              weights: dict[str, np.ndarray] | None = None) -> list[Job]:
    """One job per shape and M, with weights loaded (by the shape's first layer) or random."""
    rng = np.random.default_rng(seed)
    jobs = []
    for shape in shapes:
        w = None
        if weights is not None:
            w = next((weights[name] for name in shape.layers if name in weights), None)
        if w is None:
            w = random_ternary(shape.n, shape.k, rng)
        for m in m_values:
            x = rng.integers(-128, 128, size=(m, shape.k), dtype=np.int8)
            jobs.append(Job(shape.layers[0], w, x, min(vectors, m)))
    return jobs


def check_result(job: Job, run: Run, repeat: int) -> None:
    """Bit-exact comparison with the golden int GEMV; a mismatch names the layer."""
    expected = golden_gemv(job.w, job.x)
    got = np.asarray(run.y)
    if got.shape != expected.shape:
        raise DseError(f"{job.layer} (M={job.m}, repeat {repeat + 1}): expected results of "
                       f"shape {expected.shape} from the overlay, got {got.shape}")
    bad = np.argwhere(got != expected)
    if bad.size:
        v, r = (int(i) for i in bad[0])
        raise DseError(f"{job.layer} (M={job.m}, repeat {repeat + 1}): expected results equal "
                       f"to the golden model, {len(bad)} of {expected.size} differ (first at "
                       f"vector {v}, row {r}: got {int(got[v, r])}, expected "
                       f"{int(expected[v, r])})")


def check_design(built: EngineDesign, planned: EngineDesign | None) -> None:
    """The overlay must be the engine the plan assumes (lanes and packing)."""
    if planned is None:
        return
    for name in ("pe", "simd", "packing"):
        a, b = getattr(built, name), getattr(planned, name)
        if a != b:
            raise DseError(f"overlay: {name}: expected {b!r} (the plan's engine), the IP "
                           f"reports {a!r}")


def measure(backend: Backend, jobs: Sequence[Job], repeats: int, design: EngineDesign,
            progress: Callable[[int, int], None] | None = None) -> list[Measurement]:
    """Run, verify and summarise every job (median wall time per call, spread, cycles)."""
    runs = backend.run(jobs, repeats)
    if len(runs) != len(jobs):
        raise DseError(f"{backend.name}: expected {len(jobs)} job results, got {len(runs)}")
    packing = design.packing_spec
    out = []
    for i, (job, job_runs) in enumerate(zip(jobs, runs, strict=True)):
        for r, run in enumerate(job_runs):
            check_result(job, run, r)
        walls = [run.wall_s for run in job_runs]
        med = statistics.median(walls)
        spread = (max(walls) - min(walls)) if len(walls) > 1 else 0.0
        busy = int(statistics.median(run.busy_cycles for run in job_runs))
        stall = int(statistics.median(run.stall_cycles for run in job_runs))
        out.append(Measurement(job.layer, job.n, job.k, job.m, design,
                               packing.matrix_bytes(job.n, job.k), med, spread, busy, stall,
                               len(job_runs)))
        if progress:
            progress(i + 1, len(jobs))
    return out


def fit_calibration(ms: Sequence[Measurement], board: Board, constants: CostConstants,
                    backend: str, provenance: dict, params: Sequence[str] = DEFAULT_PARAMS
                    ) -> tuple[Calibration, FitResult]:
    """Fit and package the result as a ``Calibration`` (with per-measurement errors)."""
    res = fit(ms, board, constants, params)
    per_layer = tuple(
        {"layer": m.layer, "n": m.n, "k": m.k, "m_tokens": m.m, "measured_ms": m.wall_s * 1e3,
         "spread_ms": m.wall_spread_s * 1e3, "busy_cycles": m.busy_cycles,
         "stall_cycles": m.stall_cycles, "projected_before_ms": b * 1e3,
         "projected_after_ms": a * 1e3, "error_before": eb, "error_after": ea}
        for m, b, a, eb, ea in zip(ms, res.predicted_before_s, res.predicted_after_s,
                                   res.before, res.after, strict=True))
    cal = Calibration(
        board=board.name, backend=backend,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        params=res.params, provenance=provenance,
        error_before=FitResult.summary(res.before), error_after=FitResult.summary(res.after),
        per_layer=per_layer)
    return cal, res


def held_out_error(ms: Sequence[Measurement], board: Board, constants: CostConstants,
                   params: Sequence[str] = DEFAULT_PARAMS) -> dict[str, float] | None:
    """Fit on every other shape, predict the rest: the worst relative error on held-out shapes."""
    from dse.model.calibration import apply_params
    from dse.model.fit import predict_s

    shapes = list(dict.fromkeys((m.n, m.k) for m in ms))
    if len(shapes) < 4:
        return None
    train_shapes = set(shapes[::2])
    train = [m for m in ms if (m.n, m.k) in train_shapes]
    test = [m for m in ms if (m.n, m.k) not in train_shapes]
    res = fit(train, board, constants, params)
    b, c = apply_params(board, constants, {k: p.value for k, p in res.params.items()})
    errs = [abs(predict_s(m, b, c) / m.wall_s - 1) for m in test]
    return {"train_shapes": len(train_shapes), "test_shapes": len(shapes) - len(train_shapes),
            "max_abs_rel_error": max(errs), "mean_abs_rel_error": sum(errs) / len(errs)}


@dataclass(frozen=True)
class EndToEnd:
    """A plan run on the measured overlay: projected (before/after calibration) vs measured.

    ``measured_ms`` composes the token time from measured calls: each offloaded layer whose
    shape was measured at M=1 takes its measured median, the others their calibrated
    projection; CPU layers and non-Linear time are the baseline's.
    """

    plan: str
    design: str
    baseline_ms: float
    projected_before_ms: float
    projected_after_ms: float
    measured_ms: float
    measured_layers: int
    offloaded_layers: int

    def speedup(self, ms: float) -> float:
        return self.baseline_ms / ms if ms > 0 else float("inf")


def end_to_end(wl: Workload, plan, built: EngineDesign, ms: Sequence[Measurement],
               ctx_before, ctx_after) -> EndToEnd:
    """Project ``plan``'s offload set on the overlay as built, and compose the measured time."""
    from dataclasses import replace

    from dse.model.project import Scenario, project

    # The overlay's drivers launch calls from Python (the board's per-call figure), which the
    # torch runtime prices; the as-built overlay has no glue unit.
    as_built = replace(plan, design=replace(built, head=None, head_macs=0, resident_bytes=0),
                       offload=frozenset(n for n in plan.offload
                                         if any(la.name == n and la.ternary for la in wl.layers)),
                       resident=frozenset(), fuse=False, glue=None, runtime="torch")
    sc = Scenario()
    before = project(wl, as_built, ctx_before, sc)
    after = project(wl, as_built, ctx_after, sc)
    measured = {(m.n, m.k): m.wall_s * 1e3 for m in ms if m.m == 1}
    total = after.ops_ms
    hit = 0
    for row in after.layers:
        if row.placement == "cpu":
            total += row.time_ms
        elif (row.n, row.k) in measured:
            total += measured[(row.n, row.k)]
            hit += 1
        else:
            total += row.time_ms
    return EndToEnd(plan.name, as_built.design.label(), after.baseline_ms, before.plan_ms,
                    after.plan_ms, total, hit, len(as_built.offload))
