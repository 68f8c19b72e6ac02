"""The report section "Projected vs measured", in Chinese or English.

What ``dse calibrate`` found: where the measurements came from, the fitted parameters with
their uncertainty, per-layer measured against projected time before and after fitting, the
held-out check, and end to end: the plan on the measured overlay, projected and measured, and
the best plans re-projected with the calibration.
"""

from __future__ import annotations

from collections.abc import Sequence

from dse.hw.calibrate import EndToEnd
from dse.model.calibration import Calibration
from dse.report import sections
from dse.report.table import md_table
from dse.search.explore import RankedPlan

_S: dict[str, tuple[str, str]] = {
    "title": ("## 预测与实测对比 — {board}", "## Projected vs measured — {board}"),
    "h.source": ("### 测量来源", "### Where the measurements came from"),
    "cols.kv": ("属性|值", "Property|Value"),
    "backend": ("后端", "Backend"),
    "backend.sim": ("RTL 仿真 (Verilator)；DDR/链路时序按板卡文件建模",
                    "RTL simulation (Verilator); DDR/link timing modelled from the board file"),
    "backend.pynq": ("PYNQ 板上实测", "measured on the PYNQ board"),
    "overlay": ("覆盖层引擎", "Overlay engine"),
    "created": ("时间", "Date"),
    "repeats": ("每层重复次数", "Repeats per layer"),
    "file": ("校准文件", "Calibration file"),
    "h.params": ("### 拟合参数", "### Fitted parameters"),
    "cols.params": ("参数|默认值|拟合值|标准误差", "Parameter|Default|Fitted|Std. error"),
    "h.layers": ("### 逐层：预测与实测", "### Per layer: projected vs measured"),
    "cols.layers": ("层 (形状)|M|实测 (ms，中位数 ± 极差)|校准前预测 (ms)|误差|"
                    "校准后预测 (ms)|误差|忙周期|停顿周期",
                    "Layer (shape)|M|Measured (ms, median ± range)|Projected before (ms)|Error|"
                    "Projected after (ms)|Error|Busy cycles|Stall cycles"),
    "errors": ("模型误差：校准前最大 {b_max:.1%}（平均 {b_mean:.1%}），校准后最大 {a_max:.1%}"
               "（平均 {a_mean:.1%}）。",
               "Model error: before calibration max {b_max:.1%} (mean {b_mean:.1%}), after "
               "max {a_max:.1%} (mean {a_mean:.1%})."),
    "heldout": ("留出检验：在 {tr} 个形状上拟合，预测其余 {te} 个形状，最大误差 {mx:.1%}"
                "（平均 {mean:.1%}）。",
                "Held-out check: fitted on {tr} shapes, predicting the other {te}: max error "
                "{mx:.1%} (mean {mean:.1%})."),
    "h.e2e": ("### 端到端", "### End to end"),
    "e2e.intro": ("方案 `{plan}` 的卸载集合运行在实测的覆盖层引擎 `{design}` 上"
                  "（不融合、无常驻），每 token 解码时间；基线为 PyTorch 基线 {base:.1f} ms。"
                  "实测时间：已测形状的层用实测中位数（{hit}/{off} 层），其余用校准后的预测。",
                  "Plan `{plan}`'s offload set on the measured overlay engine `{design}` (no "
                  "fusion, no residency), decode ms per token; baseline: PyTorch, {base:.1f} "
                  "ms. Measured time uses the measured median for layers whose shape was "
                  "measured ({hit}/{off} layers) and the calibrated projection for the rest."),
    "cols.e2e": ("|ms/token|加速比 (对 PyTorch 基线)|相对实测的误差",
                 "|ms/token|Speedup (vs PyTorch baseline)|Error vs measured"),
    "row.before": ("校准前预测", "Projected, before calibration"),
    "row.after": ("校准后预测", "Projected, after calibration"),
    "row.measured": ("实测", "Measured"),
    "h.replan": ("### 用校准重新估算的最佳方案",
                 "### Best plans re-projected with the calibration"),
    "cols.replan": ("方案|引擎设计|校准前 (ms)|校准前加速比|校准后 (ms)|校准后加速比",
                    "Plan|Engine design|Before (ms)|Speedup before|After (ms)|Speedup after"),
}


