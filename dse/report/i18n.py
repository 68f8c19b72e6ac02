"""The profile report's headings and labels, in Chinese (the seed's exact strings) and English.

One table, read by both the Markdown writer (``dse.report.profile_md``) and the importer
(``dse.profile.seed_import``): a label changed here changes both, so a report we write can
always be read back. Each entry is ``key: (zh, en)``; table headers are whole Markdown header
rows (split with ``columns``); labels shown as ``**label**: value`` are stored without the stars.
The few cell conventions both sides share (pipes, code cells) live here too.
"""

from __future__ import annotations

LANGS = ("zh", "en")

_TABLE: dict[str, tuple[str, str]] = {
    # -- header ------------------------------------------------------------------------------
    "title": ("# BitNet b1.58 推理性能分析报告", "# BitNet b1.58 Inference Performance Report"),
    "generated": ("生成时间", "Generated"),
    "model_path": ("模型路径", "Model path"),
    "dtype": ("数据类型", "Data type"),
    "prompt_tokens": ("提示词 Token 数", "Prompt tokens"),
    "notes": ("测量说明", "Measurement notes"),
    # -- 1. system ---------------------------------------------------------------------------
    "s1": ("## 1. 系统信息", "## 1. System information"),
    "s1.cpu": ("### CPU 配置", "### CPU configuration"),
    "cols.cpu": ("| 属性 | 值 |", "| Property | Value |"),
    "cpu.model": ("CPU 型号", "CPU model"),
    "cpu.arch": ("架构", "Architecture"),
    "cpu.physical": ("物理核心数", "Physical cores"),
    "cpu.logical": ("逻辑核心数", "Logical cores"),
    "cpu.base_mhz": ("基准频率", "Base frequency"),
    "cpu.current_mhz": ("当前频率", "Current frequency"),
    "cpu.threads": ("PyTorch 线程数", "PyTorch threads"),
    "s1.norm": ("### 频率归一化", "### Frequency normalization"),
    "norm.reference": ("参考频率", "Reference frequency"),
    "norm.factor": ("归一化系数", "Normalization factor"),
    "norm.formula": ("计算公式", "Formula"),
    "norm.formula_text": ("`归一化时间 = 实测时间 × (实际频率 / 参考频率)`",
                          "`normalized time = measured time × (actual frequency / reference "
                          "frequency)`"),
    "s1.roof": ("### 主机 Roofline (实测)", "### Host roofline (measured)"),
    "cols.roof": ("| 指标 | 值 |", "| Metric | Value |"),
    "roof.fp32": ("峰值 fp32 GEMM", "Peak fp32 GEMM"),
    "roof.bf16": ("峰值 bf16 GEMM", "Peak bf16 GEMM"),
    "roof.bw": ("内存带宽", "Memory bandwidth"),
    "roof.method": ("测量方法", "Method"),
    # -- 2. phases ---------------------------------------------------------------------------
    "s2": ("## 2. 推理阶段分析", "## 2. Inference phases"),
    "cols.phases": ("| 阶段 | 耗时 (ms) | 归一化耗时 (ms) | 占比 (%) | 内存变化 (MB) |",
                    "| Phase | Time (ms) | Normalized time (ms) | Share (%) "
                    "| Memory change (MB) |"),
    "phase.tokenizer_load": ("Tokenizer 加载", "Tokenizer load"),
    "phase.model_load": ("Model 加载", "Model load"),
    "phase.encode": ("Tokenization (编码)", "Tokenization (encode)"),
    "phase.prefill": ("Prefill (首次前向)", "Prefill (first forward)"),
    "phase.decode": ("Decode (逐token生成)", "Decode (token by token)"),
    "phase.detokenize": ("Detokenization (解码)", "Detokenization"),
    "total": ("总计", "Total"),
    "s2.summary": ("### 汇总统计", "### Summary"),
    "sum.total_time": ("总推理时间", "Total inference time"),
    "sum.normalized_total": ("归一化总时间", "Normalized total time"),
    "sum.peak_memory": ("峰值内存占用", "Peak memory"),
    "sum.tokens": ("生成 Token 数", "Generated tokens"),
    "sum.ms_per_token": ("平均每 Token 耗时", "Mean time per token"),
    "sum.throughput": ("推理吞吐量", "Throughput"),
    # -- 3. Linear layers --------------------------------------------------------------------
    "s3": ("## 3. 线性层 (Linear Layer) 详细分析", "## 3. Linear layers"),
    "lin.count": ("总计 Linear 层数量", "Linear layers (count)"),
    "lin.total": ("Linear 层总耗时", "Linear total time"),
    "s3.top": ("### 3.1 最耗时的 Linear 层 (Top 20)",
               "### 3.1 Most expensive Linear layers (top 20)"),
    "cols.top": ("| 排名 | 层名称 | 调用次数 | 总耗时 (ms) | 归一化耗时 (ms) | 占比 (%) | 参数量 |",
                 "| Rank | Layer | Calls | Total (ms) | Normalized (ms) | Share (%) | Params |"),
    "s3.groups": ("### 3.2 按模块分组统计", "### 3.2 Grouped by role"),
    "cols.groups": ("| 模块类型 | 层数量 | 总耗时 (ms) | 占比 (%) | 总参数量 |",
                    "| Module type | Layers | Total (ms) | Share (%) | Total params |"),
    "s3.full": ("### 3.3 完整 Linear 层列表", "### 3.3 Full Linear layer list"),
    "lin.expand": ("点击展开完整列表 (共 {n} 层)", "Click to expand the full list ({n} layers)"),
    "cols.full": ("| 层名称 | 调用次数 | 总耗时 (ms) | 占比 (%) | 输入形状 | 输出形状 | 参数量 |",
                  "| Layer | Calls | Total (ms) | Share (%) | Input shape | Output shape "
                  "| Params |"),
    "plot.roles": ("各模块类型耗时 (Prefill 与 Decode)", "Time per role (prefill vs decode)"),
    "s3.phase": ("### 3.4 Prefill 与 Decode 对比 (按模块类型)",
                 "### 3.4 Prefill vs decode by role"),
    "split.text": ("Prefill 是对整个提示词的一次前向；Decode 每生成一个 Token 前向一次。"
                   "“Decode 每次调用”是 FPGA 逐 Token 加速要对标的时间。",
                   "Prefill is one forward over the whole prompt; decode is one forward per "
                   "generated token. \"Decode per call\" is the time an FPGA would have to beat "
                   "token by token."),
    "cols.phase": ("| 模块类型 | 层数量 | Prefill 调用 | Prefill 耗时 (ms) | Decode 调用 "
                   "| Decode 耗时 (ms) | Decode 每次调用 (ms) | Decode 占比 (%) |",
                   "| Role | Layers | Prefill calls | Prefill (ms) | Decode calls | Decode (ms) "
                   "| Decode per call (ms) | Decode share (%) |"),
    "s3.other": ("### 3.5 非 Linear 模块", "### 3.5 Non-Linear modules"),
    "other.text": ("注意力 (`self_attn`) 的时间不含其 q/k/v/o 投影与 `attn_sub_norm`，即注意力核心"
                   "（RoPE、KV 缓存更新、softmax(QKᵀ)V）；其余模块为整次调用的时间。",
                   "Attention (`self_attn`) time excludes its q/k/v/o projections and "
                   "`attn_sub_norm`: it is the attention core (RoPE, KV-cache update, "
                   "softmax(QKᵀ)V); other modules are timed over their whole call."),
    "cols.other": ("| 模块类型 | 类别 | 模块数 | 调用次数 | Prefill 耗时 (ms) | Decode 耗时 (ms) "
                   "| 总耗时 (ms) | Decode 每次调用 (ms) |",
                   "| Role | Kind | Modules | Calls | Prefill (ms) | Decode (ms) | Total (ms) "
                   "| Decode per call (ms) |"),
    "other.total": ("非 Linear 模块总耗时", "Non-Linear total time"),
    # -- 4. tokens ---------------------------------------------------------------------------
    "s4": ("## 4. Token 生成详情", "## 4. Token generation"),
    "s4.stats": ("### 4.1 统计信息", "### 4.1 Statistics"),
    "tok.count": ("生成 Token 数", "Generated tokens"),
    "tok.min": ("最小耗时", "Min time"),
    "tok.max": ("最大耗时", "Max time"),
    "tok.mean": ("平均耗时", "Mean time"),
    "tok.std": ("标准差", "Standard deviation"),
    "tok.median": ("中位数", "Median"),
    "s4.list": ("### 4.2 Token 生成列表", "### 4.2 Token list"),
    "tok.expand": ("点击展开完整列表 (共 {n} 个 Token)",
                   "Click to expand the full list ({n} tokens)"),
    "cols.tokens": ("| 序号 | Token ID | Token 文本 | 耗时 (ms) | 归一化耗时 (ms) | 内存 (MB) |",
                    "| # | Token ID | Token text | Time (ms) | Normalized time (ms) "
                    "| Memory (MB) |"),
    # -- 5. memory ---------------------------------------------------------------------------
    "s5": ("## 5. 内存占用时间线", "## 5. Memory timeline"),
    "cols.memory": ("| 时间点 (s) | 进程 RSS (MB) | 虚拟内存 (MB) | 系统已用 (MB) "
                    "| 系统总量 (MB) |",
                    "| Time (s) | Process RSS (MB) | Virtual memory (MB) | System used (MB) | "
                    "System total (MB) |"),
    "mem.expand": ("点击展开完整时间线 (共 {n} 个采样点)",
                   "Click to expand the full timeline ({n} samples)"),
    "plot.memory": ("内存占用时间线", "Memory timeline"),
    # -- 6. next step (ours; replaces the seed's naive "FPGA 加速建议") ------------------------
    "s6": ("## 6. 下一步：设计空间探索", "## 6. Next step: design-space exploration"),
    "next.text": ("本报告只记录 CPU 上的实测。要为 FPGA 评估加速方案，请对本 profile 运行 "
                  "`dse explore`：它按板卡资源与带宽估算各层的加速效果，而不是只看 CPU 耗时排名。",
                  "This report records CPU measurements only. To weigh FPGA acceleration, run "
                  "`dse explore` on this profile: it estimates each layer against the board's "
                  "resources and bandwidth instead of ranking by CPU time."),
    "s6.outliers": ("### 异常值 (已标记)", "### Flagged outliers"),
    "out.none": ("未发现异常值。", "No outliers flagged."),
    "out.intro": ("以下模块的耗时远高于同角色模块；后续阶段使用稳态估计（同角色中位数）：",
                  "These modules took far longer than their same-role siblings; later stages use "
                  "the steady-state estimate (the siblings' median):"),
    "out.item": ("`{name}`: 实测 {total} ms，稳态估计 {steady} ms（{ratio}×，超出 {excess} ms）"
                 "— {reason}",
                 "`{name}`: measured {total} ms, steady-state estimate {steady} ms ({ratio}×, "
                 "excess {excess} ms) — {reason}"),
    "out.warmup": ("首层首次调用的预热开销", "first-call warm-up artefact in the first layer"),
    "out.other": ("相对同角色模块的异常值", "outlier vs its same-role siblings"),
    "footer": ("*本报告由 dse 根据 profile 生成*", "*Generated by dse from a profile*"),
}

