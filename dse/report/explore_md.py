"""The report section "FPGA design-space exploration", in Chinese or English.

``render_explore_section`` turns an ``ExploreResult`` into one Markdown section, fenced by
HTML-comment markers that name the board, so ``upsert_section`` can replace exactly that
board's section on a re-run and leave the rest of the report (the profiling report, other
boards' sections) byte-identical. Both are pure: the CLI reads and writes the file.

The strings live here, not in ``dse.report.i18n``: that table is shared with the seed
importer, and nothing reads this section back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dse.model.project import VIEW_TEXT, Projection
from dse.report import numbers, sections
from dse.report.i18n import LANGS, pick, render_msg
from dse.report.identity import plan_ref, scenario_diff, scenario_key, scenario_text
from dse.report.table import md_table
from dse.report.unit_counts import unit_count_rows
from dse.search.explore import ExploreResult, RankedPlan

#: key: (zh, en). Values may hold ``str.format`` fields.
_S: dict[str, tuple[str, str]] = {
    "title": ("## FPGA 设计空间探索 — {board}", "## FPGA design-space exploration — {board}"),
    # -- summary card ------------------------------------------------------------------------
    "h.card": ("### 结论", "### The answer"),
    "card.plan": ("推荐方案", "Recommended plan"),
    "card.plan_val": ("{ref}，`{design}`：{n_pl}/{n_lin} 个 Linear 在 PL 上（{n_res} 个权重常驻），"
                      "lm_head 在{head}；其余算子在 PS 上（{rt} 运行时）",
                      "{ref}, `{design}`: {n_pl} of {n_lin} Linears in the PL ({n_res} with "
                      "resident weights), lm_head on the {head}; every other operator on the PS "
                      "({rt} runtime)"),
    "card.head.pl": ("PL 的稠密输出头单元", "PL's dense head unit"),
    "card.head.two_stage": ("引擎上的两级输出头（PS 重算前 {k} 个）",
                            "engines as a two-stage head (the PS rescores the top {k})"),
    "card.units": ("引擎之外的 PL 单元", "PL units besides the engines"),
    "card.head.ps": ("PS 上", "PS"),
    "card.speed": ("解码速度", "Decode speed"),
    "card.speed_val": ("**{tok}**（{ms} ms/token；{scen}）；首 token 时间 "
                       "{ttft} ms（{p} 个提示 token 的预填充）",
                       "**{tok}** ({ms} ms/token; {scen}); time to "
                       "first token {ttft} ms (prefill of {p} prompt tokens)"),
    "card.band": ("误差带", "Band"),
    "card.band_val": ("括号内是 90% 误差带：模型在 {n} 个验证行（`{src}`）上按组成类别的误差，"
                      "超出实测范围的部分取任一已测类别的最大误差；{cal}",
                      "the ranges are 90% bands of the model's error per component class over "
                      "{n} validation rows (`{src}`), as wide as the worst measured class where "
                      "a plan leaves the measured regimes; {cal}"),
    "band.uncal": ("未校准", "uncalibrated"),
    "band.cal": ("另加校准拟合参数的不确定度（时间的 1σ 为 {s}）",
                 "plus the calibration's parameter uncertainty (1σ of the time: {s})"),
    "card.never": ("超出实测范围", "Outside the measurements"),
    "card.never_none": ("无：方案的每一部分都在已实测的范围内",
                        "nothing: every part of the plan is inside a measured regime"),
    "card.equiv": ("模型误差之内", "Within the model's error"),
    "card.equiv_val": ("{plans} 的误差带与推荐方案的重叠：在模型误差之内与之相当",
                       "{plans}: their bands overlap the recommended plan's, so they are "
                       "equivalent to it within the model's error"),
    "card.equiv_none": ("没有其他方案的误差带与推荐方案的重叠：排名在模型误差之内成立",
                        "no other plan's band overlaps the recommended plan's: the ranking "
                        "holds within the model's error"),
    "equiv.mark": ("≈ 最佳", "≈ best"),
    "card.vs": ("对比", "Against"),
    "card.vs_val": ("{sp} 对能装下的最快仅 CPU 运行时（`{rt}`，{bms} ms/token）；{spt} 对仅 CPU 的 "
                    "PyTorch{fit}",
                    "{sp} over the fastest CPU-only runtime that fits (`{rt}`, {bms} ms/token); "
                    "{spt} over CPU-only PyTorch{fit}"),
    "card.fit_no": ("（它装不下这块板卡）", " (which does not fit this board)"),
    "card.vs_nt": ("{sp} 对能装下的最快仅 CPU 运行时（`{rt}`，{bms} ms/token）；PyTorch 未测量"
                   "（没有 profile）",
                   "{sp} over the fastest CPU-only runtime that fits (`{rt}`, {bms} ms/token); "
                   "PyTorch not measured (no profile)"),
    "card.res": ("资源与内存", "Resources and memory"),
    "card.res_val": ("LUT {lut} · BRAM {bram} · URAM {uram} · DSP {dsp}；"
                     "DDR {mem:,.0f} / {cap:,.0f} MiB",
                     "LUT {lut} · BRAM {bram} · URAM {uram} · DSP {dsp}; DDR {mem:,.0f} / "
                     "{cap:,.0f} MiB"),
    "card.energy": ("能量", "Energy"),
    "card.energy_val": ("板卡 {w} W，{j} J/token（仅 CPU：{bj:.3f} J/token）",
                        "board {w} W, {j} J/token (CPU only: {bj:.3f} J/token)"),
    "card.limit": ("限制因素", "What limits it"),
    "card.split": ("；这 {ms} ms 中最大的几项：{parts}",
                   "; of the {ms} ms, the largest parts: {parts}"),
    "card.split_part": ("{what} {ms} ms（{share:.0%}）", "{what} {ms} ms ({share:.0%})"),
    "list.sep": ("，", ", "),
    "card.cal": ("校准", "Calibration"),
    "card.calsec": ("下方的校准章节", "Calibration section below"),
    "calsec.same": ("针对本方案（`{id}`）、本场景", "of this plan (`{id}`) at this scenario"),
    "calsec.other": ("针对另一方案 {ref}（{scen}），写于本结论之前：其中的端到端数值不是本方案的；"
                     "重新运行 `dse calibrate` 使两者一致",
                     "of another plan, {ref} ({scen}), written before this card: its end-to-end "
                     "figures are not this plan's; re-run `dse calibrate` to bring them into "
                     "step"),
    "calsec.scen": ("针对本方案（`{id}`），但场景不同：{diff}", "of this plan (`{id}`) at another "
                    "scenario: {diff}"),
    "card.build": ("能否用附带的 overlay 构建", "Buildable by the shipped overlay"),
    "build.yes": ("是", "yes"),
    "build.no": ("否（仅作假设分析）", "no (a what-if)"),
    "build.unknown": ("未检查", "not checked"),
    "build.none": ("没有能在这块板上运行的方案，所以没有 make 行；能装下的是：{why}",
                   "no plan runs on this board, so there is no make line; what would fit: "
                   "{why}"),
    "limit.ddr": ("DDR 带宽：PL 读取权重的速度已到持续带宽，更快只能靠更少的字节（打包、常驻）"
                  "或更高的 DDR 效率",
                  "DDR bandwidth: the PL reads weights at the sustained rate; faster needs fewer "
                  "bytes (packing, residency) or better DDR efficiency"),
    "limit.compute": ("PL 计算：引擎的 lane 数不够，加 PE/SIMD 或时钟",
                      "PL compute: the engines have too few lanes; add PE/SIMD or clock"),
    "limit.link": ("PS↔PL 链路：HP 端口的流宽度不够", "PS↔PL link: the HP ports' stream width"),
    "limit.overhead": ("每次调用开销：调用太多、太短", "per-call overhead: too many short calls"),
    "limit.ps": ("PS：留在 CPU 上的 {part} 占时最多", "the PS: {part} left on the CPU takes the "
                 "most time"),
    "short.ddr": ("DDR 带宽", "DDR bandwidth"),
    "short.compute": ("PL 计算", "PL compute"),
    "short.link": ("PS↔PL 链路", "PS↔PL link"),
    "short.overhead": ("每次调用开销", "per-call overhead"),
    "short.ps": ("PS：{part}", "PS: {part}"),
    "limit.unit": ("PL 单元 `{unit}`：它的调用占时最多，增加实例数或提高时钟",
                   "the PL unit `{unit}`: its calls take the longest; more instances or a "
                   "faster clock"),
    "short.unit": ("PL 单元 `{unit}`", "PL unit `{unit}`"),
    # -- boards compared ---------------------------------------------------------------------
    "h.boards": ("## 板卡对比", "## Boards compared"),
    "boards.stale": ("未对比：{boards}（其章节由另一版本的 dse 写成，请对该板卡重新运行 "
                     "`dse explore`）。",
                     "Not compared: {boards} (their sections were written by another dse "
                     "version; re-run `dse explore` for them)."),
    "boards.intro": ("本报告中每块板卡的最佳方案（每次 `dse explore` 运行时更新）。",
                     "The best plan of each board explored into this report (kept in step by "
                     "every `dse explore` run)."),
    "cols.boards": ("板卡|最佳方案|解码 tok/s (90% 误差带)|加速比 (对能装下的最快 CPU 运行时)|LUT|"
                    "BRAM|URAM|J/token|限制因素",
                    "Board|Best plan|Decode tok/s (90% band)|Speedup vs fastest CPU runtime "
                    "that fits|LUT|BRAM|URAM|J/token|Limit"),
    # -- board -------------------------------------------------------------------------------
    "h.board": ("### 板卡", "### Board"),
    "cols.kv": ("属性|值", "Property|Value"),
    "b.part": ("器件", "Part"),
    "b.pl": ("PL 资源", "PL resources"),
    "b.pl_val": ("{lut} LUT · {ff} FF · {dsp} DSP · {bram} BRAM36 · {uram} URAM",
                 "{lut} LUT · {ff} FF · {dsp} DSP · {bram} BRAM36 · {uram} URAM"),
    "b.caps": ("利用率上限", "Utilization caps"),
    "b.ddr": ("DDR", "DDR"),
    "b.ddr_val": ("{type}，{cap} GiB，峰值 {peak:.2f} GB/s × PL 效率 {eff:.2f} = "
                  "持续 {sus:.2f} GB/s",
                  "{type}, {cap} GiB, {peak:.2f} GB/s peak × {eff:.2f} PL efficiency = "
                  "{sus:.2f} GB/s sustained"),
    "b.clock": ("PL 时钟", "PL clock"),
    "b.clock_val": ("典型 {typ:g} MHz，最高 {max:g} MHz", "{typ:g} MHz typical, {max:g} MHz max"),
    "b.cpu": ("PS CPU", "PS CPU"),
    "b.cpu_val": ("{cores}× {model} @ {mhz:g} MHz（FP32 峰值 {gf:g} GFLOP/s，内存 {bw:g} GB/s）",
                  "{cores}× {model} @ {mhz:g} MHz ({gf:g} GFLOP/s fp32 peak, {bw:g} GB/s memory)"),
    "b.link": ("PS↔PL 链路", "PS↔PL link"),
    "b.link_val": ("{ports} × {bits} 位 HP 端口，每次调用开销 {us:g} µs",
                   "{ports} × {bits}-bit HP ports, {us:g} µs per call"),
    # -- method ------------------------------------------------------------------------------
    "h.method": ("### 基线、目标与搜索", "### Baseline, objective and search"),
    "m.view": ("基线视角", "Baseline view"),
    "m.objective": ("优化目标", "Objective"),
    "view.on-board": ("板上：全部在板上运行；CPU 基线为 profile 实测时间按两颗 CPU 的屋顶线时间之比"
                      "缩放到板卡 PS 上", VIEW_TEXT["on-board"]),
    "view.host-attached": ("主机连接：FPGA 服务于被 profile 的主机，主机像 PS 一样驱动它"
                           "（链路与每次调用开销相同）；CPU 基线为实测时间",
                           VIEW_TEXT["host-attached"]),
    "m.runtimes": ("搜索的 PS 运行时", "PS runtimes searched"),
    "m.scenario": ("场景", "Scenario"),
    "m.scenario_val": ("KV 缓存 {kv}，上下文 {ctx} 个 token，{seq} 个序列，CPU {cpu}，{thr} 个线程",
                       "KV cache {kv}, {ctx} tokens of context, {seq} sequence(s), CPU {cpu}, "
                       "{thr} thread(s)"),
    "m.calibration": ("校准", "Calibration"),
    "m.no_cal": ("无校准：使用模型默认常数", "no calibration: model defaults"),
    "m.search": ("搜索", "Search"),
    "m.search_val": ("评估了 {n:,} 个设计（{rej:,} 个因资源上限、链路宽度或时钟证据被排除）",
                     "{n:,} designs evaluated ({rej:,} rejected by resource caps, link "
                     "width or clock evidence)"),
    "m.methods": ("各方案的求解方法", "How each plan was found"),
    "obj.decode": ("每 token 解码时间 (ms)", "decode ms per token"),
    "obj.energy": ("每个生成 token 的能量 (J)", "joules per generated token"),
    "obj.edp": ("能量-延迟积 (J/token × s/token)", "energy-delay product (J/token × s/token)"),
    "obj.prefill": ("预填充时间 (ms，{p} 个提示 token)", "prefill ms ({p} prompt tokens)"),
    "obj.mix": ("整体负载时间 (ms，{p} 个提示 token + 生成 {g} 个 token)",
                "workload ms ({p} prompt tokens + {g} generated tokens)"),
    "sw.torch": ("PyTorch eager（按 profile 实测，按屋顶线之比移到目标 CPU）",
                 "PyTorch eager as profiled (measured times moved by roofline ratio)"),
    "sw.native": ("bitnet.cpp 类原生运行时（I2_S 三值内核，f16 输出头）",
                  "native runtime of the bitnet.cpp class (I2_S ternary kernel, f16 head)"),
    "short.torch": ("仅 CPU 的 PyTorch", "CPU-only PyTorch"),
    "short.native": ("仅 CPU 的原生运行时", "CPU-only native runtime"),
    "short.best": ("能装下的最快 CPU 运行时（{rt}）", "fastest CPU runtime that fits ({rt})"),
    # -- baselines ---------------------------------------------------------------------------
    "h.baselines": ("### 仅 CPU 的基线", "### CPU-only baselines"),
    "baselines.intro": ("每个运行时把全部算子留在 CPU 上（{scen}）。装不下板卡 DDR 的基线不能作为"
                        "板上对照，标题加速比取能装下的最快基线。",
                        "Every operator on the CPU under each runtime ({scen}). A baseline that "
                        "does not fit the board's DDR cannot run there; the headline speedup is "
                        "against the fastest one that fits."),
    "cols.baselines": ("运行时|每次前向 (ms)|tok/s|板卡功耗 (W)|J/token|内存 (MiB)|能否装下",
                       "Runtime|ms per forward|tok/s|Board W|J/token|Memory (MiB)|"
                       "Fits the board"),
    "nopower": ("板卡文件没有功耗模型（power:），不给出能量。",
                "The board file has no power model (power:): no energy figures."),
    "h.pareto_energy": ("#### 能量与速度 (J/token 与解码 tok/s)",
                        "#### Energy vs speed (J/token vs decode tok/s)"),
    "cols.pareto_energy": ("设计|J/token|解码 tok/s", "Design|J/token|Decode tok/s"),
    # -- plans -------------------------------------------------------------------------------
    "h.plans": ("### 方案对比", "### Plans compared"),
    "plans.intro": ("目标时间与加速比均按优化目标计：{obj}；资源与内存取{scen}场景。"
                    "最后一行是种子报告的“卸载最耗时的 5 个 Linear 层”建议，作为对照。"
                    "括号内是 90% 误差带；“≈ 最佳”：误差带与最佳方案的重叠，"
                    "在模型误差之内与之相当。",
                    "Objective and speedups are over the objective, {obj}; resources and memory "
                    "are those of the {scen} scenario. The last row is the seed report's "
                    "'offload the top-5 Linear layers' suggestion, for reference. Ranges are "
                    "90% bands; '≈ best': the band overlaps the best plan's, so the plan is "
                    "equivalent to it within the model's error."),
    "cols.plans": ("排名|方案|引擎设计|权重打包|PS 运行时|PL 单元|卸载层数|常驻层数|"
                   "目标 ({unit}，90% 误差带)|与最佳方案|解码 tok/s (90% 误差带)|"
                   "加速比 (对 {base})|加速比 (对仅 CPU 的 PyTorch)|板卡功耗 (W)|J/token|"
                   "LUT %|BRAM %|URAM %|DSP %|DDR 内存 (MiB，需要/容量)|瓶颈|可行",
                   "Rank|Plan|Engine design|Packing|PS runtime|PL units|Offloaded layers|"
                   "Resident layers|"
                   "Objective ({unit}, 90% band)|Against the best|Decode tok/s (90% band)|"
                   "Speedup vs {base}|"
                   "Speedup vs CPU-only PyTorch|Board W|J/token|LUT %|BRAM %|URAM %|DSP %|"
                   "DDR memory (MiB, needed/capacity)|Binding bound|Feasible"),
    "nofit": ("（装不下）", " (does not fit)"),
    "yes": ("是", "yes"),
    "no": ("否", "NO"),
    "h.naive": ("#### 为何朴素的 Top-5 方案不够", "#### Why the naive top-5 plan falls short"),
    "infeasible": ("不可行原因", "Infeasible because"),
    # -- placement ---------------------------------------------------------------------------
    "h.placement": ("### 最佳方案的逐层放置 — {scen}", "### Best plan: layer placement — {scen}"),
    "placement.intro": ("方案 `{label}`：引擎 `{design}`，PS 运行时 {rt}。时间为每次前向的 ms；"
                        "“CPU”列为该层在同一运行时下留在 CPU 上的时间。",
                        "Plan `{label}` on `{design}`, PS runtime {rt}. Times are ms per "
                        "forward; the CPU column is the layer's time left on the CPU under the "
                        "same runtime."),
    "cols.roles": ("角色|层数|FPGA (流式)|FPGA (常驻)|CPU|CPU 上 (ms)|方案 (ms)|瓶颈",
                   "Role|Layers|FPGA (streamed)|FPGA (resident)|CPU|On the CPU (ms)|Plan (ms)|"
                   "Bound"),
    "role.ps_ops": ("(PS 上的其他算子，见下表)", "(other operators on the PS, table below)"),
    "role.credits": ("(PL 单元的 PS 工作代为完成的交接)",
                     "(hand-off a PL unit's PS work does instead)"),
    "role.unit": ("(PL 单元 `{unit}`)", "(PL unit `{unit}`)"),
    "h.ops": ("#### 其他算子的位置与依据", "#### Other operators: where they run and why"),
    "cols.ops": ("算子|类别|次数|设备|时间 (ms)|瓶颈|依据",
                 "Operator|Kind|Count|Device|Time (ms)|Bound|Basis"),
    # -- breakdown ---------------------------------------------------------------------------
    "h.breakdown": ("### 每个 token 的时间构成 — {scen}", "### Where a token goes — {scen}"),
    "h.reference": ("### 与实测设计对比", "### Against a measured design"),
    "ref.intro": ("实测：`{title}`（`{path}`，sha256 `{sha}`），解码一个 token 的实测拆分"
                  "（上下文 {ctx}，{speed:.2f} tok/s），与最佳方案在同一上下文的投影并列"
                  "（{mine:.2f} tok/s）。"
                  "实测列来自日志，方案列是模型（未校准，除非上面写明校准）。",
                  "Measured: `{title}` (`{path}`, sha256 `{sha}`), its split of one decode token "
                  "(context {ctx}, {speed:.2f} tok/s), beside the best plan's projection at the "
                  "same context ({mine:.2f} tok/s). The measured column is the log's; the plan "
                  "columns are the model's (uncalibrated unless a calibration is named above)."),
    "ref.measured": ("实测 (ms)", "measured (ms)"),
    "ref.best": ("`{label}` 上下文 {ctx} (ms)", "`{label}` at context {ctx} (ms)"),
    "ref.unmodelled": ("（模型中没有对应项）", "(no counterpart in the model)"),
    "ref.unattributed": ("实测总时间中未列出的部分", "measured total not in the listed parts"),
    "breakdown.intro": ("前几名方案与能装下的最快仅 CPU 基线，按组成部分（ms/次前向）。",
                        "The top plans and the fastest CPU-only baseline that fits, by component "
                        "(ms per forward)."),
    "cols.breakdown": ("组成", "Component"),
    "comp.ternary_pl": ("三值矩阵乘 (PL 权重流)", "ternary matmuls (PL weight stream)"),
    "comp.ternary_cpu": ("三值矩阵乘 (CPU)", "ternary matmuls (CPU)"),
    "comp.head": ("输出头 (lm_head)", "output head (lm_head)"),
    "comp.attention": ("注意力 (KV 缓存)", "attention (KV cache)"),
    "comp.norms_quant_rope_residual": ("归一化、量化、RoPE、残差", "norms, quantization, RoPE, "
                                       "residuals"),
    "comp.elementwise": ("FFN 逐元素 (激活、门控乘)", "FFN element-wise (activation, gate)"),
    "comp.handoff": ("交接与每次调用开销", "hand-offs and per-call overhead"),
    "comp.sampling": ("采样", "sampling"),
    "comp.total": ("**总计**", "**total**"),
    "total": ("**总计**", "**Total**"),
    "layers.expand": ("点击展开完整逐层列表 (共 {n} 层)",
                      "Click to expand the full per-layer list ({n} layers)"),
    "cols.layers": ("层名称|角色|N × K|放置|CPU 上 (ms)|方案 (ms)|调用|瓶颈",
                    "Layer|Role|N × K|Placement|On the CPU (ms)|Plan (ms)|Call|Bound"),
    # -- resources ---------------------------------------------------------------------------
    "h.resources": ("### 最佳方案的资源利用", "### Resource utilization of the best plan"),
    "cols.resources": ("资源|已用|可用|利用率|上限", "Resource|Used|Available|Utilization|Cap"),
    # -- PL units by count ---------------------------------------------------------------------
    "h.unit_counts": ("#### PL 单元：构建与实例数", "#### PL units: builds and counts"),
    "units.intro": ("最佳方案的设计（{design}）配上每种 PL 单元的每个构建与实例数（其他单元不变），"
                    "重新求解：最佳方案的单元数由此而来。",
                    "The best plan's design ({design}) with every build and instance count of "
                    "each PL unit kind the search offered (its other units kept), solved again: "
                    "why the best plan has as many as it has."),
    "cols.unit_counts": ("种类|构建|实例数|目标 ({unit})|相对所选|说明",
                         "Kind|Build|Instances|Objective ({unit})|vs chosen|Note"),
    "units.chosen": ("**所选**", "**chosen**"),
    # -- physical limit ----------------------------------------------------------------------
    "h.limit": ("### 物理极限", "### Physical limit"),
    "limit.text": ("{scen}：加速器时间 {acc} ms，其中从 DDR 读取权重 {mib:,.1f} MiB。"
                   "按峰值带宽 {peak:.2f} GB/s 计，DDR 下限为 {floor} ms，即达到 DDR 下限的 "
                   "{pct_peak}；按持续带宽 {sus:.2f} GB/s（峰值 × {eff:.2f}）计，下限为 "
                   "{floor_sus} ms，即达到 DDR 下限的 {pct_sus}。时间构成如下：",
                   "{scen}: the accelerator takes {acc} ms and reads {mib:,.1f} MiB of weights "
                   "from DDR. The DDR floor at {peak:.2f} GB/s peak is {floor} ms, so it runs at "
                   "{pct_peak} of the DDR-bound limit; at the sustained {sus:.2f} GB/s (peak × "
                   "{eff:.2f}) the floor is {floor_sus} ms, {pct_sus} of the DDR-bound limit. "
                   "Where the time goes:"),
    "limit.none": ("最佳方案没有卸载任何层：加速器时间为 0。",
                   "The best plan offloads nothing: no accelerator time."),
    "cols.limit": ("组成|时间 (ms)|占方案时间", "Component|Time (ms)|Share of plan time"),
    "lim.weights": ("以持续带宽从 DDR 读取权重", "weights over DDR at sustained bandwidth"),
    "lim.actout": ("DDR 上的激活与输出", "activations and outputs over DDR"),
    "lim.compute": ("计算或链路慢于 DDR 的部分", "compute or link slower than DDR"),
    "lim.overhead": ("每次调用开销 ({calls} 次调用)", "per-call overhead ({calls} calls)"),
    "lim.ps": ("PS 端交接 (重缩放、缓存维护)", "PS-side hand-off (rescale, cache maintenance)"),
    "lim.credits": ("PL 单元的 PS 工作代为完成的交接（读出）",
                    "hand-off a PL unit's PS work does instead (read-out)"),
    "lim.accel": ("**加速器小计**", "**accelerator subtotal**"),
    "lim.head_stage2": ("两阶段输出头的第二阶段 (PS)", "two-stage head, stage 2 (PS)"),
    "lim.cpu_linears": ("留在 CPU 上的 Linear 层", "Linear layers left on the CPU"),
    "lim.ps_ops": ("其他算子 (PS)", "other operators (PS)"),
    "lim.unit": ("PL 单元 `{unit}`（含其交接）", "PL unit `{unit}` (with its hand-offs)"),
    "lim.plan": ("**方案总计**", "**plan total**"),
    # -- sensitivity -------------------------------------------------------------------------
    "h.sens": ("### 敏感性", "### Sensitivity"),
    "sens.intro": ("同一最佳方案在单个参数 ±20% 时重新估算的加速比（对 {base}）。",
                   "Speedup (vs the {base}) of the same best plan, re-projected with one "
                   "parameter at ±20%."),
    "cols.sens": ("参数|−20% (加速比，对 {base})|基准 (加速比，对 {base})|"
                  "+20% (加速比，对 {base})|摆幅",
                  "Parameter|−20% (speedup vs {base})|Base (speedup vs {base})|"
                  "+20% (speedup vs {base})|Swing"),
    "sens.most": ("最敏感的参数是 **{p}**：加速比在 {lo} 与 {hi} 之间（摆幅 {swing}）。",
                  "The most sensitive parameter is **{p}**: the speedup moves between {lo} and "
                  "{hi} (swing {swing})."),
    "param.DDR efficiency": ("DDR 效率", "DDR efficiency"),
    "param.engine clock": ("引擎时钟", "engine clock"),
    "param.per-call overhead": ("每次调用开销", "per-call overhead"),
    # -- Pareto ------------------------------------------------------------------------------
    "h.pareto": ("### 帕累托前沿", "### Pareto fronts"),
    "pareto.intro": ("在评估过的 {n:,} 个设计中（每个设计的卸载集合精确最优，不含常驻权重），"
                     "没有被其他设计以更少资源、更高加速比支配的点。",
                     "Among the {n:,} designs evaluated (each with its exactly optimal offload "
                     "set, without resident weights), the points no other design beats with "
                     "fewer resources and a higher speedup."),
    "h.pareto_lut": ("#### LUT 与加速比", "#### LUT vs speedup"),
    "h.pareto_ddr": ("#### DDR 带宽与加速比", "#### DDR bandwidth vs speedup"),
    "cols.pareto_lut": ("设计|LUT|LUT 占器件|加速比 (对 {base})",
                        "Design|LUT|LUT of device|Speedup vs {base}"),
    "cols.pareto_ddr": ("设计|DDR 带宽 (GB/s)|占持续带宽|加速比 (对 {base})",
                        "Design|DDR bandwidth (GB/s)|Of sustained bandwidth|Speedup vs {base}"),
    "pareto.expand": ("点击展开 ({n} 个点)", "Click to expand ({n} points)"),
    "h.plots": ("### 图", "### Plots"),
    "plot.roofline": ("最佳方案各加速器调用的屋顶线图", "Roofline of the best plan's accelerator "
                      "calls"),
    "plot.pareto": ("设计空间与帕累托前沿", "Design space and Pareto fronts"),
    "plot.context": ("解码 tok/s 随上下文长度的变化", "Decode tok/s against context length"),
    "plot.sequences": ("聚合解码 tok/s 随同时解码的序列数的变化",
                       "Aggregate decode tok/s against the sequences in a round"),
    "plot.ttft": ("首个 token 时间随提示长度的变化", "Time to first token against prompt length"),
    "plot.energy": ("速度与每 token 能量", "Speed against energy per token"),
    "plot.breakdown": ("每个解码 token 的时间构成", "Where a decode token goes"),
    # -- notes -------------------------------------------------------------------------------
    "h.notes": ("### 说明", "### Notes"),
}

_PHASE = {"decode": ("解码", "decode"), "prefill": ("预填充", "prefill")}
_RES_KINDS = (("lut", "LUT"), ("ff", "FF"), ("bram36", "BRAM36"), ("uram", "URAM"),
              ("dsp", "DSP"))
#: Above this many rows a table goes into a collapsible block.
_COLLAPSE_ROWS = 20


def _t(key: str, lang: str, **fields: object) -> str:
    return pick(_S, key, lang, **fields)


def _cols(key: str, lang: str, **fields: object) -> list[str]:
    return _t(key, lang, **fields).split("|")


# -- number formats --------------------------------------------------------------------------

_ms = numbers.ms  # milliseconds: two decimals below 100, one from 100 up
_x = numbers.times
_pct = numbers.pct  # an inf (a resource the part lacks, yet used) prints as n/a


def _num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


# -- markers and upsert ----------------------------------------------------------------------

def section_markers(board_stem: str) -> tuple[str, str]:
    """The begin and end lines that fence one board's explore section."""
    return sections.section_markers("explore", board_stem)


