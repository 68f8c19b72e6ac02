"""CPU cores as data: what each native kernel costs per core microarchitecture.

The ``native`` runtime (``dse.model.cpu``) prices every kernel of a bitnet.cpp-class runtime
from its instruction count on the CPU's SIMD unit. Those counts depend on the core: an
in-order Cortex-A53 issues one 128-bit ASIMD operation every two cycles and cannot pair a
128-bit load with it, a Cortex-A76 issues two a cycle on two 128-bit pipes beside two load
pipes and has the dot-product instructions, an x86 core with AVX2 works on 256 bits. So the
table below holds, per core, the cycle counts of the kernels that dominate a token, each
derived from the kernel's instructions under that core's issue rules, with its source:

- ``ternary_cycles_per_weight``: bitnet.cpp's I2_S GEMV (``ggml_vec_dot_i2_i8_s``),
- ``dense_cycles_per_weight``: the f16 GEMV of the output head (``ggml_vec_dot_f16``),
- ``int8_cycles_per_mac``: an int8 x int8 dot product (the two-stage head's rescore, and the
  int8 KV cache's attention in proportion),
- ``simd_scale``: the core's cycles for the element-wise kernels (norms, quantization, RoPE,
  softmax, sampling, the fp32 attention kernels, top-K, the glue's shift scan) relative to the
  A53's counts of the same instructions (1.0 on the A53).

The Cortex-A53 is the reference core: its counts are the ``native_*`` constants of
``dse.model.constants.CostConstants`` (each with its own source), where a board's
``cost_overrides`` and a fitted calibration act on them. Other cores use their own row; a
``cost_overrides`` or calibration value that differs from the default still wins for any core,
so a user's override is never ignored. A CPU whose model no row matches is a one-line error
naming the file and field, never priced as an A53.

Pure data and pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dse.errors import DseError
from dse.model.constants import DEFAULT_CONSTANTS, CostConstants


@dataclass(frozen=True)
class Core:
    """One core microarchitecture and its kernel cycle counts (per core, steady state)."""

    key: str
    name: str
    #: Regular expression (case-insensitive) a board's ``ps_cpu.model`` or a host's CPU name
    #: must contain to be this core.
    match: str
    #: SIMD family: "neon" (Arm Advanced SIMD) or "x86" (AVX2).
    isa: str
    #: An in-order pipeline: a load that misses stalls issue (see ``dse.model.cpu``).
    in_order: bool
    #: The Armv8.2 dot-product instructions (SDOT/UDOT) the kernels use when present.
    dotprod: bool
    #: None on the reference core (the constants hold its counts).
    ternary_cycles_per_weight: float | None = None
    dense_cycles_per_weight: float | None = None
    int8_cycles_per_mac: float | None = None
    simd_scale: float = 1.0
    reference: bool = False
    sources: dict[str, str] = field(default_factory=dict, compare=False)


#: The table. Issue rules per core are cited in ``sources``; instruction sequences are those of
#: microsoft/BitNet src/ggml-bitnet-mad.cpp (I2_S: per 64 weights on NEON 5 128-bit loads,
#: 3 shifts, 4 ANDs and either 8 SMLAL (no dotprod) or 4 SDOT into one accumulator; per 128
#: weights on AVX2 5 256-bit loads, 3 shifts, 4 ANDs, 4 VPMADDUBSW, 4 VPADDW) and ggml's
#: ggml_vec_dot_f16 (f16 weights against f16-converted activations, FP16 FMLA where the core
#: has Armv8.2 FP16 arithmetic, else FCVTL to fp32 and FMLA).
CORES: tuple[Core, ...] = (
    Core(
        key="cortex-a9", name="Cortex-A9", match=r"cortex-a9(?!\d)", isa="neon",
        in_order=False, dotprod=False, ternary_cycles_per_weight=0.625,
        dense_cycles_per_weight=2.0, int8_cycles_per_mac=0.5, simd_scale=1.0,
        sources={
            "issue": "Arm Cortex-A9 NEON Media Processing Engine TRM (DDI 0409), instruction "
            "timing: the NEON unit has a 64-bit datapath and issues one NEON instruction a "
            "cycle, Q-register (128-bit) data processing and 128-bit loads taking two cycles, "
            "as on the A53 (whose counts dse/model/constants.py derives). The kernels' ARMv7 "
            "NEON forms (VSHR, VAND, VMLAL.S8, VCVT.F32.F16 + VMLA.F32) are one-for-one with "
            "the A64 ones, so every count equals the A53's: I2_S 40 cycles / 64 weights = "
            "0.625, f16 GEMV 8 cycles / 4 weights = 2.0, int8 dot 8 cycles / 16 MACs = 0.5, "
            "element-wise scale 1.0",
            "caveat": "bitnet.cpp's NEON I2_S kernel uses A64-only intrinsics (vaddlvq_s32, "
            "vmovl_high_s16); on an ARMv7 A9 the native runtime prices a port of it with the "
            "same instructions, which nobody has measured",
        }),
    Core(
        key="cortex-a53", name="Cortex-A53", match=r"cortex-a53(?!\d)", isa="neon",
        in_order=True, dotprod=False, reference=True,
        sources={
            "issue": "the reference core: every count is a native_* constant of dse/model/"
            "constants.py with its derivation (llvm-project AArch64SchedA53.td: Q-form ASIMD "
            "2 cycles on the 64-bit datapath; Tencent/ncnn docs/developer-guide/"
            "arm-a53-a55-dual-issue.md: 128-bit loads do not dual-issue with ASIMD)",
        }),
    Core(
        key="cortex-a55", name="Cortex-A55", match=r"cortex-a55(?!\d)", isa="neon",
        in_order=True, dotprod=True, ternary_cycles_per_weight=21 / 64,
        dense_cycles_per_weight=5 / 8, int8_cycles_per_mac=5 / 16, simd_scale=0.75,
        sources={
            "issue": "llvm-project llvm/lib/Target/AArch64/AArch64SchedA55.td: vector loads "
            "64 bits a cycle (a 128-bit LD1 2 cycles), Q-form ASIMD ALU and SDOT take both FP "
            "pipes (1 a cycle); Tencent/ncnn arm-a53-a55-dual-issue.md: a 128-bit load does "
            "not dual-issue with ASIMD on the A55 either",
            "ternary": "I2_S with dotprod: 5 Q loads x 2 + (3 shifts + 4 ANDs + 4 SDOT) x 1 = "
            "21 cycles / 64 weights; the SDOT chain (4 x 4-cycle latency) hides under them",
            "dense": "Armv8.2 FP16 arithmetic: per 8 weights 2 Q loads x 2 + 1 FMLA .8h = 5 "
            "cycles",
            "int8": "per 16 MACs 2 Q loads x 2 + 1 SDOT = 5 cycles",
            "simd_scale": "the element-wise kernels mix loads/stores (2 cycles per 128 bits, "
            "as on the A53) and ALU ops (1 cycle, against the A53's 2) about evenly: 1.5 / 2",
        }),
    Core(
        key="cortex-a72", name="Cortex-A72", match=r"cortex-a72(?!\d)", isa="neon",
        in_order=False, dotprod=False, ternary_cycles_per_weight=8 / 64,
        dense_cycles_per_weight=0.5, int8_cycles_per_mac=2 / 16, simd_scale=0.375,
        sources={
            "issue": "Arm Cortex-A72 Software Optimization Guide (UAN0016A): 3-wide decode, "
            "one load pipe, two 128-bit FP/ASIMD pipes F0/F1; SMLAL on F0 only (latency 4, "
            "1 with accumulate forwarding), shifts on F1, logical ops on either; no dotprod "
            "(Armv8.0)",
            "ternary": "I2_S without dotprod: 8 SMLAL on F0 = 8 cycles / 64 weights, which "
            "also covers the loads (5 on one pipe), F1's 3 shifts + 4 ANDs and the 22 "
            "instructions at 3 a cycle (7.3)",
            "dense": "no FP16 arithmetic: per 4 weights 2 64-bit loads on the one load pipe "
            "= 2 cycles (2 FCVTL + 1 FMLA on two pipes take 1.5)",
            "int8": "per 16 MACs 2 SMLAL on F0 = 2 cycles (2 loads on the load pipe = 2)",
            "simd_scale": "loads/stores 1 a cycle, ALU ops 2 a cycle: an even mix costs 0.75 "
            "cycles per 128-bit op against the A53's 2",
        }),
    Core(
        key="cortex-a76", name="Cortex-A76/A77/A78 (Neoverse N1)",
        match=r"cortex-a7[678](?!\d)|neoverse[- ]?n1|bcm2712|raspberry pi 5", isa="neon",
        in_order=False, dotprod=True, ternary_cycles_per_weight=12 / 64,
        dense_cycles_per_weight=1 / 8, int8_cycles_per_mac=1 / 16, simd_scale=0.25,
        sources={
            "issue": "Arm Cortex-A76 Software Optimization Guide (PJDOC-466751330-7215, v8.0) "
            "and llvm-project AArch64SchedNeoverseN1.td (the A76's core): 4-wide decode, two "
            "128-bit ASIMD pipes V0/V1, two load pipes; SDOT 3-cycle latency at 2 a cycle "
            "(ashvardanian NumKong include/numkong/dot/neonsdot.h A76 column)",
            "ternary": "I2_S with dotprod: the 4 SDOT of a 64-weight step accumulate into one "
            "register, a chain of 4 x 3 cycles = 12 cycles / 64 weights (the 11 ASIMD ops on "
            "two pipes need 5.5, the 5 loads on two pipes 2.5). Were SDOT to forward its "
            "accumulator in 1 cycle, as later cores' guides state, it would be 5.5; a Pi 5's "
            "decode is bound by its DRAM either way",
            "dense": "Armv8.2 FP16 arithmetic: per 8 weights 2 Q loads on two pipes (1 cycle) "
            "+ 1 FMLA .8h (0.5) = 1 cycle",
            "int8": "per 16 MACs 2 Q loads (1 cycle) + 1 SDOT (0.5): 1 cycle",
            "simd_scale": "two load and two ASIMD pipes: 0.5 cycles per 128-bit op against "
            "the A53's 2",
        }),
    Core(
        key="x86-avx2", name="x86-64 with AVX2",
        match=r"x86|intel|amd|xeon|ryzen|epyc|threadripper|core\(tm\)|pentium|celeron",
        isa="x86", in_order=False, dotprod=False, ternary_cycles_per_weight=5.5 / 128,
        dense_cycles_per_weight=1.5 / 8, int8_cycles_per_mac=1.25 / 32, simd_scale=0.125,
        sources={
            "issue": "Intel 64 and IA-32 Architectures Optimization Reference Manual and "
            "Agner Fog's instruction tables (Skylake, Zen 2-4): 4-wide issue, two 256-bit "
            "loads and three vector ALU ports a cycle; VPMADDUBSW and shifts on two ports",
            "ternary": "I2_S AVX2: 20 instructions per 128 weights + 2 of loop = 22 at 4 a "
            "cycle = 5.5 cycles (15 ALU uops on 3 ports: 5); the VPADDW accumulate chain is 2 "
            "cycles",
            "dense": "F16C, no f16 arithmetic: per 8 weights 2 loads, 2 VCVTPH2PS, 1 VFMADD "
            "= ~6 uops at 4 a cycle = 1.5 cycles",
            "int8": "per 32 MACs 2 loads + VPMADDUBSW + VPMADDWD + VPADDD = 5 uops: 1.25 cycles",
            "simd_scale": "256-bit ops do 8 fp32 lanes against a Q-op's 4, about 2 a cycle "
            "in a mixed load/ALU stream: 0.25 cycles per A53 Q-op's work against its 2",
        }),
)

#: The reference core (its counts are CostConstants' native_* fields).
REFERENCE = next(c for c in CORES if c.reference)


def known_cores() -> str:
    """The cores of the table, for error messages."""
    return ", ".join(c.name for c in CORES)


def find_core(model: str) -> Core | None:
    """The table's core a CPU model string names, if any (first match in table order)."""
    for core in CORES:
        if re.search(core.match, model, re.IGNORECASE):
            return core
    return None