#: Shown for a value the profile does not hold.
UNKNOWN = "—"


def pick(table: dict[str, tuple[str, str]], key: str, lang: str, **fields: object) -> str:
    """``table[key]`` (a (zh, en) pair) in ``lang``, its fields filled: the one lookup of
    every report string table (this module's, the explore card's, the plots', ...)."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {LANGS}, got {lang!r}")
    text = table[key][LANGS.index(lang)]
    return text.format(**fields) if fields else text


def t(key: str, lang: str) -> str:
    """The label ``key`` in ``lang`` (``zh`` or ``en``)."""
    return _TABLE[key][LANGS.index(lang)]


def columns(key: str, lang: str) -> tuple[str, ...]:
    """The cells of a header row entry (``cols.*``)."""
    return split_row(t(key, lang))


def split_row(line: str) -> tuple[str, ...]:
    """Cells of one Markdown table row; ``\\|`` is an escaped pipe inside a cell."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells, cur, i = [], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            cur.append("|")
            i += 2
            continue
        if body[i] == "|":
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(body[i])
        i += 1
    cells.append("".join(cur).strip())
    return tuple(cells)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {v[1]: k for k, v in _ESCAPES.items()}


def code_cell(text: str) -> str:
    """``text`` as a one-line code cell: backslash, newline, CR and tab escaped C-style."""
    return "`" + "".join(_ESCAPES.get(c, c) for c in text) + "`"