def upsert_section(report_text: str, board_stem: str, section: str) -> str:
    """Replace this board's explore section or append it (see ``dse.report.sections``), then
    bring the "Boards compared" table in step with every board section the report holds."""
    text = sections.upsert_section(report_text, "explore", board_stem, section)
    return upsert_comparison(text)


_BOARDS_BEGIN, _BOARDS_END = "<!-- dse:boards begin -->", "<!-- dse:boards end -->"


def summary_of(result: ExploreResult) -> dict:
    """The best plan in a few numbers: the card, the boards table and ``dse compare`` read it."""
    best = result.best
    d = best.decode
    util = d.utilization
    e = d.energy
    base = d.baseline
    torch = next((b for b in d.baselines if b.runtime == "torch"), None)
    return {
        "board": result.board.name, "board_stem": result.board.stem,
        "plan": best.label, "plan_id": best.plan.identity, "design": best.plan.design.label(),
        "scenario": scenario_key(d.scenario, result.calibration),
        "packing": best.plan.design.packing, "runtime": best.plan.runtime,
        "n_linears": len(d.layers), "n_pl": sum(lp.placement != "cpu" for lp in d.layers),
        "n_resident": len(best.plan.resident),
        "head_on_pl": any(lp.role == "lm_head" and lp.placement != "cpu" for lp in d.layers),
        "head_unit": best.plan.design.head, "head_top_k": best.plan.head_top_k,
        "units": list(best.plan.unit_labels),
        "unit_counts": [{"kind": u.kind, "label": u.label, "count": u.count,
                         "ms": None if u.objective_ms is None else round(u.objective_ms, 4),
                         "why_not": None if u.why_not is None else str(u.why_not),
                         "chosen": u.chosen} for u in result.unit_counts],
        "tokens_per_s": round(d.tokens_per_s, 4), "ms_per_token": round(d.plan_ms, 4),
        "context_tokens": d.scenario.context_tokens,
        "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 3),
        "prompt_tokens": result.objective.prompt_tokens,
        "speedup": round(d.speedup, 4), "baseline_runtime": base.runtime,
        "baseline_ms": round(base.ms, 3),
        "speedup_vs_torch": None if torch is None else round(d.speedup_vs("torch"), 4),
        "torch_fits": None if torch is None else torch.feasible,
        "lut": round(util["lut"], 4), "bram36": round(util["bram36"], 4),
        "uram": round(util["uram"], 4) if math.isfinite(util["uram"]) else None,
        "dsp": round(util["dsp"], 4),
        "memory_mib": round(d.memory_bytes / 2**20, 1),
        "capacity_mib": round(d.memory_capacity_bytes / 2**20, 1),
        "watts": None if e is None else round(e.watts, 3),
        "j_per_token": None if e is None else round(e.j_per_token, 4),
        "baseline_j_per_token": (None if base.energy is None
                                 else round(base.energy.j_per_token, 4)),
        "bound": d.bound, "calibration": result.calibration,
        "buildable": best.plan.buildable,
        "kv_dtype": d.scenario.kv_dtype,
        "build_note": best.plan.build_note if best.feasible else None,  # none for no plan
        # the token's three largest components, ms: what the limit means in time
        "split_ms": {k: round(v, 3) for k, v in sorted(
            d.components.items(), key=lambda kv: -kv[1])[:3] if v > 0},
        **_band_summary(result),
    }