def core_for(model: str, where: str = "ps_cpu.model") -> Core:
    """The core a CPU model names; a one-line ``DseError`` naming ``where`` if none does."""
    core = find_core(model)
    if core is None:
        raise DseError(f"{where}: expected a CPU core dse has kernel cycle counts for "
                       f"({known_cores()}; see dse/model/cores.py), got {model!r}")
    return core


@dataclass(frozen=True)
class KernelCycles:
    """Cycles per item of every native kernel on one core (what ``dse.model.cpu`` prices)."""

    core: str
    ternary_per_weight: float
    dense_per_weight: float
    int8_per_mac: float
    attn_f16_per_mac: float
    attn_int8_per_mac: float
    attn_v_acc_per_mac: float
    attn_fp32_tile: float
    attn_fp32_head: float
    attn_v_fp32_per_mac: float
    norm_per_elem: float
    quant_per_elem: float
    elementwise_per_elem: float
    softmax_per_elem: float
    sample_per_elem: float
    topk_per_elem: float
    shift_scan_per_elem: float
    ffn_scale_per_elem: float


#: Element-wise constants a core's ``simd_scale`` applies to (the A53's counts of them).
_SCALED = {
    "attn_v_acc_per_mac": "native_attn_v_acc_cycles_per_mac",
    "attn_fp32_tile": "native_attn_fp32_tile_cycles",
    "attn_fp32_head": "native_attn_fp32_head_cycles",
    "attn_v_fp32_per_mac": "native_attn_v_cycles_per_mac_fp32",
    "norm_per_elem": "native_norm_cycles_per_elem",
    "quant_per_elem": "native_quant_cycles_per_elem",
    "elementwise_per_elem": "native_elementwise_cycles_per_elem",
    "softmax_per_elem": "native_softmax_cycles_per_elem",
    "sample_per_elem": "native_sample_cycles_per_elem",
    "topk_per_elem": "native_topk_cycles_per_elem",
    "shift_scan_per_elem": "native_shift_scan_cycles_per_elem",
    "ffn_scale_per_elem": "native_ffn_scale_cycles_per_elem",
}


