"""The calibration flow, the same for every backend.

pick layers -> get weights (loaded, or random ternary of the right shapes) -> run each unique
shape for decode (M=1) and a prefill M, ``repeats`` times -> check every result bit-exactly
against the golden model -> ``Measurement``s (median wall time, spread, PL cycles) -> a
measurement log holding only what the backend measured -> the same log fit ``dse calibrate
--from`` runs -> a ``Calibration``. Nothing here writes files: the command does, atomically,
only after every step has succeeded.
"""

from __future__ import annotations

import fnmatch
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from dse.errors import DseError
from dse.hw.backend import Backend, Job, PsMeasurement, Run
from dse.model.board import Board
from dse.model.calibration import Calibration
from dse.model.engine import EngineDesign
from dse.model.measurement_log import LogConfig, LogEntry, Measurement, MeasurementLog
from dse.model.workload import Layer, Workload
from dse.packing.quant import golden_gemv

if TYPE_CHECKING:
    from dse.model.fit import LogFit


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
            progress: Callable[[int, int], None] | None = None,
            log: Callable[[str], None] | None = None) -> list[Measurement]:
    """Run, verify and summarise every job (median wall time per call, spread, cycles);
    ``progress(done, total)`` counts simulated or measured calls as the backend reports
    them, ``log`` takes its one-line notes (a simulator build)."""
    import inspect

    takes = inspect.signature(backend.run).parameters
    kw = {k: v for k, v in (("progress", progress), ("log", log)) if k in takes}
    runs = backend.run(jobs, repeats, **kw)
    if len(runs) != len(jobs):
        raise DseError(f"{backend.name}: expected {len(jobs)} job results, got {len(runs)}")
    packing = design.packing_spec
    out = []
    for job, job_runs in zip(jobs, runs, strict=True):
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
    return out