def _ends(iv, digits: int = 4, scale: float = 1.0) -> list[float] | None:
    return None if iv is None else [round(iv.lo * scale, digits), round(iv.hi * scale, digits)]


def _band_summary(result: ExploreResult) -> dict:
    """The best plan's bands in the summary (the card, the boards table, ``dse compare``):
    each figure's [low, high], what it was never measured in, the plans equivalent to it."""
    b = result.best.decode_band
    if b is None:
        return {"band": None}
    board = result.board
    flags = list(dict.fromkeys([*map(str, b.flags), *map(str, result.ttft_flags)]))
    return {"band": {
        "tokens_per_s": _ends(b.tokens_per_s), "ms_per_token": _ends(b.ms),
        "ttft_ms": _ends(result.ttft_band, 3),
        "watts": _ends(b.watts, 3), "j_per_token": _ends(b.j_per_token),
        **{kind: _ends(b.resources.get(kind), 4, 1 / getattr(board.pl, kind))
           for kind in ("lut", "bram36", "uram") if getattr(board.pl, kind)},
        "calibration_sigma": None if b.calibration_sigma is None
        else round(b.calibration_sigma, 5),
        "never_measured": flags,
        "equivalent": [{"plan": rp.label, "plan_id": rp.plan.identity}
                       for rp in result.plans if result.equivalent(rp)],
        "validation": result.validation}}


