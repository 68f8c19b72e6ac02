"""Every word a plot shows, in Chinese and English, and the names of dse's own plans.

A Chinese report's plots are labelled in Chinese (titles, axes, legends, annotations); what
stays in Latin letters is what the report itself writes as code or symbol: units (ms, GB/s,
MHz), part and board names, layer kinds (``down_proj``), design labels
(``3x 1x80 base3 s128 @300MHz``), runtimes (``native``) and KV formats (``int8``). The word
"token" is kept as the seed report keeps it (生成 Token 数). ``tests/test_plot_lang.py`` reads
the figures' text objects and holds both languages to this.
"""

from __future__ import annotations

import re

from dse.report.i18n import pick

#: key: (zh, en); values may hold ``str.format`` fields.
_P: dict[str, tuple[str, str]] = {
    # -- shared -------------------------------------------------------------------------------
    "phase.decode": ("解码", "decode"),
    "phase.prefill": ("预填充", "prefill"),
    "bound.compute": ("计算", "compute"),
    "bound.ddr": ("DDR", "DDR"),
    "bound.link": ("链路", "link"),
    "bound.overhead": ("调用开销", "overhead"),
    "designs": ("已评估的设计（{n:,} 个；显示 {shown:,} 个）",
                "designs evaluated ({n:,}; {shown:,} shown)"),
    "designs.shown": ("已评估的设计（显示 {shown:,} 个）", "designs evaluated ({shown:,} shown)"),
    "front": ("帕累托前沿（无常驻）", "Pareto front (no residency)"),
    "tok_s": ("解码速度（token/s）", "decode tokens per second"),
    "cpu_only": ("仅 CPU，{rt}", "CPU only, {rt}"),
    "cpu_only.kv": ("仅 CPU，{rt} 运行时，KV {kv}", "CPU only, {rt} runtime, KV {kv}"),
    "no_fit": ("（装不下）", " (does not fit)"),
    "comma": ("，", ", "),
    # -- roofline -----------------------------------------------------------------------------
    "roof.engine": ("三值引擎上限：2 × {lanes} 路 × {mhz:g} MHz = {gops:.0f} Gop/s",
                    "ternary engine roof: 2 × {lanes} lanes × {mhz:g} MHz = {gops:.0f} Gop/s"),
    "roof.head": ("稠密输出头上限（{head}）：2 × {macs} 个 MAC × {mhz:g} MHz = {gops:.1f} Gop/s",
                  "dense head roof ({head}): 2 × {macs} MACs × {mhz:g} MHz = {gops:.1f} Gop/s"),
    "roof.ddr": ("DDR 上限：{gbs:.2f} GB/s（峰值 {peak:g} × 效率 {eff:g}）",
                 "DDR roof: {gbs:.2f} GB/s ({peak:g} peak × {eff:g})"),
    "roof.peak": ("DDR 峰值：{peak:g} GB/s", "DDR peak: {peak:g} GB/s"),
    "roof.link": ("链路上限：输入流 {gbs:.2f} GB/s（{ports} × {bits} 位 HP 端口）",
                  "link roof: {gbs:.2f} GB/s input stream ({ports} × {bits}-bit HP)"),
    "roof.call": ("调用，{phase}，{bound}受限", "call, {phase}, {bound}-bound"),
    "roof.point": ("{kind}{res} ×{n}", "{kind}{res} ×{n}"),
    "roof.resident": ("（常驻）", " (resident)"),
    "roof.nothing": ("最佳方案没有卸载任何层", "the best plan offloads nothing"),
    "roof.x": ("运算强度（每 DDR 字节的运算数：2·N·K·M /（权重 + 激活 + 输出字节））",
               "operational intensity (ops per DDR byte: 2·N·K·M / (weight + act + out "
               "bytes))"),
    "roof.y": ("实际吞吐（运算/秒，调用时间含开销与 PS 工作）",
               "achieved throughput (ops/s, call time incl. overhead and PS work)"),
    "roof.title": ("{board}：方案“{plan}”的屋顶线图（{design}）",
                   "{board}: roofline of plan '{plan}' ({design})"),
    # -- Pareto -------------------------------------------------------------------------------
    "pareto.against": ("能装下的最快 CPU 运行时（{rt}）",
                       "the fastest CPU runtime that fits ({rt})"),
    "pareto.lut_cap": ("LUT 上限（{lut:,} 的 {cap:.0%}）", "LUT cap ({cap:.0%} of {lut:,})"),
    "pareto.lut_x": ("加速器使用的 LUT 数", "LUTs used by the accelerator"),
    "pareto.ddr_cap": ("DDR 持续带宽 {gbs:.2f} GB/s", "sustained DDR {gbs:.2f} GB/s"),
    "pareto.ddr_x": ("DDR 权重带宽占用（GB/s，按目标时间平均）",
                     "DDR weight bandwidth drawn (GB/s, averaged over the objective time)"),
    "pareto.best": ("最佳方案：{x:.2f}x", "best plan: {x:.2f}x"),
    "pareto.resident": ("（{n} 层常驻）", " ({n} layers resident)"),
    "pareto.naive": ("朴素前 5 层：{x:.2f}x", "naive top-5: {x:.2f}x"),
    "pareto.y": ("相对{against}的加速比 (x)\n目标：{objective}",
                 "speedup vs {against} (x)\nobjective: {objective}"),
    "pareto.lut_title": ("LUT 与加速比", "LUT vs speedup"),
    "pareto.ddr_title": ("DDR 带宽与加速比", "DDR bandwidth vs speedup"),
    "pareto.title": ("{board}：设计空间（{view}）", "{board}: design space ({view} view)"),
    "view.on-board": ("板上视角", "on-board"),
    "view.host-attached": ("主机连接视角", "host-attached"),
    # -- context ------------------------------------------------------------------------------
    "ctx.plan": ("{plan}：{design}，KV {kv}", "{plan}: {design}, KV {kv}"),
    "ctx.objective": ("目标的上下文（{n}）", "objective's context ({n})"),
    "ctx.band": ("{plan}：模型误差的 90% 误差带（超出实测范围处变宽）",
                 "{plan}: 90% band of the model's error (wider where it extrapolates)"),
    "ctx.x": ("上下文长度（KV 缓存中的 token 数）", "context length (tokens in the KV cache)"),
    "ctx.title": ("{board}：解码速度随上下文变化（{n} 个序列）",
                  "{board}: decode tok/s vs context ({n} sequence(s))"),
    # -- rounds of sequences and prompts -------------------------------------------------------
    "seq.plan": ("{plan}：{design}，VMAX = S{vpc}", "{plan}: {design}, VMAX = S{vpc}"),
    "seq.vpc": ("，每时钟 {n} 个", ", {n} a clock"),
    "seq.all": ("全部序列合计的解码速度（token/s）", "aggregate decode tok/s (all sequences)"),
    "seq.one": ("每个序列的速度（token/s，1 / 其延迟）",
                "tok/s of each sequence (1 / its latency)"),
    "seq.x": ("一轮中的序列数（共享每次权重读取）",
              "sequences in a round (sharing each weight pass)"),
    "seq.title": ("{board}：上下文 {n} 个 token 时的解码轮次（虚线：目标的 {s} 个）",
                  "{board}: decode rounds at {n} tokens of context (dotted: the objective's {s})"),
    "ttft.plan": ("{plan}：{design}{groups}", "{plan}: {design}{groups}"),
    "ttft.groups": ("，每组 {g} 个", ", groups of {g}"),
    "ttft.objective": ("目标的提示词（{n} 个 token）", "objective's prompt ({n} tokens)"),
    "ttft.x": ("提示词长度（token）", "prompt length (tokens)"),
    "ttft.y": ("首 token 时间（秒）", "time to first token (s)"),
    "ttft.title": ("{board}：首 token 时间随提示词长度变化",
                   "{board}: time to first token vs prompt length"),
    # -- energy -------------------------------------------------------------------------------
    "energy.best": ("最佳方案：{tok:.2f} token/s，{j:.3f} J/token",
                    "best plan: {tok:.2f} tok/s, {j:.3f} J/token"),
    "energy.x": ("每生成一个 token 的能量（J，整板）", "joules per generated token (whole board)"),
    "energy.title": ("{board}：速度与每 token 能量", "{board}: speed vs energy per token"),
    # -- breakdown ----------------------------------------------------------------------------
    "bd.bar": ("{plan}\n{tok:.1f} token/s", "{plan}\n{tok:.1f} tok/s"),
    "bd.cpu": ("仅 CPU（{rt}）\n{tok:.1f} token/s", "CPU only ({rt})\n{tok:.1f} tok/s"),
    "bd.total": ("{ms} ms", "{ms} ms"),
    "bd.y": ("每个解码 token 的时间（ms）", "ms per decode token"),
    "bd.title": ("{board}：一个解码 token 的时间去向（上下文 {n} 个 token）",
                 "{board}: where a decode token goes ({n} tokens of context)"),
    "comp.ternary_pl": ("三值矩阵乘（PL）", "ternary matmuls (PL)"),
    "comp.ternary_cpu": ("三值矩阵乘（CPU）", "ternary matmuls (CPU)"),
    "comp.head": ("输出头", "output head"),
    "comp.attention": ("注意力", "attention"),
    "comp.norms_quant_rope_residual": ("归一化、量化、旋转位置编码、残差",
                                       "norms, quant, RoPE, residuals"),
    "comp.elementwise": ("FFN 逐元素运算", "FFN element-wise"),
    "comp.handoff": ("交接与每次调用开销", "hand-offs + per-call overhead"),
    "comp.sampling": ("采样", "sampling"),
    # -- the profile report's plots -----------------------------------------------------------
    "prof.prefill": ("预填充（对提示词的一次前向）", "prefill (1 forward over the prompt)"),
    "prof.decode": ("解码（{n} 次单 token 前向）", "decode ({n} one-token forwards)"),
    "prof.x": ("时间（ms，按模块与调用求和）", "time (ms, summed over modules and calls)"),
    "prof.title": ("{model}（{dtype}）：各模块角色的时间",
                   "{model} ({dtype}): time per module role"),
    "prof.none": ("此 profile 没有按阶段的模块时间", "no per-phase module times in this profile"),
    "mem.rss": ("进程 RSS", "process RSS"),
    "mem.sys": ("系统已用", "system used"),
    "mem.peak": ("RSS 峰值 {mb:.0f} MB", "peak RSS {mb:.0f} MB"),
    "mem.x": ("profiler 启动后的时间（秒）", "time since the profiler started (s)"),
    "mem.y": ("MB（2^20 字节）", "MB (2^20 bytes)"),
    "mem.title": ("{model}（{dtype}）：内存", "{model} ({dtype}): memory"),
    "mem.none": ("此 profile 没有内存采样", "no memory samples in this profile"),
}