def _overridden(c: CostConstants, name: str) -> bool:
    return getattr(c, name) != getattr(DEFAULT_CONSTANTS, name)


def kernel_cycles(core: Core, c: CostConstants) -> KernelCycles:
    """Every native kernel's cycles on ``core`` under the constants in force (pure).

    The reference core takes ``c``'s counts as they are. Another core takes its own row for
    the I2_S, f16 and int8 kernels (the attention matmuls in proportion: the f16 cache as the
    f16 GEMV, the int8 cache as the int8 dot) and the A53's element-wise counts times its
    ``simd_scale``; a constant that ``c`` overrides (a board's ``cost_overrides``, a
    calibration) is taken as it is on every core.
    """
    def own(name: str, value: float | None) -> float:
        if core.reference or value is None or _overridden(c, name):
            return getattr(c, name)
        return value

    ternary = own("native_ternary_cycles_per_weight", core.ternary_cycles_per_weight)
    dense = own("native_dense_cycles_per_weight", core.dense_cycles_per_weight)
    int8 = own("native_int8_cycles_per_mac", core.int8_cycles_per_mac)
    d = DEFAULT_CONSTANTS

    def ratio(name: str, mine: float, ref_name: str) -> float:
        if core.reference or _overridden(c, name):
            return getattr(c, name)
        return getattr(c, name) * mine / getattr(d, ref_name)

    scaled = {k: getattr(c, name) * (1.0 if core.reference or _overridden(c, name)
                                     else core.simd_scale)
              for k, name in _SCALED.items()}
    return KernelCycles(
        core=core.name, ternary_per_weight=ternary, dense_per_weight=dense, int8_per_mac=int8,
        attn_f16_per_mac=ratio("native_attn_cycles_per_mac_f16", dense,
                               "native_dense_cycles_per_weight"),
        attn_int8_per_mac=ratio("native_attn_cycles_per_mac_int8", int8,
                                "native_int8_cycles_per_mac"),
        **scaled)


__all__ = ["CORES", "REFERENCE", "Core", "KernelCycles", "core_for", "find_core",
           "kernel_cycles", "known_cores"]
