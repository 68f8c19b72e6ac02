"""Every constant of the cost model, with where it came from.

A board file may override any of them by name under ``cost_overrides:`` (a calibration fitted
from measurements does the same), so no number here is final. ``CostConstants.sources`` says
why each default has the value it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, ClassVar

from dse.errors import DseError

if TYPE_CHECKING:
    from dse.model.fabric import Fabric


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
    # -- the FFN glue unit (a PL unit behind the engines) ------------------------------------
    glue_lut: float = 4700.0
    glue_ff: float = 6100.0
    glue_bram36: float = 1.0
    # -- the attention unit kv_attn (overlays/rtl/kv_attn.v, overlays/KV_ATTN.md) -------------
    attn_lut_fixed: float = 2100.0
    attn_ff_fixed: float = 1200.0
    # -- timing ----------------------------------------------------------------------------
    pipeline_latency_cycles: float = 10.0
    dma_setup_us: float = 0.0
    #: One AXI-Lite register access from the PS to a PL slave (DMA or engine control), us.
    axi_lite_access_us: float = 0.2
    #: Register accesses per engine to load its activations: arm the result DMA (3) and the
    #: activation DMA (3), the engine's control word (1), poll both completions (2), clear (1).
    regs_act_load_per_engine: float = 10.0
    #: Register accesses per engine to run its weight stream: control word (1), arm the weight
    #: DMA (3), poll the two DMA completions and the engine's status (3), clear (1).
    regs_run_per_engine: float = 8.0
    #: A DMA's latency from its length write to the first beat arriving from DDR, us.
    dma_first_beat_us: float = 1.0
    #: Start of every engine run's weight bursts beyond the streaming rate, us (0 by default:
    #: no source prices it; a calibration may fit it, see dse.model.fit).
    run_burst_us: float = 0.0
    #: Bytes per second the CPU invalidates for DMA result buffers (cache maintenance).
    cache_maint_bytes_per_s: float = 5.3e9
    #: CPU ns per output element to rescale int32 results to floats after a call.
    rescale_ns_per_elem: float = 1.5
    #: Copying one vector's int32 result out of a pass's interleaved results (the engine sends
    #: a row fold's results vector after vector): scalar, and with PE >= 4 whole 128-bit
    #: registers, ns per element.
    gather_ns_per_elem: float = 1.5
    gather_q_ns_per_elem: float = 0.75
    #: Fraction of the host's peak FLOP/s that PyTorch reaches on a GEMM (prefill estimate).
    host_gemm_efficiency: float = 0.5
    #: Runtime memory (OS, Python, buffers) a plan must leave room for on the board, bytes.
    runtime_bytes: float = 256 * 2**20
    # -- the native CPU runtime (bitnet.cpp class), per kernel, on the reference core -------
    # The Cortex-A53's counts (64-bit NEON datapath). Other cores' are in dse/model/cores.py,
    # which derives them per core and applies these where a board or calibration overrides them.
    #: I2_S ternary GEMV, cycles per weight per token on one core (NEON without dotprod).
    native_ternary_cycles_per_weight: float = 0.625
    #: f16 GEMV (the output head), cycles per weight per token on one NEON core.
    native_dense_cycles_per_weight: float = 2.0
    #: Element-wise kernels, cycles per element on one NEON core.
    native_norm_cycles_per_elem: float = 3.0
    native_quant_cycles_per_elem: float = 4.0
    native_elementwise_cycles_per_elem: float = 2.0
    native_softmax_cycles_per_elem: float = 6.0
    native_sample_cycles_per_elem: float = 1.0
    #: Attention matmuls over the KV cache, cycles per multiply-accumulate on one NEON core.
    #: fp32 scores (K stored transposed in tiles of positions): per 16 positions and head
    #: dimension, the cycles of loading the keys once per pass ...
    native_attn_fp32_tile_cycles: float = 8.0
    #: ... and of each query head of the pass (its broadcast query and FMLAs).
    native_attn_fp32_head_cycles: float = 9.0
    #: fp32 attention x V (probabilities times the V rows, accumulated per head), per MAC.
    native_attn_v_cycles_per_mac_fp32: float = 1.25
    native_attn_cycles_per_mac_f16: float = 2.0
    native_attn_cycles_per_mac_int8: float = 1.0
    #: attention x V also loads and stores its accumulator every step, cycles per MAC.
    native_attn_v_acc_cycles_per_mac: float = 1.0
    #: A C driver's own software per accelerator call beyond its register accesses (native
    #: runtime), us.
    native_call_overhead_us: float = 1.0
    #: The A53's choice of the glue unit's fixed-point shifts, cycles per intermediate element
    #: on one core (the "shift scan" a PL glue unit needs; see its source).
    native_shift_scan_cycles_per_elem: float = 22.0
    #: Thread-pool dispatches and barriers of the shift scan per layer.
    shift_scan_syncs_per_layer: float = 5.0
    #: The A53's FFN scale for a fixed-point glue unit (float64 on one thread), cycles per
    #: intermediate element.
    native_ffn_scale_cycles_per_elem: float = 12.0
    #: int8 x int8 dot product (no dotprod), cycles per MAC on one NEON core.
    native_int8_cycles_per_mac: float = 0.5
    #: Top-K selection over scores (one compare per score, rare heap inserts), cycles each.
    native_topk_cycles_per_elem: float = 2.0
    #: Per graph node: the thread-pool barrier every ggml node ends with, us.
    native_op_overhead_us: float = 2.0
    #: Per layer and attention operator, beyond the kernel and the node barrier, us: 0 (no
    #: such cost is derived); free for a board log's fit, where a context-independent part of
    #: the attention shows up.
    native_attn_layer_overhead_us: float = 0.0
    # -- the torch runtime ------------------------------------------------------------------
    #: CPU cycles PyTorch eager spends dispatching one aten op (unmeasured operators).
    torch_aten_op_cycles: float = 20000.0
    #: AXI DMA efficiency of the result (S2MM) and weight (MM2S) streams (PG021).
    s2mm_efficiency: float = 0.746
    mm2s_efficiency: float = 0.998
    #: The fabric evidence in force (``dse.model.fabric``: synthesized units, the
    #: Yosys-to-Vivado relation, published IP rows, clock closures), loaded at the edge
    #: (``dse.fabric_data``); None: the resource constants above, labelled estimated, and no
    #: clock evidence. Not a constant a board or calibration can override.
    fabric: Fabric | None = field(default=None, compare=True)

    sources: ClassVar[dict[str, str]] = {
        "lane_lut": "the fallback when no fabric evidence is in force (dse.model.fabric prices "
        "the engine from dse/data/synth/ternary_gemv.json then): an earlier run of "
        "bench/bench_synth.py (Yosys 0.23 synth_xilinx -family xcup of overlays/rtl, i2 builds "
        "4x16..16x32), least-squares fit LUT = lane x lanes + pe x PE + fixed: "
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
        "glue_lut": "estimate: the bitnet-kv260 FFN glue packed by yosys/nextpnr for an ECP5 "
        "(hardware/reports/ecp5-85k.txt: 4,663 LUT, 6,116 FF, 1 DP16KD); not synthesized for "
        "UltraScale+ here",
        "glue_ff": "as glue_lut",
        "attn_lut_fixed": "overlays/KV_ATTN.md resource table (counted from the RTL, not "
        "synthesised): ~2k LUTs of adder tree, MODE 0 sums and drain mux, ~100 of result FIFO",
        "attn_ff_fixed": "overlays/KV_ATTN.md: control registers and 64-bit counters (~1.2k FF) "
        "beside the three product stages and the q read counted per MAC",
        "glue_bram36": "as glue_lut (one block RAM for the running maxima)",
        "pipeline_latency_cycles": "per-pass fill + drain of the overlay's RTL: the engine "
        "template's pipeline.latency_cycles (overlays/ternary_gemv.yaml, = the RTL's "
        "LATENCY localparam, read back from its LATENCY register; tests/test_template.py "
        "holds all three equal); calibration may refit it",
        "dma_setup_us": "extra DMA setup per call beyond the board's per_call_overhead_us",
        "axi_lite_access_us": "estimate: a strongly-ordered device access from an A53 through "
        "the FPD interconnect and M_AXI_HPM0 into a PL AXI-Lite slave and back (clock crossing "
        "plus the slave's few PL clocks), each preceded by a DSB in a C driver: the low end of "
        "the ~0.2-0.5 us per device access that native_call_overhead_us was estimated from "
        "before the accesses were counted (UG1085 PS-PL interfaces for the path)",
        "regs_act_load_per_engine": "counted from the operations of a C driver of an AXI DMA "
        "in simple mode (PG021 register map: DMASR clear, address, length per channel) and an "
        "AXI GPIO control/status pair per engine, as the bitnet-kv260 host code "
        "(runtime/bitnet_kria.c engine_phase) sequences them: S2MM 3 writes, control 1, MM2S 3 "
        "writes, 1 MM2S status poll, 1 engine status poll, 1 control clear",
        "regs_run_per_engine": "counted as regs_act_load_per_engine for the weight phase: "
        "control 1, MM2S 3 writes, MM2S and S2MM status polls and the engine's done poll (3), "
        "control clear 1",
        "dma_first_beat_us": "estimate: AXI DMA MM2S start-up (PG021: descriptor-less simple "
        "mode, a few hundred ns to issue) plus one DDR read latency through the HP port "
        "(~0.3-0.5 us loaded, UG1085 AFI FIFO interface): ~1 us",
        "run_burst_us": "not modelled by default (0); the published KV260 design's weight "
        "stream (120 runs) and head stream (one run) disagree with any single DDR efficiency, "
        "and a per-run burst start is the term a calibration fits to separate them",
        "cache_maint_bytes_per_s": "estimate: DC CIVAC by virtual address, one 64-byte line "
        "per ~16 A53 cycles (an L2 tag and SCU duplicate-tag lookup each, UG1085 'L2 Memory "
        "Subsystem'; the line is clean, so nothing is written back) at 1.333 GHz = 5.3 GB/s. "
        "The earlier 1 GB/s guess came from cached copies (udmabuf issue #16), a different "
        "operation",
        "rescale_ns_per_elem": "scale_i32-style NEON loop: per 8 int32 elements 2 loads, 2 "
        "SCVTF, 2 FMUL, 2 stores, all Q-form at 2 cycles on the A53 = 2 cycles/element, "
        "1.5 ns at 1.333 GHz (A53 issue rules as native_ternary_cycles_per_weight)",
        "gather_ns_per_elem": "a runtime that consumes a round's (or a prompt group's) "
        "results vector by vector copies each vector's out of the pass's interleaved results "
        "(overlays/STREAM.md: a row fold's PE results for every vector of the pass in turn; "
        "the bitnet-kv260 runtime's sums_slot, whose 'sums out of the DMA buffer' grows from "
        "0.28 ms a token at one vector to 2.9 ms a position at four, results/kria-speed2-"
        "results.txt): with PE < 4 a scalar LDR + STR per element, one memory op a cycle on "
        "the A53's single load/store pipe = 2 cycles, 1.5 ns at 1.333 GHz (A53 issue rules)",
        "gather_q_ns_per_elem": "the same copy with PE >= 4 (4 contiguous int32 a vector): one "
        "Q-form LDR and STR per 4 elements, 2 cycles each on the A53 = 1 cycle, 0.75 ns",
        "host_gemm_efficiency": "PyTorch fp32 GEMM reaches ~50% of peak on desktop CPUs "
        "(estimate; used only when the profile has no prefill split)",
        "runtime_bytes": "Linux + Python + PYNQ runtime resident set (estimate)",
        "native_ternary_cycles_per_weight": "instruction count of bitnet.cpp's I2_S kernel "
        "(microsoft/BitNet src/ggml-bitnet-mad.cpp, ggml_vec_dot_i2_i8_s, ARM NEON path without "
        "dotprod): per 64 weights 5 128-bit loads, 3 vshrq + 4 vandq and 8 vmlal_s8 (128-bit "
        "accumulator), each 2 cycles under the Cortex-A53 issue rules: Q-form (128-bit) ASIMD "
        "ops take 2 cycles on its 64-bit datapath (llvm-project llvm/lib/Target/AArch64/"
        "AArch64SchedA53.td) and 128-bit vector loads do not dual-issue with ASIMD ops "
        "(Tencent/ncnn docs/developer-guide/arm-a53-a55-dual-issue.md): 40 cycles / 64 weights "
        "= 0.625. Derived, not fitted to any measurement",
        "native_dense_cycles_per_weight": "ggml_vec_dot_f16 on ARMv8.0 without FP16 arithmetic "
        "(the A53): per 4 weights 2 64-bit loads (1 cycle each), 2 FCVTL and 1 FMLA, Q-form, 2 "
        "cycles each: 8 cycles / 4 weights = 2.0 (same A53 issue rules)",
        "native_norm_cycles_per_elem": "RMSNorm in fp32, two passes: load + FMLA, then load + 2 "
        "FMUL + store, per 4 elements 12 cycles under the A53 issue rules = 3.0",
        "native_quant_cycles_per_elem": "per-token int8 quantization (bitnet.cpp "
        "quantize_row_i8_s): absmax pass (load, FABS, FMAX) + scale pass (load, FMUL, FCVTNS, 2 "
        "narrows, store), ~16 cycles per 4 elements = 4.0 (A53 issue rules; derived)",
        "native_elementwise_cycles_per_elem": "residual add, activation, gate product, RoPE, "
        "cache write: 2 loads + 1 op + 1 store per 4 elements, 8 cycles = 2.0 (A53 issue rules)",
        "native_softmax_cycles_per_elem": "max, vectorised expf (~10 Q-form ops per 4 lanes) and "
        "sum passes, ~24 cycles per 4 scores = 6.0 (estimate from ggml_vec_soft_max_f32)",
        "native_sample_cycles_per_elem": "greedy argmax over fp32 logits: load + FMAX per 4 "
        "elements, 4 cycles = 1.0",
        "native_attn_fp32_tile_cycles": "fp32 scores with the keys stored transposed in "
        "tiles of 32 positions, as the bitnet-kv260 host code lays out its float32 cache "
        "(runtime/bitnet_kria.c scores_kt16x4 / x2 / scores_kt16): per head dimension a pass "
        "loads 16 positions' keys as 4 Q-form loads, 2 cycles each on the A53's 64-bit load "
        "path = 8 cycles, shared by the 4, 2 or 1 query heads of the pass",
        "native_attn_fp32_head_cycles": "the same kernels, per query head of a pass and head "
        "dimension: 1 LD1R of its query element and 4 Q-form FMLA of 2 cycles (GCC contracts "
        "the intrinsics' multiply-add under its default -ffp-contract=fast) = 9 cycles. A pass "
        "of 4 heads is 8 + 36 = 44 cycles per 64 MACs (0.6875 a MAC), of 1 head 17 per 16 "
        "(1.06): how the runtime's threads cut the groups decides which passes run (dse.model."
        "cpu.head_split)",
        "native_attn_v_cycles_per_mac_fp32": "fp32 x V as the same code accumulates it "
        "(accum_f32): per 4 positions x 8 dimensions, 2 Q loads of the accumulator, 8 Q loads "
        "of V, 8 FMLA by element, 2 Q stores: 20 + 16 + 4 = 40 cycles per 32 MACs = 1.25",
        "native_attn_cycles_per_mac_f16": "f16 cache (ggml's default): as native_dense_cycles_"
        "per_weight, converts then FMLA = 2.0",
        "native_attn_v_acc_cycles_per_mac": "attention x V accumulates a head_dim-wide output "
        "(128 fp32 = all 32 NEON registers), so each step reloads and stores it: a 128-bit "
        "load and store (2 cycles each) per 4 MACs = 1.0 more than the scores' dot product "
        "(derived from register pressure; added after comparing with the bitnet-kv260 "
        "attention split, not fitted to it)",
        "native_attn_cycles_per_mac_int8": "int8 cache: vmlal_s8 path as the I2_S kernel "
        "without the unpacking, plus per-row dequantization (estimate)",
        "native_call_overhead_us": "estimate: the C driver's own instructions per call beyond "
        "its register accesses (now counted: axi_lite_access_us x regs_*_per_engine): the call, "
        "loop bookkeeping and a few vDSO clock reads (~0.1-0.2 us each): ~1 us. The board's "
        "per_call_overhead_us is a Python PYNQ launch (facts.md section 4)",
        "native_shift_scan_cycles_per_elem": "instruction count of the shift scan a fixed-point "
        "glue needs, as the bitnet-kv260 host code does it (runtime/bitnet_kria.c "
        "ffn_prep_a_worker, ffn_prep_worker): per intermediate element, write its 16-byte beat "
        "(2 loads, combine, 2 stores, ~4 cycles), the NEON max of ReLU(gate) and |up| (~3 "
        "cycles), then three scalar passes each followed by a max reduction: shift, square "
        "(~7 cycles), shift x up (~4), shift x |gamma| (~4) under the A53's dual-issue limits "
        "(one load/store and one multiply a cycle): 22 cycles. Derived, not fitted; a board log's "
        "fit may free it (an effective rate with the stalls the source reports there)",
        "native_ffn_scale_cycles_per_elem": "instruction count of the FFN scale a fixed-point "
        "glue needs from the PS, as the bitnet-kv260 host code does it (runtime/bitnet_kria.c "
        "ffn_scale, scalar float64, one thread): per intermediate element 2 SCVTF, 1 FCVT, 4 "
        "FMUL, 1 FADD, FABS, FCMP + FCSEL and the float load of gamma: 12 issues of the FP "
        "pipe, which the Cortex-A53 takes only in issue slot 0, one a cycle (GCC "
        "gcc/config/arm/cortex-a53.md: fpalu, fpmul and f_loads reserve cortex_a53_slot0); "
        "the 4-way unrolled chains (latency 4) hide behind them: 12 cycles. Derived, not "
        "fitted; the same runtime's 'side thread busy' column (3.35 ms a forward, "
        "results/kria-speed2-results.txt) includes its syncs and DDR stalls",
        "shift_scan_syncs_per_layer": "counted in the same code: one pool dispatch for the beats "
        "and maxima, one for the passes and three barriers between them; each costs "
        "native_op_overhead_us",
        "native_int8_cycles_per_mac": "vmlal_s8 path as the I2_S kernel without unpacking: per "
        "16 MACs 2 128-bit loads + 2 vmlal_s8, 8 cycles under the A53 issue rules = 0.5",
        "native_topk_cycles_per_elem": "estimate: one load + compare per score against the "
        "running K-th largest, inserts rare once the heap fills (~2 cycles per score)",
        "native_attn_layer_overhead_us": "none derived (0): a calibration parameter only; the "
        "published design's attention at 65 and 360 positions implies ~2.6 ms per token that "
        "does not grow with the context (../shared/reference/published-designs.md)",
        "native_op_overhead_us": "ggml ends every graph node with a spin barrier of the thread "
        "pool: a few cross-core cache-line round trips, ~2 us on an A53 cluster (estimate)",
        "torch_aten_op_cycles": "derived from dse's own measured profile "
        "(bench/results/bitnet-b1.58-2B-4T.bfloat16.profile.json): the 2560-wide RMSNorm modules "
        "take 51.7-68.0 us per decode call (median per role) on the 2.6 GHz Xeon at 1 thread, "
        "over 8 aten ops each: ~7.5 us = ~20,000 cycles per op. The same cycle count is assumed "
        "on the target CPU (understates an in-order core)",
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
        return tuple(f.name for f in fields(cls) if f.name != "fabric")

    def with_fabric(self, fabric: Fabric | None) -> CostConstants:
        """These constants with ``fabric`` as the evidence in force."""
        return replace(self, fabric=fabric)

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