def pt(key: str, lang: str, **fields: object) -> str:
    """The plot string ``key`` in ``lang`` (zh or en), its fields filled."""
    return pick(_P, key, lang, **fields)


def has(key: str) -> bool:
    return key in _P


#: dse's own plan names (``dse.search.explore``) and their Chinese names; a name dse did not
#: give (a plan file's ``name:``) is shown as written.
_PLAN_NAMES = {"best": "最佳方案", "frugal": "最省资源", "no head unit": "无输出头单元",
               "all ternary": "全部三值层", "naive top-5": "朴素前 5 层",
               "on-chip weights": "片上权重", "head unit": "输出头单元"}
_UNIT_KINDS = {"attention": "注意力", "glue": "胶合", "head": "输出头"}


def plan_name(label: str, lang: str) -> str:
    """A plan's display name: dse's own names translated in Chinese (``best i2`` ->
    ``最佳方案（i2）``, ``what-if: glue unit`` -> ``假设：胶合单元``)."""
    if lang != "zh":
        return label
    if label in _PLAN_NAMES:
        return _PLAN_NAMES[label]
    m = re.fullmatch(r"best (\S+)", label)
    if m:
        return f"{_PLAN_NAMES['best']}（{m.group(1)}）"
    m = re.fullmatch(r"(what-if|with): (.+)", label) or re.fullmatch(r"(with) (.+)", label)
    if m:
        head = "假设：" if m.group(1) == "what-if" else "加上"
        rest = m.group(2)
        if rest in _PLAN_NAMES:
            return head + _PLAN_NAMES[rest]
        kinds = re.sub(r" units?$", "", rest).split(" + ")
        return head + " + ".join(_UNIT_KINDS.get(k, k) for k in kinds) + " 单元"
    return label
