"""Every constant of the cost model, with where it came from.

A board file may override any of them by name under ``cost_overrides:`` (a calibration fitted
from measurements does the same), so no number here is final. ``CostConstants.sources`` says
why each default has the value it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from dse.errors import DseError


@dataclass(frozen=True)
class CostConstants:
    """Resource and timing constants of the ternary engine and its surroundings."""

    # -- resources per lane (one weight x one int8 activation per cycle) --------------------
    lane_lut: float = 14.2
    lane_ff: float = 12.9
    # -- resources per PE (one output row in flight) ----------------------------------------
    pe_lut: float = 85.0
    pe_ff: float = 31.0
    # -- fixed resources per engine (control, AXI-Lite slave, stream FIFOs, counters) -------
    engine_lut: float = 1000.0
    engine_ff: float = 950.0
    engine_bram36: float = 2.0
    # -- fixed resources of the platform (AXI DMA per engine, SmartConnect per HP port) -----
    dma_lut: float = 2500.0
    dma_ff: float = 3800.0
    dma_bram36: float = 2.0
    interconnect_lut_per_port: float = 1500.0
    interconnect_ff_per_port: float = 2000.0
    # -- dense lm_head unit: DSP48E2 MACs (2 int8 MACs or 1 bf16-ish MAC per DSP) ----------
    head_lut_per_mac: float = 12.0
    head_ff_per_mac: float = 20.0
    # -- timing ----------------------------------------------------------------------------
    pipeline_latency_cycles: float = 10.0
    dma_setup_us: float = 0.0
    #: Bytes per second the CPU flushes/invalidates for DMA buffers (cache maintenance).
    cache_maint_bytes_per_s: float = 1.0e9
    #: CPU ns per activation element to quantize (absmax, scale, round, clamp) before a call.
    quant_ns_per_elem: float = 2.0
    #: CPU ns per output element to rescale int32 results to floats after a call.
    rescale_ns_per_elem: float = 1.0
    #: Fraction of the host's peak FLOP/s that PyTorch reaches on a GEMM (prefill estimate).
    host_gemm_efficiency: float = 0.5
    #: Runtime memory (OS, Python, buffers) a plan must leave room for on the board, bytes.
    runtime_bytes: float = 256 * 2**20
    #: Single-thread speed of a desktop out-of-order core over an in-order A53/A9 at equal
    #: clock; scales non-Linear (overhead-bound) time from the host to the PS.
    ps_ipc_ratio: float = 3.0
    #: AXI DMA efficiency of the result (S2MM) and weight (MM2S) streams (PG021).
    s2mm_efficiency: float = 0.746
    mm2s_efficiency: float = 0.998

    sources: ClassVar[dict[str, str]] = {
        "lane_lut": "Yosys synth_xilinx -family xcup of overlays/rtl, i2 builds 4x16..16x32, "
        "least-squares fit LUT = lane x lanes + pe x PE + fixed (bench/results/synth.json): "
        "14.2 per lane (select/negate folded into the adder tree). The estimate before "
        "synthesis was 10. Yosys LUT counts are upper bounds on Vivado's (no LUT6_2 packing). "
        "FINN-R costs the same lane as a generic 2x8-bit multiply (~30 LUT).",
        "lane_ff": "same fit: 12.9 FF per lane (adder-tree pipeline registers); estimate was 9",
        "pe_lut": "same fit: 85 LUT per PE (32-bit accumulator, output packing); estimate 48",
        "pe_ff": "same fit: 31 FF per PE; estimate was 72",
        "engine_lut": "same fit: ~1000 LUT fixed (AXI-Lite control, counters, FSM, FIFOs); "
        "estimate was 1200",
        "engine_ff": "same fit: ~950 FF fixed; estimate was 1800",
        "engine_bram36": "weight-stream FIFO (1) + result FIFO (1)",
        "dma_lut": "AXI DMA with MM2S+S2MM, 26-bit length, no SG: PG021 resource tables "
        "(~2-3k LUT)",
        "dma_ff": "PG021 resource tables (~3.5-4k FF)",
        "dma_bram36": "PG021: DMA data FIFOs",
        "interconnect_lut_per_port": "SmartConnect/AXI interconnect per HP port (PG247, estimate)",
        "interconnect_ff_per_port": "as interconnect_lut_per_port",
        "head_lut_per_mac": "int8 MAC in a DSP48E2 plus its accumulation glue (estimate)",
        "head_ff_per_mac": "pipeline registers around each DSP (estimate)",
        "pipeline_latency_cycles": "per-pass fill + drain of the overlay's RTL "
        "(overlays/rtl, dse.hw.regs.PIPELINE_LATENCY = 10, read back from its LATENCY "
        "register); the RTL cycle tests hold engine_cycles to it",
        "dma_setup_us": "extra DMA setup per call beyond the board's per_call_overhead_us",
        "cache_maint_bytes_per_s": "ZU+ cached copy ~800 MB/s, uncached ~250 MB/s (udmabuf "
        "issue #16); flush of a cached buffer assumed ~1 GB/s",
        "quant_ns_per_elem": "numpy absmax + scale + round + clamp, A53-class core (estimate)",
        "rescale_ns_per_elem": "numpy int32 -> float multiply (estimate)",
        "host_gemm_efficiency": "PyTorch fp32 GEMM reaches ~50% of peak on desktop CPUs "
        "(estimate; used only when the profile has no prefill split)",
        "runtime_bytes": "Linux + Python + PYNQ runtime resident set (estimate)",
        "ps_ipc_ratio": "Zen/Core-class vs Cortex-A53 per-clock single-thread speed, ~3x "
        "(SPECint-per-GHz class ratios; estimate)",
        "s2mm_efficiency": "AMD PG021: S2MM 74.6% of stream rate (100 MHz, 10 KB transfers)",
        "mm2s_efficiency": "AMD PG021: MM2S 99.8% of stream rate",
    }

    #: Constants the model divides by (a rate, an efficiency) or scales a CPU time by: > 0.
    POSITIVE: ClassVar[frozenset[str]] = frozenset({
        "cache_maint_bytes_per_s", "host_gemm_efficiency", "ps_ipc_ratio", "s2mm_efficiency",
        "mm2s_efficiency"})
    #: Efficiencies: a fraction of a peak, at most 1.
    FRACTIONS: ClassVar[frozenset[str]] = frozenset({
        "host_gemm_efficiency", "s2mm_efficiency", "mm2s_efficiency"})
    #: Sanity ceiling of any constant (as ``dse.schema.MAX_QUANTITY``): no product overflows.
    MAX_VALUE: ClassVar[float] = 1e15

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def with_overrides(self, overrides: dict[str, float], where: str = "cost_overrides"
                       ) -> CostConstants:
        """Apply ``name: value`` overrides, rejecting unknown names and values out of range
        (non-finite, negative, zero where the model divides by it, an efficiency above 1)."""
        known = set(self.names())
        for name, value in overrides.items():
            if name not in known:
                raise DseError(f"{where}.{name}: expected one of the cost-model constants "
                               f"({', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value)):
                raise DseError(f"{where}.{name}: expected a finite number, got {value!r}")
            low = "> 0" if name in self.POSITIVE else ">= 0"
            high = 1.0 if name in self.FRACTIONS else self.MAX_VALUE
            if value < 0 or (name in self.POSITIVE and value == 0) or value > high:
                raise DseError(f"{where}.{name}: expected a number {low} and <= {high:g}, "
                               f"got {value!r}")
        return replace(self, **{k: float(v) for k, v in overrides.items()})


DEFAULT_CONSTANTS = CostConstants()
