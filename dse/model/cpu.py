"""The CPU as a device: the profiled host or the board's PS, under a software runtime.

Two runtimes price the same operators differently:

- ``torch``: PyTorch eager, as profiled. A Linear or operator the profile measured keeps its
  measured time, moved to another CPU by the ratio of the two CPUs' roofline times (which keeps
  PyTorch's measured efficiency); an operator it did not measure is priced by roofline plus
  PyTorch's per-op dispatch cost.
- ``native``: a compiled C/NEON runtime of the bitnet.cpp class (ggml graph, I2_S ternary
  kernel, f16 output head, f16 KV cache by default). Every operator is priced from instruction
  counts of its kernel on the CPU's SIMD unit (``CostConstants`` names each and its source),
  against the CPU's memory bandwidth, plus the graph's per-node synchronisation.

Every function returns an ``OpCost`` naming its bound and the assumption it rests on. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse.errors import DseError
from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.cores import Core, KernelCycles, find_core, kernel_cycles, known_cores
from dse.model.msg import Msg, msg
from dse.model.ops import Op, op_bytes, op_elements, op_flops, positions

RUNTIMES = ("torch", "native")
RUNTIME_TEXT = {
    "torch": "PyTorch eager as profiled (measured times moved by roofline ratio)",
    "native": "native C/NEON runtime of the bitnet.cpp class (I2_S ternary kernel, f16 head)",
}
#: Aten ops PyTorch eager runs per operator (HF BitNet modules), for its dispatch cost.
_TORCH_ATEN_OPS = {"embed": 1, "rmsnorm": 8, "quant": 6, "rope": 10, "kv_write": 4,
                   "attn_score": 2, "softmax": 2, "attn_v": 2, "residual": 1, "act": 2,
                   "gate_mul": 1, "sample": 1}


def check_runtime(name: str, where: str = "--runtime") -> str:
    if name not in RUNTIMES:
        raise DseError(f"{where}: expected one of {', '.join(RUNTIMES)}, got {name!r}")
    return name


@dataclass(frozen=True)
class CpuSpec:
    """A CPU as a roofline: the profiled host, or the board's PS, with its core
    microarchitecture (``dse.model.cores``), whose kernel cycle counts the native runtime
    prices with."""

    name: str
    peak_fp32_gflops: float
    memory_bandwidth_gb_s: float
    clock_mhz: float
    cores: int = 1
    #: SIMD family the native kernels are counted for: "neon" or "x86" (the core's).
    isa: str = "x86"
    #: An in-order pipeline (Cortex-A53 class): a load that misses stalls issue until its line
    #: arrives, so a kernel's DDR time adds to its instruction time where its loads are not
    #: covered (see ``native_attention``).
    in_order: bool = False
    #: The core microarchitecture (None: looked up from ``name`` when a native kernel is
    #: priced; a one-line error if the table has none).
    core: Core | None = None
    #: Where the CPU's model string came from, for that error (a board file's field).
    where: str = ""

    @classmethod
    def of_host(cls, host) -> CpuSpec:
        core = getattr(host, "core", None) or find_core(host.name)
        return cls(host.name, host.peak_fp32_gflops, host.memory_bandwidth_gb_s,
                   host.clock_mhz, max(1, host.cores), core.isa if core else "x86",
                   core.in_order if core else False, core,
                   f"the host CPU ({getattr(host, 'source', '') or 'profile'})")

    @classmethod
    def of_board(cls, board: Board) -> CpuSpec:
        ps = board.ps_cpu
        core = find_core(ps.model)
        return cls(f"{board.name} PS ({ps.cores}x {ps.model})", ps.peak_fp32_gflops,
                   ps.memory_bandwidth_gb_s, ps.clock_mhz, ps.cores,
                   core.isa if core else "neon", core.in_order if core else False, core,
                   f"{board.path or board.name}: ps_cpu.model")

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def bytes_per_s(self) -> float:
        return self.memory_bandwidth_gb_s * 1e9


def cycles(cpu: CpuSpec, c: CostConstants) -> KernelCycles:
    """The native kernels' cycle counts on ``cpu``'s core; a one-line error for a CPU whose
    core the table does not have (never priced as some other core)."""
    core = cpu.core or find_core(cpu.name)
    if core is None:
        raise DseError(f"{cpu.where or 'CPU'}: expected a CPU core dse has kernel cycle counts "
                       f"for ({known_cores()}; see dse/model/cores.py) to price the native "
                       f"runtime on, got {cpu.name!r}")
    return kernel_cycles(core, c)


@dataclass(frozen=True)
class OpCost:
    """Time of one operator class on a CPU for one forward, what binds it, and why; also the
    cores it keeps busy and the DDR bytes it moves (weights and KV cache: the CPU's own
    activations stay in its caches), for the energy model."""

    time_s: float
    bound: str
    basis: Msg
    cores: int = 1
    ddr_bytes: float = 0.0


def roofline_s(flops: float, nbytes: float, cpu: CpuSpec, flops_scale: float = 1.0) -> float:
    """max(compute, memory) time of a kernel on a CPU at its peaks."""
    return max(flops / (cpu.peak_fp32_gflops * 1e9 * flops_scale), nbytes / cpu.bytes_per_s)


def _bound(compute_s: float, memory_s: float, overhead_s: float) -> str:
    top = max(compute_s, memory_s)
    if overhead_s > top:
        return "overhead"
    return "compute" if compute_s >= memory_s else "memory"


# -- native runtime --------------------------------------------------------------------------

def native_linear(n: int, k: int, m: int, ternary: bool, cpu: CpuSpec, threads: int,
                  c: CostConstants) -> OpCost:
    """A Linear of N x K over M tokens in the native runtime, rows split over ``threads``.

    Ternary: the I2_S kernel (2-bit weights, int8 activations); dense (the output head): f16
    weights against f16-converted activations. Compute is the kernel's cycles per weight per
    token on the CPU's core (``dse.model.cores``); memory is one read of the packed weights
    per forward.
    """
    kc = cycles(cpu, c)
    if ternary:
        cpw = kc.ternary_per_weight
        wbytes = n * k / 4
    else:
        cpw = kc.dense_per_weight
        wbytes = n * k * 2.0
    compute = n * k * m * cpw / (threads * cpu.clock_hz)
    memory = (wbytes + m * k * (1 if ternary else 4)) / cpu.bytes_per_s
    over = c.native_op_overhead_us * 1e-6
    kind = "I2_S ternary GEMV" if ternary else "f16 GEMV"
    return OpCost(max(compute, memory) + over, _bound(compute, memory, over),
                  msg("basis.native_linear", "native {kind} on {core}: {cpw:g} cycles/weight on "
                      "{threads} thread(s), or {mb:.1f} MB at {gbs:g} GB/s", kind=kind,
                      core=kc.core, cpw=round(cpw, 4), threads=threads, mb=wbytes / 1e6,
                      gbs=cpu.memory_bandwidth_gb_s),
                  threads, wbytes)


def _native_cycles(op: Op, kv_dtype: str, kc: KernelCycles) -> float:
    if op.kind in ("attn_score", "attn_v"):
        dot = kc.attn_int8_per_mac if kv_dtype == "int8" else kc.attn_f16_per_mac
        return dot + (kc.attn_v_acc_per_mac if op.kind == "attn_v" else 0.0)
    return {"rmsnorm": kc.norm_per_elem, "quant": kc.quant_per_elem,
            "softmax": kc.softmax_per_elem,
            "sample": kc.sample_per_elem}.get(op.kind, kc.elementwise_per_elem)


def _native_threads(op: Op, m: int, threads: int) -> int:
    """Threads ggml gives an operator: rows are split, so one token row runs on one core,
    while the attention matmuls split over cached positions and softmax over heads."""
    if op.kind in ("attn_score", "attn_v"):
        return threads
    if op.kind == "softmax":
        return max(1, min(threads, op.heads * m))
    return max(1, min(threads, m))


def head_split(heads: int, kv_heads: int, threads: int) -> tuple[tuple[int, ...], ...]:
    """Per thread, how many query heads it takes from each KV group it touches, when the
    query heads are cut into ``threads`` contiguous ranges (heads x t / n up to heads x (t+1)
    / n) and each range is worked group by group, as the bitnet-kv260 runtime's ``attn_worker``
    does. 20 heads in 5 groups of 4 over 4 threads give (4, 1), (3, 2), (2, 3), (1, 4): every
    thread reads two groups' keys and values, so the cache is read 8 times over, not 5."""
    group = max(1, heads // max(1, kv_heads))
    out: list[tuple[int, ...]] = []
    for t in range(threads):
        h, hi = heads * t // threads, heads * (t + 1) // threads
        chunks: list[int] = []
        while h < hi:
            end = min((h // group + 1) * group, hi)
            chunks.append(end - h)
            h = end
        out.append(tuple(chunks))
    return tuple(out)


def _fp32_score_cycles(heads: int, kc: KernelCycles) -> float:
    """Cycles per cached position and head dimension of the K-transposed fp32 score kernels
    for ``heads`` query heads of one group: passes of 4, 2 and 1 heads, each pass loading the
    16 positions' keys once and every head adding its broadcast query and its FMLAs."""
    passes = heads // 4 + (heads % 4) // 2 + heads % 2
    return (passes * kc.attn_fp32_tile + heads * kc.attn_fp32_head) / 16.0


def native_attention(op: Op, m: int, context: int, cpu: CpuSpec, threads: int,
                     kv_dtype: str, kv_elem_bytes: float, c: CostConstants) -> tuple[float, float,
                                                                                     float]:
    """(compute s, memory s, DDR bytes) of one attention matmul (scores or x V) per forward.

    fp32 is the bitnet-kv260 runtime's kernel: query heads split over the threads as
    ``head_split`` gives, each position attended on its own (the cache read once per query
    position), compute taken by the slowest thread. The other formats are ggml's: the matmul
    split evenly over cached positions, the cache read once per forward.
    """
    kc = cycles(cpu, c)
    pos = positions(m, context)
    act = op_bytes(op, m, context, 4.0, kv_elem_bytes)
    if kv_dtype == "fp32":
        split = head_split(op.heads, op.kv_heads, threads)
        if op.kind == "attn_score":
            per = [sum(_fp32_score_cycles(nh, kc) for nh in chunks) for chunks in split]
        else:
            per = [sum(chunks) * kc.attn_v_fp32_per_mac for chunks in split]
        reads = sum(len(chunks) for chunks in split)
        kv = op.count * reads * op.head_dim * pos * kv_elem_bytes
        compute = op.count * pos * op.head_dim * max(per) / cpu.clock_hz
    else:
        per_elem = _native_cycles(op, kv_dtype, kc)
        compute = op_elements(op, m, context) * per_elem / (threads * cpu.clock_hz)
        kv = act.kv_read
    nbytes = kv + act.act_in + act.act_out
    return compute, nbytes / cpu.bytes_per_s, kv


def native_op(op: Op, m: int, context: int, cpu: CpuSpec, threads: int, kv_dtype: str,
              kv_elem_bytes: float, c: CostConstants) -> OpCost:
    """One operator class in the native runtime: kernel cycles vs bytes, plus per-node sync.

    The attention matmuls read the KV cache from DDR once a token with a few cycles of work
    per line; on an in-order core those stalls add to the instructions (compute + memory),
    elsewhere the two overlap (the larger). Every other kernel overlaps its streaming reads.
    """
    used = _native_threads(op, m, threads)
    kc = cycles(cpu, c)
    if op.kind in ("attn_score", "attn_v"):
        compute, memory, kv = native_attention(op, m, context, cpu, threads, kv_dtype,
                                               kv_elem_bytes, c)
        if kv_dtype != "fp32":
            per_elem = _native_cycles(op, kv_dtype, kc)
        elif op.kind == "attn_v":
            per_elem = kc.attn_v_fp32_per_mac
        else:
            per_elem = _fp32_score_cycles(4, kc) / 4  # a pass of 4 heads, per MAC
        over = op.count * (c.native_op_overhead_us + c.native_attn_layer_overhead_us) * 1e-6
        stalls = cpu.in_order
        busy = compute + memory if stalls else max(compute, memory)
        split = (msg("basis.attn_by_heads", " split by query heads") if kv_dtype == "fp32"
                 else msg("basis.attn_by_positions", " split by cached positions"))
        stall = (msg("basis.attn_stalls", ", whose DDR stalls add (in-order core)") if stalls
                 else msg("basis.attn_overlap", ", overlapped with the reads"))
        return OpCost(busy + over, _bound(compute, memory, over),
                      msg("basis.native_attn", "native attention kernel, {cycles:g} cycles/MAC "
                          "on {threads} thread(s){split}; {mb:.2f} MB of cache{stall}",
                          cycles=round(per_elem, 4), threads=used, split=split, mb=kv / 1e6,
                          stall=stall),
                      used, kv)
    per_elem = _native_cycles(op, kv_dtype, kc)
    compute = op_elements(op, m, context) * per_elem / (used * cpu.clock_hz)
    b = op_bytes(op, m, context, 4.0, kv_elem_bytes)
    memory = b.total / cpu.bytes_per_s
    over = op.count * c.native_op_overhead_us * 1e-6
    return OpCost(max(compute, memory) + over, _bound(compute, memory, over),
                  msg("basis.native_op", "native kernel, {cycles:g} cycles/element on "
                      "{threads} thread(s)", cycles=round(per_elem, 4),
                      threads=used), used, b.weights + b.kv_read + b.kv_write)


def head_stage2(vocab: int, hidden: int, top_k: int, rows: int, cpu: CpuSpec, threads: int,
                c: CostConstants) -> tuple[OpCost, OpCost]:
    """Stage 2 of a two-stage head on the PS for ``rows`` sequences, as (select, rescore):
    each sequence picks the top-K of its stage-1 scores (each scaled by its row's scale as it
    is compared; the scores split over ``threads``, then their K-best lists merged), then
    rescores its own K rows exactly against an int8 copy of the head (native kernels). Reading
    the stage-1 sums out of the DMA buffer is the head call's hand-off
    (``dse.model.cost.handoff``)."""
    kc = cycles(cpu, c)
    over = c.native_op_overhead_us * 1e-6
    select = (rows * vocab * kc.topk_per_elem / threads
              + rows * threads * top_k * kc.topk_per_elem) / cpu.clock_hz + over
    macs = rows * top_k * hidden
    rescore = macs * kc.int8_per_mac / (threads * cpu.clock_hz)
    # each sequence's own K int8 rows, read from anywhere in the table
    nbytes = float(rows * top_k * hidden)
    memory = nbytes / cpu.bytes_per_s
    sel = OpCost(select, "compute",
                 msg("basis.head_topk", "two-stage head: top-{k} of {vocab} scores ({sel:g} "
                     "cycles/score on {threads} thread(s))", k=top_k, vocab=vocab,
                     sel=round(kc.topk_per_elem, 4), threads=threads), threads, 0.0)
    res = OpCost(max(rescore, memory) + over, _bound(rescore, memory, over),
                 msg("basis.head_rescore_rows", "two-stage head: {k} int8 rows rescored "
                     "exactly ({mac:g} cycles/MAC on {threads} thread(s))", k=top_k,
                     mac=round(kc.int8_per_mac, 4), threads=threads), threads, nbytes)
    return sel, res


def head_rescore(vocab: int, hidden: int, top_k: int, rows: int, cpu: CpuSpec, threads: int,
                 c: CostConstants) -> OpCost:
    """Stage 2 of a two-stage head on the PS, whole (see ``head_stage2`` for its parts)."""
    sel, res = head_stage2(vocab, hidden, top_k, rows, cpu, threads, c)
    kc = cycles(cpu, c)
    return OpCost(sel.time_s + res.time_s, res.bound if res.time_s > sel.time_s else "compute",
                  msg("basis.head_rescore", "two-stage head, stage 2: top-{k} of {vocab} "
                      "scores ({sel:g} cycles/score), then {k} int8 rows rescored exactly "
                      "({mac:g} cycles/MAC on {threads} thread(s))", k=top_k, vocab=vocab,
                      sel=round(kc.topk_per_elem, 4), mac=round(kc.int8_per_mac, 4),
                      threads=threads), threads, res.ddr_bytes)


def shift_scan(intermediate: int, layers: int, m: int, cpu: CpuSpec, threads: int,
               c: CostConstants) -> OpCost:
    """The PS's share of a fixed-point FFN glue unit: per layer and token, choose the glue's
    shifts from the gate/up results (maxima, then three scaled passes, each reduced to its
    maximum) and write the beats the unit reads, split over ``threads``, with
    ``shift_scan_syncs_per_layer`` pool synchronisations per layer (native kernels).

    As the bitnet-kv260 runtime does it (``gu_chunk``, ``ffn_prep_a_worker``): the gate/up
    int32 results' cache lines are invalidated first (so this call's results are read out
    here, not in its hand-off), read from DDR, and each element's 16-byte beat is stored to the
    DMA buffer's write-combining (uncached) mapping. Uncached stores drain to DDR through the
    store buffer; on an in-order core, once it is full, they stall the instructions, so their
    DDR time adds (elsewhere they overlap like the reads)."""
    elems = layers * m * intermediate
    per_elem = cycles(cpu, c).shift_scan_per_elem
    compute = elems * per_elem / (threads * cpu.clock_hz)
    results = float(elems * 2 * 4)  # the gate and up int32 results, just written by the DMA
    beats = float(elems * 16)  # one 16-byte beat per element, written for the glue's DMA
    reads, writes = results / cpu.bytes_per_s, beats / cpu.bytes_per_s
    busy = max(compute, reads) + writes if cpu.in_order else max(compute, reads + writes)
    inval = results / c.cache_maint_bytes_per_s
    over = layers * m * c.shift_scan_syncs_per_layer * c.native_op_overhead_us * 1e-6
    return OpCost(busy + inval + over, _bound(compute, reads + writes, over + inval),
                  msg("basis.shift_scan", "shift scan for the glue unit: {cycles:g} cycles/"
                      "element on {threads} thread(s), {syncs:g} syncs per layer",
                      cycles=round(per_elem, 4), threads=threads,
                      syncs=c.shift_scan_syncs_per_layer), threads, results + beats)


def ffn_scale(intermediate: int, layers: int, m: int, cpu: CpuSpec, c: CostConstants
              ) -> OpCost:
    """The PS's other share of a fixed-point FFN glue unit: per layer and token, the float
    scale of the FFN's output (the sub-norm's sum of squares and the down projection's
    quantization scale, from the gate/up results), on one thread (the bitnet-kv260 runtime's
    ``ffn_scale``, run on its side thread). It reads the gate/up int32 results and gamma; on an
    in-order core its DDR reads add to its instructions. Whether it overlaps the glue's PL
    passes is the glue unit's to say (``dse.model.units.glue``)."""
    elems = layers * m * intermediate
    per_elem = cycles(cpu, c).ffn_scale_per_elem
    compute = elems * per_elem / cpu.clock_hz
    nbytes = float(elems * 2 * 4)
    memory = nbytes / cpu.bytes_per_s
    busy = compute + memory if cpu.in_order else max(compute, memory)
    return OpCost(busy, _bound(compute, memory, 0.0),
                  msg("basis.ffn_scale", "FFN scale for the glue unit: {cycles:g} cycles/"
                      "element on 1 thread", cycles=round(per_elem, 4)), 1, nbytes)


# -- torch runtime ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    """A profiled module's host time per call at a known size (tokens M0, context C0)."""

    role: str
    call_ms: float
    m: int
    context: int


def _torch_roof(ops: tuple[Op, ...], m: int, context: int, cpu: CpuSpec, act_bytes: float,
                kv_elem_bytes: float) -> float:
    flops = sum(op_flops(op, m, context) for op in ops)
    nbytes = sum(op_bytes(op, m, context, act_bytes, kv_elem_bytes).total for op in ops)
    return roofline_s(flops, nbytes, cpu)


def torch_ops(ops: tuple[Op, ...], m: int, context: int, host: CpuSpec, cpu: CpuSpec,
              act_bytes: float, kv_elem_bytes: float, measured: Measured | None,
              c: CostConstants) -> OpCost:
    """Operators that one profiled module covers (or one unmeasured operator) in PyTorch.

    Measured: the host time per call x calls, moved by the roofline ratio at the measured size;
    work beyond the measured size (a longer context, more tokens) is added at the target's
    roofline. Unmeasured: roofline at the target's peaks plus ``torch_aten_op_cycles`` per
    aten op PyTorch dispatches.
    """
    count = ops[0].count
    dram = sum(b.weights + b.kv_read + b.kv_write
               for b in (op_bytes(op, m, context, act_bytes, kv_elem_bytes) for op in ops))
    if measured is not None:
        at_host = _torch_roof(ops, measured.m, measured.context, host, act_bytes, kv_elem_bytes)
        at_target = _torch_roof(ops, measured.m, measured.context, cpu, act_bytes, kv_elem_bytes)
        moved = measured.call_ms * 1e-3 * count * (at_target / at_host if at_host > 0 else 1.0)
        grown = _torch_roof(ops, m, context, cpu, act_bytes, kv_elem_bytes)
        extra = max(0.0, grown - at_target)
        key = "basis.measured" if cpu == host else "basis.measured_moved"
        en = ("measured (`{role}`, {us:.0f} us/call at M={m}, context {context}) on the host"
              + ("" if cpu == host else ", moved to {cpu} by roofline ratio"))
        return OpCost(moved + extra, "measured",
                      msg(key, en, role=measured.role, us=measured.call_ms * 1e3, m=measured.m,
                          context=measured.context, cpu=cpu.name), 1, dram)
    roof = _torch_roof(ops, m, context, cpu, act_bytes, kv_elem_bytes)
    aten = sum(_TORCH_ATEN_OPS[op.kind] * op.count for op in ops)
    over = aten * c.torch_aten_op_cycles / cpu.clock_hz
    return OpCost(roof + over, "overhead" if over > roof else "memory",
                  msg("basis.unmeasured", "not measured: roofline + {aten} aten op(s) per call "
                      "at {cycles:g} cycles each", aten=aten // max(1, count),
                      cycles=c.torch_aten_op_cycles), 1, dram)


def torch_linear_s(host_call_ms: float, n: int, k: int, m: int, host: CpuSpec, cpu: CpuSpec,
                   dtype_bytes: int, c: CostConstants) -> float:
    """A profiled Linear in PyTorch for M tokens on ``cpu``.

    On the host it is the measured per-call time (M=1) or, for M tokens, the larger of that and
    the GEMM at ``host_gemm_efficiency`` of peak. On another CPU it is scaled by the ratio of the
    two CPUs' roofline times for the same kernel: ``t_target = t_host x roof_target/roof_host``.
    """
    flops = 2.0 * n * k * m
    nbytes = float(n * k * dtype_bytes)
    t_host = host_call_ms * 1e-3
    if m > 1:
        t_host = max(t_host, flops / (host.peak_fp32_gflops * 1e9 * c.host_gemm_efficiency))
    if cpu == host:
        return t_host
    return t_host * roofline_s(flops, nbytes, cpu) / roofline_s(flops, nbytes, host)