def uncode_cell(cell: str) -> str:
    """Inverse of ``code_cell`` (after ``split_row``): drop one backtick each side, unescape."""
    body = cell[1:-1] if len(cell) >= 2 and cell[0] == cell[-1] == "`" else cell
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in _UNESCAPES:
            out.append(_UNESCAPES[body[i + 1]])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def phase_label(phase: str, lang: str) -> str:
    """The displayed name of a phase key from ``dse.profile.format.PHASES``."""
    return t(f"phase.{phase}", lang)


def detect_lang(text: str) -> str | None:
    """The language whose section headings the text uses (most hits wins); None if neither."""
    lines = {ln.rstrip() for ln in text.splitlines()}
    heads = [k for k in _TABLE if k == "title" or (k[0] == "s" and k[1:2].isdigit())]
    scores = {lang: sum(t(k, lang) in lines for k in heads) for lang in LANGS}
    best = max(LANGS, key=lambda lang: scores[lang])
    return best if scores[best] else None


__all__ = ["LANGS", "UNKNOWN", "code_cell", "columns", "detect_lang", "phase_label", "split_row",
           "t", "uncode_cell"]


# -- generated messages (dse.model.msg.Msg): key -> Chinese template ---------------------------
# The English template travels with each message; a key missing here renders in English, which
# the language test of the explore report catches.
MESSAGES: dict[str, str] = {
    "note.no_split": "每次调用的主机时间取所有调用的平均值（该 profile 没有预填充/解码拆分）",
    "note.outliers": "预热离群值已替换为同角色层的中位数：{items}",
    "note.config": "算子列表按模型配置生成：`{source}`",
    "note.no_profile": "没有 profile：每个 Linear 的形状取自模型配置，未测量主机时间；torch "
                       "运行时未测量（用 --profile 给出 profile 才能计价），原生运行时按指令数"
                       "为每个内核计价",
    "advice.need": "{model} 在 {board} 上至少需要 {need:,.0f} MiB DDR（每个三值 Linear 都用 "
                   "base-3 打包，每个权重 1.6 位，是本 overlay 能解码的最紧凑格式；int8 KV 缓存），"
                   "板卡只有 {have:,.0f} MiB",
    "advice.context": "上下文最多 {n:,} 个 token 时能装下（--context-tokens）",
    "advice.models": "能装进 {board} 的较小模型：{items}",
    "advice.boards": "DDR 更大、能装下 {model} 的板卡：{items}",
    "advice.none": "没有附带的板卡、也没有更小的预设能装下它",
    "note.linears_only": "该 profile 只测量了 Linear 层：torch 运行时下其余算子按屋顶线加上 "
                         "PyTorch 每个算子的调度开销估算",
    "note.host_check": "在被 profile 的主机上核对：torch 运行时各算子合计每个解码 token "
                       "{priced:,.1f} ms，profile 实测 {measured:,.1f} ms（{outside:+.1%} "
                       "不在任何已计价的算子内）",
    "note.searched": "共搜索 {n} 个设计（{rejected} 个因资源上限、链路宽度或时钟证据被排除）；"
                     "每个设计的卸载集合精确最优；常驻权重与 DDR 容量由 MILP 在最好的 "
                     "{shortlist} 个设计上求解",
    "note.energy": "能量目标：卸载与常驻按每 token 焦耳数选择，计入引擎自身的 "
                   "URAM/BRAM 静态功耗；常驻缓冲区的静态功耗在重新估算每个排名方案时计入"
                   "（其数字是精确的），不在 MILP 内",
    "note.edp": "能量目标：卸载与常驻按每 token 焦耳数选择，计入引擎自身的 URAM/BRAM "
                "静态功耗；常驻缓冲区的静态功耗在重新估算每个排名方案时计入（其数字是"
                "精确的），不在 MILP 内；能量-延迟积按能量放置每个组，按焦耳 × 秒给设计排名",
    "why.best": "所有设计中目标值最低",
    "why.packing": "使用 {packing} 打包的最佳设计",
    "why.runtime": "PS 上使用 {runtime} 运行时的最佳方案",
    "why.frugal": "目标值在最佳方案 5% 以内、LUT 最少的设计",
    "why.nohead": "没有稠密 lm_head 单元的最佳设计",
    "why.all_ternary": "最佳设计上卸载全部三值 Linear，不常驻",
    "why.whatif.head": "可构建的最佳设计加上一个稠密 bf16 lm_head 单元（DSP MAC），"
    "本覆盖层没有该单元",
    "why.whatif.clock": "最佳方案运行在 {top:g} MHz，超出时钟证据所支持的 {sup:g} MHz："
                         "没有人证明过这样的时序收敛",
    "note.clock_beyond": "警告：假设情形：{board} 与引擎模板允许 {top:g} MHz；时钟证据对最佳方案"
                         "只支持 {sup}（{evidence}）：高于它的方案都是假设情形，绝不作为推荐",
    "note.count_beyond": "警告：假设情形：引擎模板最多构建 {asked} 个 {kind} 单元；"
                         "{family} 上已发表的时序收敛最多包含 {most} 个："
                         "更多的方案都是假设情形，绝不作为推荐",
    "why.whatif.resident": "可构建的最佳设计加上片上权重缓冲（URAM/BRAM 常驻），本覆盖层没有该缓冲",
    "why.naive.share": "种子报告认为这 5 层占 Linear 时间的 {share:.1%}（即使代价为零，"
                       "Amdahl 上限也只有 {cap:.2f}x）",
    "why.naive.warm": "`{name}` 是预热造成的假象（实测 {measured:.0f} ms，稳态 {steady:.0f} ms）",
    "why.naive.largest": "没有 profile 测量各层：取权重最多的 5 个 Linear",
    "why.naive.steady": "稳态下它们只占一个 token 的 {share:.1%}，所以上限是 {cap:.3f}x",
    "method.milp": "MILP（HiGHS），最优，间隙 {gap:.1e}；PS 运行时 {runtime}",
    "method.direct": "无需 MILP 的精确解：没有可共享的片上缓冲区且方案装得下 DDR，"
                     "每组放在代价更低处；PS 运行时 {runtime}",
    "method.milp_failed": "MILP 无解：`{message}`",
    "method.fixed_list": "固定列表",
    "method.fixed_set": "固定集合",
    "reason.memory": "需要 {need:,.0f} MiB DDR，板卡只有 {have:,.0f} MiB",
    "infeasible.head": "lm_head 是 bf16 而不是三值：需要稠密输出头单元（head: int8 或 bf16）",
    "infeasible.resident": "常驻权重 {need:,} B 超出引擎片上缓冲区 {have:,} B",
    "infeasible.cap": "资源超出上限：`{what}`",
    "infeasible.link": "链路或时钟超出板卡能力：`{what}`",
    "infeasible.memory": "内存：方案需要 {need:,.0f} MiB DDR，板卡只有 {have:,.0f} MiB",
    "basis.native_linear": "原生 {kind} 内核（{core}）：{threads} 个线程上每个权重 {cpw:g} 个周期，"
                           "或 {mb:.1f} MB 按 {gbs:g} GB/s",
    "basis.native_op": "原生内核，{threads} 个线程上每个元素 {cycles:g} 个周期",
    "basis.native_attn": "原生注意力内核，{threads} 个线程上每个乘加 {cycles:g} 个周期{split}；"
                         "缓存 {mb:.2f} MB{stall}",
    "basis.attn_by_heads": "，按查询头划分",
    "basis.attn_by_positions": "，按缓存位置划分",
    "basis.attn_stalls": "，其 DDR 停顿叠加在指令之上（顺序执行核）",
    "basis.attn_overlap": "，与读取重叠",
    "basis.measured": "实测（`{role}`，M={m}、上下文 {context} 时每次调用 {us:.0f} µs），在主机上",
    "basis.measured_moved": "实测（`{role}`，M={m}、上下文 {context} 时每次调用 {us:.0f} µs），"
                            "按屋顶线之比从主机移到 {cpu}",
    "basis.unmeasured": "未测量：屋顶线 + 每次调用 {aten} 个 aten 算子，每个 {cycles:g} 个周期",
    "basis.in_unit": "在 PL 单元 `{unit}` 中",
    "basis.scan_readout": "移位扫描自己使 gate/up 结果的缓存失效并读取它们：这些调用的交接不再读出",
    "basis.attention": "PL 注意力单元（{unit}）：每层 2 次调用，每个时钟 {macs} 次乘加，"
                       "{mhz:g} MHz，KV 缓存最高按 {gbs:.2f} GB/s 读取；softmax 在 PS 上",
    "why.whatif.unit": "上面的方案加上 {unit}，附带的 overlay 不构建它（{rule}）",
    "why.with_unit": "上面的方案加上 {unit}，附带的 overlay 可以构建它；搜索没有为该目标选择它",
    "why_not.whatif": "附带的 overlay 不构建它（{rule}）",
    "why_not.serves": "它不能运行该模型或该场景",
    "why_not.fits": "加上它，设计超出开发板的上限：{over}",
    "why_not.clock": "时钟证据不支持带着它在 {mhz:g} MHz 运行（已发表的时序收敛中没有这么多"
                     "单元或这么高的利用率）",
    "why_not.solve": "加上它没有可解的方案",
    "basis.shift_scan_op": "PS 为胶合单元选择定点移位：每个元素 {cycles:g} 个周期",
    "basis.shift_scan": "胶合单元的移位扫描：{threads} 个线程上每个元素 {cycles:g} 个周期，"
                        "每层同步 {syncs:g} 次",
    "infeasible.attn_kv": "注意力单元读取 int8 KV 缓存；该场景的 KV 缓存是 {kv}（--kv-dtype int8）",
    "infeasible.attn_shape": "注意力单元按每个 KV 头 {g} 个查询头、头维度 {d}、最多 {h} 个 KV 头"
                             "构建；模型是 {mg}、{md} 和 {mh}",
    "infeasible.attn_tmax": "注意力单元最多容纳 {tmax} 个位置，该场景要关注 {ctx} 个",
    "basis.glue": "PL 胶合单元：{passes} 遍 × 每个元素 {cpe:g} 个周期，{mhz:g} MHz",
    "basis.ffn_scale": "胶合单元的 FFN 缩放：1 个线程上每个元素 {cycles:g} 个周期",
    "basis.ffn_scale_op": "PS 计算 FFN 输出的缩放：1 个线程上每个元素 {cycles:g} 个周期，{how}",
    "basis.ffn_scale_beside": "与胶合单元的各遍重叠（每次前向一个向量）",
    "basis.ffn_scale_before": "在每个向量的胶合各遍之前",
    "basis.no_logits": "不运行：该次前向不计算 logits（最后一组之前的提示组）",
    "infeasible.glue_model": "FFN 胶合单元位于 gate/up 与 down 之间；该模型没有门控 FFN",
    "infeasible.unit_needs": "{kind} 单元需要每层的 {roles} 都在引擎上",
    "basis.head_rescore": "两级输出头的第二级：从 {vocab} 个分数中取前 {k} 个"
                          "（每个分数 {sel:g} 个周期），再用 int8 精确重算这 {k} 行"
                          "（{threads} 个线程上每次乘加 {mac:g} 个周期）",
    "basis.quant_paid": "{basis}；只计入 {frac:.0%} 的层（卸载的 Linear 的输入）",
    # what in a plan was never measured (dse.model.band)
    "band.board": "板卡 {value}：没有在这块板上的实测",
    "band.packing": "打包 {value}：没有实测的设计",
    "band.engines": "{value} 个引擎：超出实测的 {lo:g}–{hi:g}",
    "band.vectors": "每次权重流 {value} 个向量：超出实测的 {lo:g}–{hi:g}",
    "band.m": "每次前向 {value} 个位置：超出实测的 {lo:g}–{hi:g}",
    "band.context": "上下文 {value}：超出实测的 {lo:g}–{hi:g} 个 token",
    "band.threads": "{value} 个线程：超出实测的 {lo:g}–{hi:g}",
    "band.sequences": "{value} 个序列：超出实测的 {lo:g}–{hi:g}",
    "band.kv_dtype": "PS 上的 KV {value}：从未实测",
    "band.runtime": "PS 运行时 {value}：从未在板上实测",
    "band.phase": "{what}（{value}）：从未实测",
    "band.attention_unit": "注意力单元数 {value}：没有实测的设计",
    "band.glue": "胶合单元数 {value}：没有实测的设计",
    "band.glue_rate": "胶合单元每个元素 {value:g} 个周期：没有实测的设计",
    "band.resident": "常驻权重：没有实测的设计",
    "band.clock": "时钟 {mhz:g} MHz：高于证据（{sup:g} MHz）",
    "band.clock_none": "时钟 {mhz:g} MHz：没有时钟证据",
    "band.feature": "{feature} {value}：从未实测",
    "band.class_unmeasured": "{what}：从未实测",
    "band.head_unit": "稠密输出头单元：没有实测的设计",
    "band.torch": "PS 运行时 torch：从未在板上实测",
    "band.value.prefill": "预填充",
    "band.value.decode": "解码",
}


def _class_names() -> dict[str, str]:
    """The Chinese name of every component class the bands speak of (``band.class.<cls>``)."""
    from dse.model.validation import CLASSES

    return {f"band.class.{k}": v.what[0] for k, v in CLASSES.items() if v.what[0]}


MESSAGES.update(_class_names())


def render_msg(m: object, lang: str) -> str:
    """A ``Msg`` in ``lang`` (fields that are messages rendered too); other objects as str."""
    key = getattr(m, "key", None)
    if key is None:
        return str(m)
    fields = {k: render_msg(v, lang) if hasattr(v, "key") else v for k, v in m.fields}
    template = MESSAGES.get(key, m.en) if lang == "zh" else m.en
    return template.format(**fields)