def _limit_text(bound: str, lang: str, short: bool = False) -> str:
    """What a binding bound means, in ``lang`` (``short``: a few words for a table)."""
    kind = "short" if short else "limit"
    if bound.startswith("pl unit ("):
        return _t(f"{kind}.unit", lang, unit=bound[len("pl unit ("):-1])
    if bound.startswith("ps"):
        part = bound[bound.find("(") + 1:-1] if "(" in bound else "ps"
        name = _t(f"comp.{part}", lang) if f"comp.{part}" in _S else part
        return _t(f"{kind}.ps", lang, part=name)
    key = f"{kind}.{bound}"
    return _t(key, lang) if key in _S else bound


def _split_text(sm: dict, lang: str) -> str:
    """Where the best plan's token goes, its largest components with their shares."""
    split = sm.get("split_ms") or {}
    total = sm["ms_per_token"]
    if not split or total <= 0:
        return ""
    parts = [_t("card.split_part", lang, what=_comp(k, lang), ms=_ms(v), share=v / total)
             for k, v in split.items()]
    return _t("card.split", lang, ms=_ms(total), parts=_t("list.sep", lang).join(parts))


def _calsec_rows(sm: dict, calibrated: Mapping | None, lang: str) -> list[tuple[str, str]]:
    """The card's line on the report's calibration section for this board: whether it speaks
    of this plan at this scenario (a section written by another run may not)."""
    if not calibrated:
        return []
    scen = calibrated.get("scenario")
    if calibrated.get("plan_id") != sm["plan_id"]:
        text = _t("calsec.other", lang, ref=plan_ref(str(calibrated.get("plan")), str(
            calibrated.get("plan_id")), lang), scen=scenario_text(scen, lang, False)
            if isinstance(scen, Mapping) else "?")
    else:
        mine = {**sm["scenario"], "calibration": None}
        theirs = {**scen, "calibration": None} if isinstance(scen, Mapping) else mine
        diff = scenario_diff(theirs, mine, lang)
        text = (_t("calsec.scen", lang, id=sm["plan_id"], diff=diff) if diff
                else _t("calsec.same", lang, id=sm["plan_id"]))
    return [(_t("card.calsec", lang), text)]