def log_from_measurements(ms: Sequence[Measurement], backend: str, board: Board,
                          design: EngineDesign, provenance: dict,
                          ps: Sequence[PsMeasurement] = ()) -> MeasurementLog:
    """The measurement log of a backend run: what it measured, and only that.

    The sim backend measured the RTL's busy and stall cycles (with the board's DDR modelled
    at the stream), not a wall time: its entries are cycles of the PL's busy span. A board
    measured wall time per call (with the cycle counters) and, on its PS, the same layers.
    """
    sim = backend == "sim"
    cfg = LogConfig(
        board=board.name, backend="sim" if sim else "pynq",
        engine={"pe": design.pe, "simd": design.simd, "packing": design.packing,
                "engines": design.engines, "clock_mhz": design.clock_mhz,
                "vectors": design.vectors, "stream_bits": design.stream_bits,
                "max_k": design.max_k, "vectors_per_clock": design.vectors_per_clock},
        bitstream=provenance.get("bitstream") or provenance.get("rtl_build"),
        bitstream_sha256=provenance.get("bitstream_sha256"),
        pl_clock_mhz=design.clock_mhz, ps_clock_mhz=board.ps_cpu.clock_mhz,
        runtime="dse.hw " + ("sim_backend (Verilator)" if sim else "pynq_driver"),
        notes="; ".join(f"{k}: {v}" for k, v in provenance.items()
                        if isinstance(v, (str, int, float)) and k not in (
                            "bitstream", "bitstream_sha256")))
    source = f"dse calibrate --backend {backend}"
    entries = []
    for meas in ms:
        ints = {"n": meas.n, "k": meas.k, "m": meas.m, "weight_bytes": meas.weight_bytes,
                "repeats": meas.repeats}
        if meas.busy_cycles is not None and meas.stall_cycles is not None:
            ints.update(busy_cycles=meas.busy_cycles, stall_cycles=meas.stall_cycles)
        eid = f"{meas.layer} M={meas.m}"
        if sim:
            entries.append(LogEntry(eid, "call", meas.layer, float(max(1, meas.busy_cycles)),
                                    "cycles", source, cfg, span="busy", per="call", ints=ints,
                                    note="simulated: RTL busy cycles, DDR supply modelled"))
        else:
            entries.append(LogEntry(eid, "call", meas.layer, meas.wall_s * 1e3, "ms", source,
                                    cfg, per="call", ints=ints,
                                    spread=meas.wall_spread_s * 1e3 or None,
                                    note="median wall time of the call, quantize included"))
    for p in ps:
        entries.append(LogEntry(
            f"ps {p.layer} M={p.m}", "layer", p.layer, p.wall_s * 1e3, "ms", source,
            replace(cfg, engine=None, runtime=p.runtime, threads=p.threads), device="ps",
            per="call", spread=p.spread_s * 1e3 or None,
            ints={"n": p.n, "k": p.k, "m": p.m, "repeats": p.repeats},
            note="the same layer on the PS (the on-board CPU baseline), checked bit-exactly"))
    return MeasurementLog(f"dse calibrate --backend {backend} on {board.name}", cfg,
                          tuple(entries), source=source,
                          created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def calibration_from_fit(res: LogFit, log: MeasurementLog, board: Board, provenance: dict
                         ) -> Calibration:
    """Package a log fit as a ``Calibration`` (per-entry errors included)."""
    from dse.model.fit import source_params

    prov = dict(provenance)
    prov.setdefault("log", log.path or "(written by this run)")
    if log.sha256:
        prov.setdefault("log_sha256", log.sha256)
    prov["fitted_from"] = (f"{len(res.fitted())} {log.config.backend} entries; parameters a "
                           f"{log.config.backend} log can inform: "
                           + ", ".join(source_params(log.config.backend)))
    return Calibration(
        board=board.name, backend=log.config.backend,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        params=res.params, provenance=prov, error_before=res.summary("before"),
        error_after=res.summary("after"),
        per_entry=tuple(r.to_dict() for r in res.entries), covariance=res.covariance)


@dataclass(frozen=True)
class EndToEnd:
    """The recommended plan's decode token: projected before and after the calibration, and
    composed from the run, all at one scenario (the plan's own, as the answer card prices it).

    ``composed_ms`` takes, for each offloaded layer whose shape was run at M=1, what the run
    produced (a board's measured wall time, or a simulation's busy time plus the model's
    overhead and PS-side terms), and the calibrated projection for everything else.
    ``run_fraction`` is the share of ``composed_ms`` that came from those runs: the rest is
    the model's. ``kind`` says what the runs were: "measured" (a board) or "simulated".
    ``as_built`` is True when the run's engine is not the plan's (``--sim-*`` overrides, an
    overlay of another build): then every figure is of the plan on the engine as built
    (``design``). A board's measured calls were launched by dse's Python PYNQ driver; a plan
    under the ``native`` runtime projects a C driver's launch, so the two differ by that
    launch (``launch_differs``).
    """

    plan: str
    plan_id: str
    design: str
    scenario: dict
    baseline_runtime: str
    baseline_kv: str
    baseline_ms: float
    projected_before_ms: float
    projected_after_ms: float
    composed_ms: float
    run_ms: float
    run_layers: int
    offloaded_layers: int
    kind: str
    as_built: bool = False
    launch_differs: bool = False

    @property
    def run_fraction(self) -> float:
        return self.run_ms / self.composed_ms if self.composed_ms > 0 else 0.0

    def speedup(self, ms: float) -> float:
        return self.baseline_ms / ms if ms > 0 else float("inf")


def _same_engine(a: EngineDesign, b: EngineDesign) -> bool:
    """Whether two designs are one engine (the overlay's verdict and the head aside)."""
    keys = ("pe", "simd", "packing", "engines", "vectors", "stream_bits", "clock_mhz")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def end_to_end(wl: Workload, plan, built: EngineDesign, ms: Sequence[Measurement],
               ctx_before, ctx_after, kind: str = "measured", scenario=None) -> EndToEnd:
    """Project ``plan`` at ``scenario`` (default: decode at 256 tokens of context) before and
    after the calibration, and compose its token from the run's layer times."""
    from dse.model.project import Scenario, project
    from dse.model.scenario import scenario_key

    target = plan
    as_built = not _same_engine(built, plan.design)
    if as_built:  # the run measured another engine: the plan's layers on that engine
        target = replace(plan, design=replace(built, head=None, head_macs=0, resident_bytes=0),
                         resident=frozenset())
    sc = scenario or Scenario(kv_dtype=plan.kv_dtype or "fp16")
    before = project(wl, target, ctx_before, sc)
    after = project(wl, target, ctx_after, sc)
    from dse.model.fit import predict_s

    ran = {(m.n, m.k): m for m in ms if m.m == 1}
    total = after.ops_ms
    run_ms = 0.0
    hit = 0
    for row in after.layers:
        m = ran.get((row.n, row.k)) if row.placement != "cpu" else None
        if m is None:
            total += row.time_ms
            continue
        if kind == "simulated":
            # a simulation ran the PL's busy span only: the call's overhead and PS-side work
            # stay the (calibrated) model's, the layer's share of its call's
            call = after.calls[row.call]
            got = m.wall_s * 1e3
            total += got + (call.overhead_s + call.ps_s) * 1e3 * row.n / call.n
        else:
            # a board ran each layer as its own call (launch included); the plan may fuse it
            # with others: the layer's projected time scaled by how its measured call
            # compared with the calibrated model's prediction of that call
            got = row.time_ms * m.wall_s / predict_s(m, ctx_after.board, ctx_after.constants)
            total += got
        run_ms += got
        hit += 1
    base = after.baseline
    return EndToEnd(plan.name, target.identity, target.design.label(),
                    scenario_key(after.scenario, "none"), base.runtime, base.kv_dtype,
                    base.ms, before.plan_ms, after.plan_ms, total, run_ms, hit,
                    sum(1 for r in after.layers if r.placement != "cpu"), kind, as_built,
                    kind == "measured" and target.runtime == "native")
