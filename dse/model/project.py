"""Projecting a plan: which layers run where, and the end-to-end time that results.

A ``Plan`` is an engine design plus the set of layers it runs (offload) and the subset whose
weights stay on chip (resident). ``project`` prices it for one ``Scenario`` (view, phase, M)
and returns a ``Projection``: per-layer placement and times, end-to-end baseline and plan
times against two CPU baselines (PyTorch as profiled, and a bitnet.cpp-class kernel on the
same CPU), resources, memory fit and what binds. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dse.errors import DseError
from dse.model.board import Board
from dse.model.calibration import Calibration, resolve_calibration
from dse.model.constants import DEFAULT_CONSTANTS, CostConstants
from dse.model.cost import (
    CallCost,
    CpuSpec,
    bitnetcpp_layer_ms,
    call_cost,
    layer_weight_bytes,
    scale_nonlinear_ms,
    torch_layer_ms,
)
from dse.model.engine import EngineDesign, Resources, engine_resources, link_limit_error
from dse.model.packing import get_packing
from dse.model.workload import Layer, Workload

VIEWS = ("on-board", "host-attached")
VIEW_TEXT = {
    "on-board": "on-board: everything runs on the board; the CPU baseline is the profiled time "
    "scaled to the board's PS by the ratio of the two CPUs' roofline times",
    "host-attached": "host-attached: the FPGA serves the profiled host, which drives it like "
    "the PS would (same link and per-call cost); the CPU baseline is the measured time",
}


@dataclass(frozen=True)
class Plan:
    """An engine design and the layers it runs; ``resident`` layers keep weights on chip."""

    name: str
    design: EngineDesign
    offload: frozenset[str]
    resident: frozenset[str] = frozenset()
    fuse: bool = True
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    """What is projected: the view, the phase and its token count, the context held."""

    view: str = "on-board"
    phase: str = "decode"
    m: int = 1
    context_tokens: int = 256


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
    """Where one layer runs and what it costs there (ms per forward of the scenario)."""

    name: str
    role: str
    n: int
    k: int
    placement: str
    baseline_ms: float
    bitnetcpp_ms: float
    time_ms: float
    call: str | None = None
    bound: str | None = None


@dataclass(frozen=True)
class Projection:
    """A plan priced for one scenario on one board."""

    plan: Plan
    board: str
    scenario: Scenario
    calibration: str
    layers: tuple[LayerProjection, ...]
    calls: dict[str, CallCost]
    nonlinear_ms: float
    baseline_ms: float
    plan_ms: float
    bitnetcpp_ms: float
    plan_bitnetcpp_ms: float
    resources: Resources
    utilization: dict[str, float]
    memory_bytes: int
    memory_capacity_bytes: int
    ddr_weight_bytes: int
    ddr_floor_ms: float
    infeasible: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def speedup(self) -> float:
        """Speedup over the PyTorch baseline (measured, or scaled to the PS)."""
        return self.baseline_ms / self.plan_ms if self.plan_ms > 0 else math.inf

    @property
    def speedup_vs_bitnetcpp(self) -> float:
        """Speedup over a bitnet.cpp-class kernel running every layer on the same CPU."""
        return self.bitnetcpp_ms / self.plan_bitnetcpp_ms if self.plan_bitnetcpp_ms else math.inf

    @property
    def feasible(self) -> bool:
        return not self.infeasible

    @property
    def bound(self) -> str:
        """What limits the plan: the bound holding the most accelerator time, or 'cpu'."""
        fpga_ms = {b: 0.0 for b in ("compute", "ddr", "link", "overhead")}
        for call in self.calls.values():
            fpga_ms[call.bound] += call.time_s * 1e3
        cpu_ms = self.nonlinear_ms + sum(p.time_ms for p in self.layers if p.placement == "cpu")
        top = max(fpga_ms, key=fpga_ms.__getitem__)
        return "cpu (Amdahl)" if cpu_ms >= fpga_ms[top] else top


def _cpus(wl: Workload, board: Board, view: str) -> tuple[CpuSpec, CpuSpec]:
    host = CpuSpec.of_host(wl.host)
    return host, (host if view == "host-attached" else CpuSpec.of_board(board))


def baseline_layer_ms(wl: Workload, board: Board, ctx: CostContext, scenario: Scenario
                      ) -> dict[str, tuple[float, float]]:
    """Per layer: (PyTorch ms, bitnet.cpp-class ms) on the CPU of the scenario's view."""
    host, cpu = _cpus(wl, board, scenario.view)
    c, m = ctx.constants, scenario.m
    return {layer.name: (torch_layer_ms(layer, m, host, cpu, wl.dtype_bytes, c),
                         bitnetcpp_layer_ms(layer, m, cpu))
            for layer in wl.layers}


def group_calls(layers: list[Layer], fuse: bool) -> dict[str, list[Layer]]:
    """Offloaded layers grouped into accelerator calls (fused groups share one input)."""
    calls: dict[str, list[Layer]] = {}
    for layer in layers:
        key = layer.fuse_key if fuse and layer.ternary else layer.name
        calls.setdefault(key, []).append(layer)
    return calls