def _card_block(result: ExploreResult, lang: str, sm: dict,
                calibrated: Mapping | None = None) -> list[str]:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0%}"

    head = _t("card.head.ps", lang)
    if sm["head_on_pl"]:
        head = (_t("card.head.pl", lang) if sm["head_unit"]
                else _t("card.head.two_stage", lang, k=sm["head_top_k"]))
    bd = sm.get("band") or {}

    def ranged(value: float | None, key: str, fmt, unit: str = "", scale: float = 1.0) -> str:
        ends = bd.get(key)
        if value is None:
            return "n/a"
        if not ends:
            return numbers.band(value * scale, fmt=fmt, unit=unit)
        return numbers.band(value * scale, ends[0] * scale, ends[1] * scale, fmt, unit)

    def ranged_pct(key: str) -> str:
        v, ends = sm.get(key), bd.get(key)
        if v is None:
            return "n/a"
        return f"{v:.0%}" if not ends else f"{v:.0%} ({ends[0]:.0%}–{ends[1]:.0%})"

    rows = [
        (_t("card.plan", lang), _t("card.plan_val", lang, ref=plan_ref(
            sm["plan"], sm["plan_id"], lang), design=sm["design"], n_pl=sm["n_pl"],
                                   n_lin=sm["n_linears"], n_res=sm["n_resident"], head=head,
                                   rt=f"`{sm['runtime']}`")),
        (_t("card.units", lang), " ".join(f"`{u}`" for u in sm["units"]) or "—"),
        *unit_count_rows(result, lang),
        (_t("card.speed", lang), _t("card.speed_val", lang,
                                    tok=ranged(sm["tokens_per_s"], "tokens_per_s",
                                               numbers.fixed, "tok/s"),
                                    ms=ranged(sm["ms_per_token"], "ms_per_token", _ms),
                                    scen=scenario_text(sm["scenario"], lang, False),
                                    ttft=ranged(sm["ttft_ms"], "ttft_ms", _ms)
                                    if sm["ttft_ms"] else "n/a",
                                    p=sm["prompt_tokens"])),
        (_t("card.vs", lang), _t("card.vs_val", lang, sp=_x(sm["speedup"]),
                                 rt=sm["baseline_runtime"], bms=_ms(sm["baseline_ms"]),
                                 spt=_x(sm["speedup_vs_torch"] or math.inf),
                                 fit="" if sm["torch_fits"] else _t("card.fit_no", lang))
         if sm["torch_fits"] is not None else _t(
             "card.vs_nt", lang, sp=_x(sm["speedup"]), rt=sm["baseline_runtime"],
             bms=_ms(sm["baseline_ms"]))),
        (_t("card.res", lang), _t("card.res_val", lang, lut=ranged_pct("lut"),
                                  bram=ranged_pct("bram36"), uram=ranged_pct("uram"),
                                  dsp=pct(sm["dsp"]), mem=sm["memory_mib"],
                                  cap=sm["capacity_mib"])),
        (_t("card.energy", lang), _t("nopower", lang) if sm["watts"] is None else _t(
            "card.energy_val", lang, w=ranged(sm["watts"], "watts", numbers.fixed),
            j=ranged(sm["j_per_token"], "j_per_token", lambda x: numbers.fixed(x, 3)),
            bj=sm["baseline_j_per_token"] or 0.0)),
        (_t("card.limit", lang), _limit_text(sm["bound"], lang) + _split_text(sm, lang)),
        (_t("card.cal", lang), _t("m.no_cal", lang) if sm["calibration"] in ("", "none")
         else f"`{sm['calibration']}`"),
        *_calsec_rows(sm, calibrated, lang),
        *_band_rows(result, lang),
        (_t("card.build", lang), _t({True: "build.yes", False: "build.no"}.get(
            sm["buildable"], "build.unknown"), lang) + (
                f": `{sm['build_note']}`" if sm["buildable"] and sm.get("build_note") else "")
         if result.best.feasible else _t("build.none", lang, why=_sep(lang).join(
             render_msg(m, lang) for m in result.advice) or "—")),
    ]
    return [_t("h.card", lang), "", *(f"- **{k}**: {v}" for k, v in rows), "",
            sections.summary_comment(sm), ""]


def _band_rows(result: ExploreResult, lang: str) -> list[tuple[str, str]]:
    """The card's lines on its bands: what they rest on, what in the plan was never measured
    (one line), and which plans are equivalent to it within the model's error."""
    b = result.best.decode_band
    if b is None or not result.best.feasible:
        return []
    sigma = b.calibration_sigma
    cal = (_t("band.uncal", lang) if sigma is None
           else _t("band.cal", lang, s=numbers.pct(sigma, 2)))
    flags = list(dict.fromkeys([render_msg(f, lang) for f in (*b.flags, *result.ttft_flags)]))
    sep = "；" if lang == "zh" else "; "
    equiv = [rp for rp in result.plans if result.equivalent(rp)]
    plans = ("、" if lang == "zh" else ", ").join(
        plan_ref(rp.label, rp.plan.identity, lang) for rp in equiv)
    return [(_t("card.band", lang), _t("card.band_val", lang, src=result.validation,
                                       n=result.validation_rows, cal=cal)),
            (_t("card.never", lang), sep.join(flags) if flags else _t("card.never_none", lang)),
            (_t("card.equiv", lang), _t("card.equiv_val", lang, plans=plans) if equiv
             else _t("card.equiv_none", lang))]


def boards_table(summaries: list[dict], lang: str) -> str:
    """One row per board: best plan, tok/s, speedup, LUT/BRAM/URAM use, J/token, limit."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0%}"

    def tok(sm: dict) -> str:
        from dse.schema import MAX_QUANTITY

        ends = (sm.get("band") or {}).get("tokens_per_s")
        # a summary is read back from a report or JSON (another version's, or edited): its
        # band is shown only when it is one, holding the figure (never "19.55 (100.00–1.00)")
        ok = isinstance(ends, list) and len(ends) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in ends) and (
            0 <= ends[0] <= sm["tokens_per_s"] <= ends[1] <= MAX_QUANTITY)
        return numbers.band(sm["tokens_per_s"], *(ends if ok else (None, None)),
                            numbers.fixed)

    rows = [[sm["board"], f"`{sm['design']}`", tok(sm),
             f"{_x(sm['speedup'])} (`{sm['baseline_runtime']}`)", pct(sm["lut"]),
             pct(sm["bram36"]), pct(sm["uram"]),
             "n/a" if sm["j_per_token"] is None else f"{sm['j_per_token']:.3f}",
             _limit_text(sm["bound"], lang, short=True)] for sm in summaries]
    return md_table(_cols("cols.boards", lang), rows)


def upsert_comparison(report_text: str) -> str:
    """Place (or refresh, or drop) the boards table before the first board section: present
    when the report holds sections for two or more boards, in the report's language. A
    section whose summary this version cannot read (another version's, or edited) is named
    under the table instead of being compared."""
    pairs = sections.spans(report_text, _BOARDS_BEGIN, _BOARDS_END, "the boards table")
    text = sections.drop_spans(report_text, pairs)
    found = sections.read_summaries(text)
    if len(found) < 2:
        return text
    sums = [sm for _, sm in found if usable_summary(sm)]
    stale = [token for token, sm in found if not usable_summary(sm)]
    lang = "zh" if "## FPGA 设计空间探索" in text else "en"
    lines = [_BOARDS_BEGIN, _t("h.boards", lang), "", _t("boards.intro", lang), "",
             boards_table(sums, lang)]
    if stale:
        lines += ["", _t("boards.stale", lang, boards=", ".join(f"`{s}`" for s in stale))]
    lines += [_BOARDS_END, ""]
    eol = sections.line_ending(text)
    block = sections.with_line_ending("\n".join(lines), eol)
    first = sections.first_section_start(text, "explore")
    return text[:first] + block + eol + text[first:]


def card_summary(report_text: str, board_stem: str) -> dict | None:
    """The summary of ``board_stem``'s answer card in a report (None: no explore section for
    that board, or one without a summary this version reads)."""
    token = sections.marker_token(board_stem)
    sm = next((sm for t, sm in sections.read_summaries(report_text) if t == token), None)
    return sm if isinstance(sm, dict) else None


#: Fields of a summary the boards table reads, and their types (a number may be null where
#: ``summary_of`` writes None).
SUMMARY_FIELDS: dict[str, tuple[type, ...]] = {
    "board": (str,), "design": (str,), "tokens_per_s": (int, float),
    "speedup": (int, float), "baseline_runtime": (str,), "lut": (int, float, type(None)),
    "bram36": (int, float, type(None)), "uram": (int, float, type(None)),
    "j_per_token": (int, float, type(None)), "bound": (str,)}


def usable_summary(sm: object) -> bool:
    """Whether a summary read back from a report or a JSON file has every field the boards
    table shows, each of its type (a summary of another dse version may not)."""
    return isinstance(sm, dict) and all(
        isinstance(sm.get(k), kinds) and not isinstance(sm.get(k), bool)
        and not (isinstance(sm.get(k), float) and not math.isfinite(sm[k]))
        for k, kinds in SUMMARY_FIELDS.items())


# -- shared helpers --------------------------------------------------------------------------

def weighted_speedups(result: ExploreResult, rp: RankedPlan) -> dict[str, float]:
    """Speedup over each CPU-only runtime, weighted like the objective (``RankedPlan``)."""
    return rp.speedups()


def _scenario(proj: Projection, lang: str) -> str:
    sc = proj.scenario
    phase = _PHASE.get(sc.phase, (sc.phase, sc.phase))[LANGS.index(lang)]
    return f"{phase} (M={sc.m})"


def _objective_text(result: ExploreResult, lang: str, with_code: bool = True) -> str:
    """The objective in ``lang``; in Chinese also ``Objective.describe()``, the CLI's words."""
    obj = result.objective
    own = _t(f"obj.{obj.kind}", lang, p=obj.prompt_tokens, g=obj.gen_tokens)
    return own if lang == "en" or not with_code else f"{own}（`{obj.describe()}`）"


