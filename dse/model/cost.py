"""Cost of one accelerator call and of the CPU baselines, as rooflines.

An accelerator call runs one Linear (or a fused group sharing one input) for M vectors. Its
time is ``max(compute, DDR, link) + overhead + PS-side work``: the engine, the DDR reads and
the AXI streams overlap; the per-call launch and the CPU's quantize/rescale/cache work do not.
The largest term names the bound. All functions here are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.engine import EngineDesign, row_split, split_cycles
from dse.model.packing import DENSE_BYTES_PER_WEIGHT
from dse.model.workload import HostSpec, Layer

BOUNDS = ("compute", "ddr", "link", "overhead")


@dataclass(frozen=True)
class CallCost:
    """One accelerator call: its work, its bytes, its times (seconds) and what binds it."""

    n: int
    k: int
    m: int
    cycles: int
    weight_bytes: int
    act_bytes: int
    out_bytes: int
    compute_s: float
    ddr_s: float
    link_s: float
    overhead_s: float
    ps_s: float

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.ddr_s, self.link_s) + self.overhead_s + self.ps_s

    @property
    def bound(self) -> str:
        """The term that binds: the largest overlapped one, or overhead if that is larger."""
        terms = {"compute": self.compute_s, "ddr": self.ddr_s, "link": self.link_s}
        top = max(terms, key=terms.__getitem__)
        return "overhead" if self.overhead_s + self.ps_s > terms[top] else top


def call_cost(design: EngineDesign, board: Board, c: CostConstants, *, n: int, k: int, m: int,
              weight_bytes: int, dense: str | None = None) -> CallCost:
    """Roofline cost of one call computing an N x K layer for M vectors.

    ``weight_bytes`` are the bytes of one pass over the weights read from DDR (0 when they
    are resident on chip); they are read once per pass of ``design.vectors`` tokens.
    ``dense`` ("int8"/"bf16") runs the call on the DSP head unit instead of ternary lanes.
    """
    if min(n, k, m) < 1:
        raise ValueError("call_cost: N, K and M must be >= 1")
    act_w = design.stream_bits // 8
    latency = int(c.pipeline_latency_cycles)
    port_bytes = board.link.port_width_bits / 8
    if dense:
        macs = max(1, design.head_macs)
        cycles = math.ceil(k * m / act_w) + math.ceil(n * k * m / macs) + latency
        passes = 1
        rows = ((0, n),)
    else:
        # The driver's split (row_split): the call takes as long as its busiest engine.
        cycles = max(split_cycles(design, n, k, m, latency))
        passes = math.ceil(m / design.vectors)
        rows = row_split(n, design.pe, design.engines)
    w_bytes = weight_bytes * passes
    # every engine that runs reads the whole activation vectors through its own DMA
    act_bytes = m * k * len(rows)
    out_bytes = m * n * 4
    # one HP port per engine: each stream at the narrower of its width and its port; the
    # busiest engine (most rows) binds
    lane_rate = min(act_w, port_bytes) * design.clock_hz
    if dense:
        # a dense head unit (a what-if: the shipped overlay has none) reads over all ports
        lane_rate = min(design.engines * act_w, board.link.hp_ports * port_bytes
                        ) * design.clock_hz
    share = max(stop - start for start, stop in rows) / n
    link_s = max((w_bytes * share + m * k) / (lane_rate * c.mm2s_efficiency),
                 out_bytes * share / (lane_rate * c.s2mm_efficiency))
    ddr_s = (w_bytes + act_bytes + out_bytes) / board.ddr_bytes_per_s
    overhead_s = (board.link.per_call_overhead_us + c.dma_setup_us) * 1e-6
    ps_s = (m * k * c.quant_ns_per_elem + m * n * c.rescale_ns_per_elem) * 1e-9 + (
        m * k + out_bytes) / c.cache_maint_bytes_per_s
    return CallCost(n, k, m, cycles, w_bytes, act_bytes, out_bytes, cycles / design.clock_hz,
                    ddr_s, link_s, overhead_s, ps_s)


def layer_weight_bytes(layer: Layer, design: EngineDesign) -> int:
    """Bytes of one pass over the layer's weights in the engine's format."""
    if not layer.ternary:
        return layer.weights * DENSE_BYTES_PER_WEIGHT[design.head or "bf16"]
    return design.packing_spec.matrix_bytes(layer.n, layer.k)


# -- CPU baselines ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CpuSpec:
    """A CPU as a roofline: the profiled host, or the board's PS."""

    name: str
    peak_fp32_gflops: float
    memory_bandwidth_gb_s: float
    clock_mhz: float

    @classmethod
    def of_host(cls, host: HostSpec) -> CpuSpec:
        return cls(host.name, host.peak_fp32_gflops, host.memory_bandwidth_gb_s, host.clock_mhz)

    @classmethod
    def of_board(cls, board: Board) -> CpuSpec:
        ps = board.ps_cpu
        return cls(f"{board.name} PS ({ps.cores}x {ps.model})", ps.peak_fp32_gflops,
                   ps.memory_bandwidth_gb_s, ps.clock_mhz)


def roofline_s(flops: float, nbytes: float, cpu: CpuSpec, flops_scale: float = 1.0) -> float:
    """max(compute, memory) time of a kernel on a CPU at its peaks."""
    return max(flops / (cpu.peak_fp32_gflops * 1e9 * flops_scale),
               nbytes / (cpu.memory_bandwidth_gb_s * 1e9))


def torch_layer_ms(layer: Layer, m: int, host: CpuSpec, target: CpuSpec, dtype_bytes: int,
                   c: CostConstants) -> float:
    """Time of the layer in PyTorch (the profiled dtype) on ``target``.

    On the host it is the measured per-call time (M=1) or, for M tokens, the larger of that and
    the GEMM at ``host_gemm_efficiency`` of peak. On another CPU it is scaled by the ratio of
    the two CPUs' roofline times for the same kernel, which keeps PyTorch's measured
    efficiency: ``t_target = t_host x roof_target / roof_host``.
    """
    flops = 2.0 * layer.weights * m
    nbytes = float(layer.weights * dtype_bytes)
    t_host = layer.host_call_ms
    if m > 1:
        t_host = max(t_host, flops / (host.peak_fp32_gflops * 1e9 * c.host_gemm_efficiency) * 1e3)
    if target == host:
        return t_host
    return t_host * roofline_s(flops, nbytes, target) / roofline_s(flops, nbytes, host)


def bitnetcpp_layer_ms(layer: Layer, m: int, cpu: CpuSpec) -> float:
    """A bitnet.cpp-class kernel on ``cpu``: 2-bit weights at memory bandwidth, int8 math.

    Ternary layers stream 2 bits per weight and do int8 work at 4x the fp32 peak (16 int8 vs
    4 fp32 lanes per 128-bit vector); the lm_head streams bf16 at the fp32 peak.
    """
    if layer.ternary:
        return roofline_s(2.0 * layer.weights * m, layer.weights * 2 / 8, cpu, 4.0) * 1e3
    return roofline_s(2.0 * layer.weights * m, layer.weights * 2, cpu) * 1e3


def scale_nonlinear_ms(ms: float, host: CpuSpec, target: CpuSpec, c: CostConstants) -> float:
    """Non-Linear time (overhead-bound, single-threaded) moved from host to ``target``."""
    if target == host:
        return ms
    return ms * (host.clock_mhz / target.clock_mhz) * c.ps_ipc_ratio