def memory_bytes(wl: Workload, plan: Plan, ctx: CostContext, scenario: Scenario) -> int:
    """DDR bytes the plan needs on the board.

    On-board: every ternary layer (offloaded ones in the engine's packing, the rest in 2-bit
    for the CPU kernel), the lm_head in bf16 (tied to the embedding, so held once), the KV
    cache for the context, and the runtime. Host-attached: only what the FPGA reads.
    """
    design = plan.design
    i2 = get_packing("i2")
    total = 0
    for layer in wl.layers:
        if layer.name in plan.offload:
            total += layer_weight_bytes(layer, design)
            if not layer.ternary and design.head == "int8" and scenario.view == "on-board":
                total += layer.weights * 2  # the bf16 embedding stays for the lookup
        elif scenario.view == "on-board":
            total += i2.matrix_bytes(layer.n, layer.k) if layer.ternary else layer.weights * 2
    if scenario.view == "on-board":
        total += wl.kv_bytes_per_token * scenario.context_tokens + int(ctx.constants.runtime_bytes)
    return int(total)


def project(wl: Workload, plan: Plan, ctx: CostContext, scenario: Scenario = Scenario(),
            baselines: dict[str, tuple[float, float]] | None = None) -> Projection:
    """Price ``plan`` for ``scenario`` (pure). ``baselines`` may be passed in to save time."""
    board, c, design = ctx.board, ctx.constants, plan.design
    base = baselines or baseline_layer_ms(wl, board, ctx, scenario)
    m = scenario.m
    offloaded = [layer for layer in wl.layers if layer.name in plan.offload]
    infeasible: list[str] = []
    if any(not layer.ternary for layer in offloaded) and not design.head:
        infeasible.append("lm_head is bf16, not ternary: it needs a dense head unit (head: int8 "
                          "or bf16)")
    calls: dict[str, CallCost] = {}
    call_of: dict[str, str] = {}
    for key, group in group_calls(offloaded, plan.fuse).items():
        n = sum(layer.n for layer in group)
        streamed = sum(0 if layer.name in plan.resident else layer_weight_bytes(layer, design)
                       for layer in group)
        dense = None if group[0].ternary else (design.head or "bf16")
        calls[key] = call_cost(design, board, c, n=n, k=group[0].k, m=m,
                               weight_bytes=streamed, dense=dense)
        for layer in group:
            call_of[layer.name] = key
    rows = []
    for layer in wl.layers:
        b_ms, bc_ms = base[layer.name]
        if layer.name in call_of:
            key = call_of[layer.name]
            call = calls[key]
            share = layer.n / call.n
            placement = "fpga-resident" if layer.name in plan.resident else "fpga"
            rows.append(LayerProjection(layer.name, layer.role, layer.n, layer.k, placement, b_ms,
                                        bc_ms, call.time_s * 1e3 * share, key, call.bound))
        else:
            rows.append(LayerProjection(layer.name, layer.role, layer.n, layer.k, "cpu", b_ms,
                                        bc_ms, b_ms))
    host, cpu = _cpus(wl, board, scenario.view)
    nonlinear = scale_nonlinear_ms(wl.nonlinear_ms, host, cpu, c)
    fpga_ms = sum(call.time_s for call in calls.values()) * 1e3
    cpu_torch = sum(r.baseline_ms for r in rows if r.placement == "cpu")
    cpu_bc = sum(r.bitnetcpp_ms for r in rows if r.placement == "cpu")
    baseline_ms = sum(r.baseline_ms for r in rows) + nonlinear
    bitnetcpp_ms = sum(r.bitnetcpp_ms for r in rows) + nonlinear
    # resources and fit
    resident_bytes = sum(layer_weight_bytes(layer, design) for layer in offloaded
                         if layer.name in plan.resident)
    if resident_bytes > design.resident_bytes:
        infeasible.append(f"resident weights {resident_bytes:,} B exceed the engine's on-chip "
                          f"buffer {design.resident_bytes:,} B")
    res = engine_resources(design, board, c)
    infeasible += res.overflow(board)
    if (err := link_limit_error(design, board)) is not None:
        infeasible.append(err)
    mem = memory_bytes(wl, plan, ctx, scenario)
    if mem > board.ddr.capacity_bytes:
        infeasible.append(f"memory: plan needs {mem / 2**20:,.0f} MiB of DDR, board has "
                          f"{board.ddr.capacity_bytes / 2**20:,.0f} MiB")
    ddr_weight = sum(call.weight_bytes for call in calls.values())
    floor_ms = ddr_weight / (board.ddr.peak_bandwidth_gb_s * 1e9) * 1e3
    return Projection(
        plan=plan, board=board.name, scenario=scenario, calibration=ctx.calibration,
        layers=tuple(rows), calls=calls, nonlinear_ms=nonlinear, baseline_ms=baseline_ms,
        plan_ms=cpu_torch + fpga_ms + nonlinear, bitnetcpp_ms=bitnetcpp_ms,
        plan_bitnetcpp_ms=cpu_bc + fpga_ms + nonlinear, resources=res,
        utilization=res.utilization(board), memory_bytes=mem,
        memory_capacity_bytes=board.ddr.capacity_bytes, ddr_weight_bytes=ddr_weight,
        ddr_floor_ms=floor_ms, infeasible=tuple(infeasible), notes=_notes(wl, scenario))


def _notes(wl: Workload, scenario: Scenario) -> tuple[str, ...]:
    """The workload's assumptions, plus those a prefill projection adds."""
    if scenario.phase != "prefill":
        return wl.notes
    return (*wl.notes,
            f"prefill of {scenario.m} tokens: host Linear time = max(measured per-call time, "
            f"GEMM at host_gemm_efficiency of peak); non-Linear time per forward taken as the "
            f"decode step's (the profile does not split it), so prefill attention is understated")