def objective_text(result: ExploreResult, lang: str) -> str:
    """The objective in words, for a plot's axis: the CLI's ``describe()`` in English, the
    objective and its context in Chinese."""
    obj = result.objective
    if lang == "en":
        return obj.describe()
    return _t(f"obj.{obj.kind}", lang, p=obj.prompt_tokens, g=obj.gen_tokens) + \
        f"，上下文 {obj.context_tokens} 个 token"


def _view_text(view: str, lang: str) -> str:
    """``VIEW_TEXT`` of the view; in Chinese a translation of it (unknown views verbatim)."""
    key = f"view.{view}"
    if lang == "zh" and key in _S:
        return _t(key, lang)
    return VIEW_TEXT.get(view, view)


def _sep(lang: str) -> str:
    """Separator between clauses of a sentence."""
    return "；" if lang == "zh" else "; "


def _best_base(result: ExploreResult, lang: str) -> str:
    """Name of the headline baseline: the fastest CPU-only runtime that fits."""
    return _t("short.best", lang, rt=result.best.decode.baseline.runtime)


def _comp(key: str, lang: str) -> str:
    return _t(f"comp.{key}", lang)


# -- blocks ----------------------------------------------------------------------------------

def _board_block(result: ExploreResult, lang: str) -> list[str]:
    b = result.board
    caps = ", ".join(f"{name} {getattr(b.caps, kind):.0%}" for kind, name in _RES_KINDS)
    rows = [
        [_t("b.part", lang), f"`{b.part}` ({b.family})"],
        [_t("b.pl", lang), _t("b.pl_val", lang, lut=f"{b.pl.lut:,}", ff=f"{b.pl.ff:,}",
                               dsp=f"{b.pl.dsp:,}", bram=f"{b.pl.bram36:,}",
                               uram=f"{b.pl.uram:,}")],
        [_t("b.caps", lang), caps],
        [_t("b.ddr", lang), _t("b.ddr_val", lang, type=b.ddr.type,
                                cap=f"{b.ddr.capacity_bytes / 2**30:g}",
                                peak=b.ddr.peak_bandwidth_gb_s, eff=b.ddr.pl_efficiency,
                                sus=b.ddr_bytes_per_s / 1e9)],
        [_t("b.clock", lang), _t("b.clock_val", lang, typ=b.clock.typical_mhz,
                                  max=b.clock.max_mhz)],
        [_t("b.cpu", lang), _t("b.cpu_val", lang, cores=b.ps_cpu.cores, model=b.ps_cpu.model,
                                mhz=b.ps_cpu.clock_mhz, gf=b.ps_cpu.peak_fp32_gflops,
                                bw=b.ps_cpu.memory_bandwidth_gb_s)],
        [_t("b.link", lang), _t("b.link_val", lang, ports=b.link.hp_ports,
                                 bits=b.link.port_width_bits, us=b.link.per_call_overhead_us)],
    ]
    return [_t("h.board", lang), "", md_table(_cols("cols.kv", lang), rows), ""]


def _method_block(result: ExploreResult, lang: str) -> list[str]:
    obj = result.objective
    cal = result.calibration
    cal_text = _t("m.no_cal", lang) if cal in ("", "none") else f"`{cal}`"
    lines = [_t("h.method", lang), "",
             f"- **{_t('m.view', lang)}**: {_view_text(obj.view, lang)}",
             f"- **{_t('m.objective', lang)}**: {_objective_text(result, lang)}",
             f"- **{_t('m.runtimes', lang)}**: " + "; ".join(
                 f"`{r}` — {_t(f'sw.{r}', lang)}" for r in obj.runtimes),
             f"- **{_t('m.scenario', lang)}**: " + _t(
                 "m.scenario_val", lang, kv=" / ".join(obj.kv_formats), ctx=obj.context_tokens,
                 seq=obj.sequences, cpu=result.best.decode.cpu,
                 thr=result.best.decode.threads),
             f"- **{_t('m.calibration', lang)}**: {cal_text}",
             f"- **{_t('m.search', lang)}**: " + _t("m.search_val", lang,
                                                   n=result.designs_evaluated,
                                                   rej=result.designs_rejected),
             f"- **{_t('m.methods', lang)}**:"]
    for rp in (*result.plans, result.naive):
        why = _sep(lang).join(render_msg(w, lang) for w in rp.why)
        lines.append(f"  - `{rp.label}`: {render_msg(rp.method, lang)}" + (
            f" — {why}" if rp is not result.naive and why else ""))
    return [*lines, ""]


def _plan_row(result: ExploreResult, rank: str, rp: RankedPlan, lang: str) -> list[str]:
    d = rp.decode
    util = d.utilization
    speed = weighted_speedups(result, rp)
    torch_fit = d.baseline_of("torch").feasible if "torch" in speed else False
    vs_torch = (_x(speed["torch"]) + ("" if torch_fit else _t("nofit", lang))
                if "torch" in speed else "—")
    ob, db = rp.objective_band, rp.decode_band
    objective = (_ms(rp.objective_ms) if ob is None
                 else numbers.band(rp.objective_ms, ob.lo, ob.hi, _ms))
    tok = (numbers.fixed(d.tokens_per_s) if db is None
           else numbers.interval(db.tokens_per_s, numbers.fixed))
    against = ("—" if rp is result.best or rp is result.naive or ob is None
               else _t("equiv.mark", lang) if result.equivalent(rp) else "")
    return [rank, f"`{rp.label}` (`{rp.plan.identity}`)", f"`{rp.plan.design.label()}`",
            rp.plan.design.packing,
            f"`{rp.plan.runtime}`, KV {rp.decode.scenario.kv_dtype}",
            " ".join(f"`{u}`" for u in rp.plan.unit_labels) or "—",
            str(len(rp.plan.offload)), str(len(rp.plan.resident)),
            objective, against, tok, _x(rp.speedup), vs_torch,
            *_energy_cells(d.energy), _pct(util["lut"]), _pct(util["bram36"]),
            _pct(util["uram"]), _pct(util["dsp"]),
            f"{d.memory_bytes / 2**20:,.0f} / {d.memory_capacity_bytes / 2**20:,.0f}",
            _limit_text(d.bound, lang, short=True), _t("yes" if rp.feasible else "no", lang)]