def _t(key: str, lang: str, **kw: object) -> str:
    text = _S[key][0 if lang == "zh" else 1]
    return text.format(**kw) if kw else text


def _cols(key: str, lang: str) -> list[str]:
    return _t(key, lang).split("|")


def render_calibration_section(cal: Calibration, board_stem: str, lang: str, *,
                               design_label: str, repeats: int, e2e: EndToEnd,
                               replans: Sequence[tuple[RankedPlan, RankedPlan]],
                               held_out: dict[str, float] | None) -> str:
    """The whole section, fenced by this board's calibrate markers (pure)."""
    begin, end = sections.section_markers("calibrate", board_stem)
    out = [begin, _t("title", lang, board=cal.board), "", _t("h.source", lang), ""]
    backend = _t(f"backend.{cal.backend}", lang) if f"backend.{cal.backend}" in _S else cal.backend
    rows = [[_t("backend", lang), backend], [_t("overlay", lang), f"`{design_label}`"],
            [_t("created", lang), cal.created], [_t("repeats", lang), repeats],
            [_t("file", lang), f"`{cal.path}`" if cal.path else "—"]]
    rows += [[k, f"`{v}`"] for k, v in cal.provenance.items() if not isinstance(v, dict)]
    out += [md_table(_cols("cols.kv", lang), rows), "", _t("h.params", lang), ""]
    out.append(md_table(_cols("cols.params", lang), [
        [f"`{name}`", f"{p.default:g}", f"{p.value:.4g}",
         "—" if p.stderr is None else f"{p.stderr:.2g}"] for name, p in cal.params.items()]))
    out += ["", _t("h.layers", lang), ""]
    lrows = []
    for r in cal.per_layer:
        lrows.append([f"`{r['layer']}` ({r['n']}×{r['k']})", r["m_tokens"],
                      f"{r['measured_ms']:.4f} ± {r['spread_ms']:.4f}",
                      f"{r['projected_before_ms']:.4f}", f"{r['error_before']:+.1%}",
                      f"{r['projected_after_ms']:.4f}", f"{r['error_after']:+.1%}",
                      f"{r['busy_cycles']:,}" if r.get("busy_cycles") is not None else "—",
                      f"{r['stall_cycles']:,}" if r.get("stall_cycles") is not None else "—"])
    out.append(md_table(_cols("cols.layers", lang), lrows))
    out += ["", _t("errors", lang, b_max=cal.error_before.get("max_abs_rel_error", 0.0),
                   b_mean=cal.error_before.get("mean_abs_rel_error", 0.0),
                   a_max=cal.error_after.get("max_abs_rel_error", 0.0),
                   a_mean=cal.error_after.get("mean_abs_rel_error", 0.0))]
    if held_out:
        out.append(_t("heldout", lang, tr=held_out["train_shapes"], te=held_out["test_shapes"],
                      mx=held_out["max_abs_rel_error"], mean=held_out["mean_abs_rel_error"]))
    out += ["", _t("h.e2e", lang), "",
            _t("e2e.intro", lang, plan=e2e.plan, design=e2e.design, base=e2e.baseline_ms,
               hit=e2e.measured_layers, off=e2e.offloaded_layers), ""]
    erows = []
    for key, ms in (("row.before", e2e.projected_before_ms), ("row.after", e2e.projected_after_ms),
                    ("row.measured", e2e.measured_ms)):
        err = "—" if key == "row.measured" else f"{ms / e2e.measured_ms - 1:+.1%}"
        erows.append([_t(key, lang), f"{ms:,.1f}", f"{e2e.speedup(ms):.2f}x", err])
    out.append(md_table(_cols("cols.e2e", lang), erows))
    if replans:
        out += ["", _t("h.replan", lang), ""]
        out.append(md_table(_cols("cols.replan", lang), [
            [f"`{b.label}`", f"`{a.plan.design.label()}`", f"{b.objective_ms:,.1f}",
             f"{b.speedup:.2f}x", f"{a.objective_ms:,.1f}", f"{a.speedup:.2f}x"]
            for b, a in replans]))
    out.append(end)
    return "\n".join(out) + "\n"