def _plans_block(result: ExploreResult, lang: str) -> list[str]:
    # What-ifs (designs the shipped overlay cannot build) come after every buildable plan.
    ranked = sorted(result.plans, key=lambda rp: (rp.label.startswith("what-if"),
                                                  rp.objective_ms))
    rows = [_plan_row(result, str(i), rp, lang) for i, rp in enumerate(ranked, 1)]
    rows.append(_plan_row(result, "—", result.naive, lang))
    lines = [_t("h.plans", lang), "",
             _t("plans.intro", lang, obj=_objective_text(result, lang, with_code=False),
                scen=_scenario(result.best.decode, lang)), "",
             md_table(_cols("cols.plans", lang, base=_best_base(result, lang),
                            unit=result.objective.unit), rows), ""]
    if result.best.decode.energy is None:
        lines += [_t("nopower", lang), ""]
    bad = [rp for rp in (*ranked, result.naive) if not rp.feasible]
    for rp in bad:
        reasons = _sep(lang).join(dict.fromkeys(render_msg(r, lang) for p in rp.projections
                                                for r in p.infeasible))
        lines += [f"- `{rp.label}` — {_t('infeasible', lang)}: {reasons}", ""]
    why = _sep(lang).join(render_msg(w, lang) for w in result.naive.why)
    end = "。" if lang == "zh" else "."
    lines += [_t("h.naive", lang), "", (why[:1].upper() + why[1:] + end) if why else "—", ""]
    return lines


def _unit_counts_block(result: ExploreResult, lang: str) -> list[str]:
    """Every build and count of each PL unit kind the search offered, beside the best plan's
    design: why the best plan has as many as it has."""
    kinds = [k for k in dict.fromkeys(u.kind for u in result.unit_counts)
             if sum(u.objective_ms is not None for u in result.unit_counts if u.kind == k) > 1]
    if not kinds:
        return []
    rows = []
    for u in result.unit_counts:
        if u.kind not in kinds:
            continue
        chosen = next(c for c in result.unit_counts if c.kind == u.kind and c.chosen)
        ms = "—" if u.objective_ms is None else _ms(u.objective_ms)
        vs = ("—" if u.objective_ms is None or chosen.objective_ms is None
              else f"{u.objective_ms / chosen.objective_ms - 1:+.1%}")
        note = (_t("units.chosen", lang) if u.chosen else
                "" if u.why_not is None else render_msg(u.why_not, lang))
        rows.append([u.kind, f"`{u.label}`", str(u.count), ms, vs, note])
    return [_t("h.unit_counts", lang), "",
            _t("units.intro", lang, design=result.best.plan.design.label(),
               unit=result.objective.unit), "",
            md_table(_cols("cols.unit_counts", lang, unit=result.objective.unit), rows), ""]


def _energy_cells(e) -> list[str]:
    """Board watts and J/token, or n/a without a power model."""
    return ["n/a", "n/a"] if e is None else [f"{e.watts:.2f}", f"{e.j_per_token:.3f}"]


def _baselines_block(result: ExploreResult, lang: str) -> list[str]:
    proj = result.best.decode
    rows = [[f"`{b.runtime}` — {_t(f'sw.{b.runtime}', lang)}, KV {b.kv_dtype}", _ms(b.ms),
             f"{proj.tokens * 1e3 / b.ms:.2f}" if b.ms > 0 else "∞",
             *_energy_cells(b.energy), f"{b.memory_bytes / 2**20:,.0f}",
             _t("yes", lang) if b.feasible else f"{_t('no', lang)}: "
                                                f"{render_msg(b.reason, lang)}"]
            for b in proj.baselines]
    return [_t("h.baselines", lang), "", _t("baselines.intro", lang,
                                            scen=_scenario(proj, lang)), "",
            md_table(_cols("cols.baselines", lang), rows), ""]


def _breakdown_block(result: ExploreResult, lang: str) -> list[str]:
    """Per-token components of the top plans next to the best CPU-only baseline."""
    plans = [rp for rp in result.plans if rp.feasible][:3] or [result.best]
    decs = [rp.decode for rp in plans]
    from dse.model.project import COMPONENTS

    base = result.base_breakdown
    headers = [_t("cols.breakdown", lang), *(f"`{rp.label}` (ms)" for rp in plans)]
    if base:
        headers.append(f"{_best_base(result, lang)} (ms)")
    rows = []
    for key in COMPONENTS:
        vals = [d.components.get(key, 0.0) for d in decs]
        bval = base.get(key, 0.0) if base else 0.0
        if max([*vals, bval]) <= 0:
            continue
        rows.append([_comp(key, lang), *(_ms(v) for v in vals), *([_ms(bval)] if base else [])])
    rows.append([_comp("total", lang), *(_ms(d.plan_ms) for d in decs),
                 *([_ms(result.base_total_ms)] if base else [])])
    return [_t("h.breakdown", lang, scen=_scenario(decs[0], lang)), "",
            _t("breakdown.intro", lang), "", md_table(headers, rows), ""]


def _reference_block(result: ExploreResult, lang: str) -> list[str]:
    """The best plan's breakdown beside a measured design's split (``--reference``)."""
    ref = result.reference
    if ref is None:
        return []
    same = ref.context_tokens == ref.objective_context_tokens
    headers = [_t("cols.breakdown", lang), _t("ref.measured", lang),
               _t("ref.best", lang, label=ref.plan_label, ctx=ref.context_tokens)]
    if not same:
        headers.append(_t("ref.best", lang, label=ref.plan_label,
                          ctx=ref.objective_context_tokens))
    rows = []
    for r in ref.rows:
        measured = "—" if r.measured_ms is None else (
            _ms(r.measured_ms) + (f" ({', '.join(f'`{p}`' for p in r.parts)})"
                                  if len(r.parts) > 1 else ""))
        rows.append([_comp(r.component, lang), measured, _ms(r.best_ms),
                     *([] if same else [_ms(r.best_objective_ms)])])
    for what, ms in ref.unmodelled:
        rows.append([f"`{what}` {_t('ref.unmodelled', lang)}", _ms(ms), "—",
                     *([] if same else ["—"])])
    if abs(ref.unattributed_ms) > 0.005:
        rows.append([_t("ref.unattributed", lang), _ms(ref.unattributed_ms), "—",
                     *([] if same else ["—"])])
    rows.append([_comp("total", lang), _ms(ref.measured_token_ms), _ms(ref.best_token_ms),
                 *([] if same else [_ms(ref.best_objective_token_ms)])])
    return [_t("h.reference", lang), "",
            _t("ref.intro", lang, title=ref.title, path=ref.path, sha=ref.sha256[:12],
               ctx=ref.context_tokens, speed=1e3 / ref.measured_token_ms,
               mine=ref.best_tokens_per_s), "", md_table(headers, rows), ""]


def _placement_block(result: ExploreResult, lang: str) -> list[str]:
    best = result.best
    proj = best.decode
    rows = [[f"`{r.role}`", str(r.layers), str(r.fpga), str(r.resident), str(r.cpu),
             _ms(r.cpu_ms), _ms(r.time_ms), r.bound] for r in proj.by_role()]
    # the rest of the forward, account by account: the PS's other operators, each PL unit,
    # and any hand-off a unit's PS work does in place of the calls'
    for a in proj.accounts:
        if a.key in ("calls", "head_stage2", "cpu_linears"):
            continue  # in the Linears' rows above
        label = (_t("role.unit", lang, unit=a.key[5:]) if a.key.startswith("unit:")
                 else _t(f"role.{a.key}", lang))
        rows.append([label, "", "", "", "", "", _ms(a.ms), a.device])
    n = [sum(getattr(r, k) for r in proj.by_role()) for k in ("fpga", "resident", "cpu")]
    rows.append([_t("total", lang), str(len(proj.layers)), *map(str, n), "",
                 _ms(proj.plan_ms), proj.bound])
    full = [[f"`{lp.name}`", lp.role, f"{lp.n} × {lp.k}", lp.placement, _ms(lp.cpu_ms),
             _ms(lp.time_ms), f"`{lp.call}`" if lp.call else "", lp.bound or "cpu"]
            for lp in proj.layers]
    ops = [[f"`{o.role}`", o.kind, str(o.count), o.device, _ms(o.time_ms), o.bound,
            render_msg(o.basis, lang)]
           for o in proj.ops]
    return [_t("h.placement", lang, scen=_scenario(proj, lang)), "",
            _t("placement.intro", lang, label=best.label, design=best.plan.design.label(),
               rt=f"`{best.plan.runtime}`"), "",
            md_table(_cols("cols.roles", lang), rows), "",
            *_details(_t("layers.expand", lang, n=len(full)),
                      md_table(_cols("cols.layers", lang), full)), "",
            _t("h.ops", lang), "", md_table(_cols("cols.ops", lang), ops), ""]


def _details(summary: str, body: str) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>"]


def _resources_block(result: ExploreResult, lang: str) -> list[str]:
    proj = result.best.decode
    board = result.board
    rows = []
    for kind, name in _RES_KINDS:
        used = getattr(proj.resources, kind)
        rows.append([name, _num(used), f"{getattr(board.pl, kind):,}",
                     _pct(proj.utilization[kind]), f"{getattr(board.caps, kind):.0%}"])
    return [_t("h.resources", lang), "", md_table(_cols("cols.resources", lang), rows), ""]


_BASIS = {"synthesized": ("综合（Yosys）并换算到 Vivado", "synthesized (Yosys), scaled to Vivado"),
          "published-rtl": ("已发表的 RTL 综合并换算到 Vivado",
                            "published RTL synthesized, scaled to Vivado"),
          "estimated": ("估算", "estimated")}


def _evidence_block(result: ExploreResult, lang: str) -> list[str]:
    """Per ranked plan: what its resources rest on and the clock evidence (issue 24)."""
    zh = lang == "zh"
    rows = []
    for p in result.plans:
        ev = p.decode.evidence
        if ev is None:
            continue
        c = ev.clock
        if c.closure is None:
            clock = "无时钟证据" if zh else "no clock evidence"
        else:
            cl = c.closure
            slack = (f", WNS {cl.wns_ns:g} ns @ {cl.lut_util:.0%} LUT"
                     if cl.wns_ns is not None else "")
            deeper = ""
            if c.extra_levels:
                deeper = (f"; 更深 {c.extra_levels} 级逻辑" if zh else
                          f"; {c.extra_levels} logic level(s) deeper")
            clock = (f"{c.mhz:g} MHz ({cl.design}: {cl.clock_mhz:g} MHz, {cl.family} "
                     f"{cl.speed_grade}{slack}; {c.kind}{deeper})")
        what_if = ("假设情形" if zh else "what-if") if ev.beyond else ""
        rows.append([p.label, f"{p.plan.design.clock_mhz:g} MHz", clock, what_if,
                     _BASIS[ev.engine_basis][0 if zh else 1]])
    if not rows:
        return []
    head = ("### 资源依据与时钟证据" if zh else "### Resource basis and clock evidence")
    cols = (["方案", "时钟", "证据支持的时钟（已发表的时序收敛）", "", "引擎资源"] if zh else
            ["Plan", "Clock", "Clock the evidence supports (published closure)", "",
             "Engine resources"])
    return [head, "", md_table(cols, rows), ""]


def _limit_block(result: ExploreResult, lang: str) -> list[str]:
    proj = result.best.decode
    board = result.board
    lines = [_t("h.limit", lang), ""]
    acc_ms = proj.fpga_ms
    if not proj.calls or acc_ms <= 0:
        return [*lines, _t("limit.none", lang), ""]
    floor_sus = proj.ddr_floor_sustained_ms
    lines += [_t("limit.text", lang, scen=_scenario(proj, lang), acc=_ms(acc_ms),
                 mib=proj.ddr_weight_bytes / 2**20, peak=board.ddr.peak_bandwidth_gb_s,
                 floor=_ms(proj.ddr_floor_ms), pct_peak=_pct(proj.ddr_floor_ms / acc_ms),
                 eff=board.ddr.pl_efficiency, sus=board.ddr_bytes_per_s / 1e9,
                 floor_sus=_ms(floor_sus), pct_sus=_pct(floor_sus / acc_ms)), ""]
    parts = proj.limit_parts(board.ddr_bytes_per_s)
    plan_ms = proj.plan_ms

    def share(ms: float) -> str:
        return _pct(ms / plan_ms) if plan_ms > 0 else "n/a"

    def label(key: str) -> str:
        if key == "overhead":
            return _t("lim.overhead", lang, calls=len(proj.calls))
        if key.startswith("unit:"):
            return _t("lim.unit", lang, unit=key[5:])
        return _t(f"lim.{key}", lang)

    calls = [k for k in ("weights", "actout", "compute", "overhead", "ps", "credits")
             if k in parts]
    rows = [[label(k), _ms(parts[k]), share(parts[k])] for k in calls]
    rows.append([_t("lim.accel", lang), _ms(acc_ms), share(acc_ms)])
    rows += [[label(k), _ms(v), share(v)] for k, v in parts.items() if k not in calls]
    rows.append([_t("lim.plan", lang), _ms(plan_ms), share(plan_ms)])
    return [*lines, md_table(_cols("cols.limit", lang), rows), ""]


def _param(name: str, lang: str) -> str:
    key = f"param.{name}"
    return _t(key, lang) if key in _S else name


def _sensitivity_block(result: ExploreResult, lang: str) -> list[str]:
    if not result.sensitivity:
        return []
    base = _best_base(result, lang)
    rows = [[_param(r.parameter, lang), _x(r.low_speedup), _x(r.base_speedup),
             _x(r.high_speedup), _x(r.swing)] for r in result.sensitivity]
    top = max(result.sensitivity, key=lambda r: r.swing)
    return [_t("h.sens", lang), "", _t("sens.intro", lang, base=base), "",
            md_table(_cols("cols.sens", lang, base=base), rows), "",
            _t("sens.most", lang, p=_param(top.parameter, lang), lo=_x(top.low_speedup),
               hi=_x(top.high_speedup), swing=_x(top.swing)), ""]


def _unique_rows(rows: list[list[str]]) -> list[list[str]]:
    """Rows as shown, each once: designs that differ only in what the label omits (the
    stream width) and price the same would print as identical lines."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for row in rows:
        if tuple(row) not in seen:
            seen.add(tuple(row))
            out.append(row)
    return out


def _pareto_table(headers: list[str], rows: list[list[str]], lang: str) -> list[str]:
    rows = _unique_rows(rows)
    table = md_table(headers, rows)
    if len(rows) <= _COLLAPSE_ROWS:
        return [table]
    return _details(_t("pareto.expand", lang, n=len(rows)), table)


def _pareto_block(result: ExploreResult, lang: str, plots: Mapping[str, str],
                  plot_note: str = "") -> list[str]:
    base = _best_base(result, lang)
    board = result.board
    lut_rows = [[f"`{p.design}`", f"{p.lut:,.0f}", _pct(p.lut / board.pl.lut), _x(p.speedup)]
                for p in result.pareto_lut]
    ddr_rows = [[f"`{p.design}`", f"{p.ddr_gb_s:.2f}", _pct(p.ddr_gb_s * 1e9 /
                                                             board.ddr_bytes_per_s),
                 _x(p.speedup)] for p in result.pareto_ddr]
    lines = [_t("h.pareto", lang), "",
             _t("pareto.intro", lang, n=result.designs_evaluated), "",
             _t("h.pareto_lut", lang), "",
             *_pareto_table(_cols("cols.pareto_lut", lang, base=base), lut_rows, lang), "",
             _t("h.pareto_ddr", lang), "",
             *_pareto_table(_cols("cols.pareto_ddr", lang, base=base), ddr_rows, lang), ""]
    if result.pareto_energy:
        e_rows = [[f"`{p.design}`", f"{p.j_per_token:.3f}", f"{p.tokens_per_s:.2f}"]
                  for p in result.pareto_energy]
        lines += [_t("h.pareto_energy", lang), "",
                  *_pareto_table(_cols("cols.pareto_energy", lang), e_rows, lang), ""]
    if plots:
        lines += [_t("h.plots", lang), ""]
        for key, fname in plots.items():
            alt = _t(f"plot.{key}", lang) if f"plot.{key}" in _S else key
            lines += [sections.image_link(alt, fname), ""]
        if plot_note:
            lines += [plot_note, ""]
    return lines


def _notes_block(result: ExploreResult, lang: str) -> list[str]:
    if not result.notes:
        return []
    return [_t("h.notes", lang), "", *(f"- {render_msg(n, lang)}" for n in result.notes), ""]


def render_explore_section(result: ExploreResult, lang: str, plots: dict[str, str],
                           plot_note: str = "", calibrated: Mapping | None = None) -> str:
    """The whole section for ``result.board``, fenced by its markers, ending in a newline.

    ``plots`` maps a plot kind ("roofline", "pareto") to a file name relative to the report;
    ``plot_note`` says why they are not in the report's language, if they are not;
    ``calibrated``: the plan the report's calibration section for this board speaks of
    (``dse.report.calibrate_md.calibrated_summary``), which the card relates itself to.
    """
    _t("title", lang)  # reject an unknown language before doing any work
    begin, end = section_markers(result.board.stem)
    lines = [begin, _t("title", lang, board=result.board.name), ""]
    lines += _card_block(result, lang, summary_of(result), calibrated)
    lines += _board_block(result, lang)
    lines += _method_block(result, lang)
    lines += _plans_block(result, lang)
    lines += _unit_counts_block(result, lang)
    lines += _baselines_block(result, lang)
    lines += _breakdown_block(result, lang)
    lines += _reference_block(result, lang)
    lines += _placement_block(result, lang)
    lines += _resources_block(result, lang)
    lines += _evidence_block(result, lang)
    lines += _limit_block(result, lang)
    if result.best.feasible:  # no sensitivity for a plan that cannot run
        lines += _sensitivity_block(result, lang)
    lines += _pareto_block(result, lang, plots, plot_note)
    lines += _notes_block(result, lang)
    lines.append(end)
    return "\n".join(lines) + "\n"


__all__ = ["boards_table", "objective_text", "render_explore_section",
           "section_markers", "summary_of", "unit_count_rows",
           "upsert_comparison", "upsert_section", "weighted_speedups"]
