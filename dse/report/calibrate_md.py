"""The report section "Projected vs measured", in Chinese or English.

What ``dse calibrate`` found: where the measurements came from (the log, its configuration
and hash), the fitted parameters with their uncertainty, every log entry measured against
projected before and after the fit (and which ones the model cannot price yet), the
held-out check, composed end-to-end figures with the share taken from measurement stated,
and the best plans re-projected with the calibration. "Measured" is only said of what a
measurement produced: a simulation's figures are "simulated", a composition says its parts.
"""

from __future__ import annotations

from collections.abc import Sequence

from dse.hw.calibrate import EndToEnd
from dse.model.calibration import Calibration
from dse.model.fit import LogFit
from dse.model.measurement_log import MeasurementLog
from dse.report import sections
from dse.report.table import md_table
from dse.search.explore import RankedPlan

_S: dict[str, tuple[str, str]] = {
    "title": ("## 预测与实测对比 — {board}", "## Projected vs measured — {board}"),
    "h.source": ("### 测量来源", "### Where the measurements came from"),
    "cols.kv": ("属性|值", "Property|Value"),
    "backend": ("来源", "Source"),
    "backend.sim": ("RTL 仿真 (Verilator)：只有 PL 忙周期是仿真结果，DDR 供给按板卡文件建模",
                    "RTL simulation (Verilator): only the PL's busy cycles are simulated, the "
                    "DDR supply is modelled from the board file"),
    "backend.pynq": ("PYNQ 板上实测", "measured on the PYNQ board"),
    "backend.paper": ("已发表的板上测量（逐条注明出处）",
                      "published board measurements (each entry cites its source)"),
    "backend.board": ("板上实测", "measured on a board"),
    "log": ("测量日志", "Measurement log"),
    "config": ("配置", "Configuration"),
    "created": ("时间", "Date"),
    "repeats": ("每层重复次数", "Repeats per layer"),
    "file": ("校准文件", "Calibration file"),
    "h.params": ("### 拟合参数", "### Fitted parameters"),
    "cols.params": ("参数|默认值|拟合值|标准误差", "Parameter|Default|Fitted|Std. error"),
    "params.note": ("只拟合该来源能提供信息的参数：{allowed}。",
                    "Only parameters this kind of source informs are fitted: {allowed}."),
    "h.entries": ("### 逐条：预测与实测", "### Entry by entry: projected vs measured"),
    "cols.entries": ("条目|类别|内容|实测|校准前预测|误差|校准后预测|误差|状态",
                     "Entry|Kind|What|Measured|Projected before|Error|Projected after|Error|"
                     "Status"),
    "st.fitted": ("已拟合", "fitted"),
    "st.checked": ("仅检验", "checked only"),
    "st.not priced": ("模型尚未定价", "not priced by this model yet"),
    "st.composed": ("组合值", "composed"),
    "errors": ("已拟合条目的模型误差：校准前最大 {b_max:.1%}（平均 {b_mean:.1%}），校准后最大 "
               "{a_max:.1%}（平均 {a_mean:.1%}）。",
               "Model error over the fitted entries: before calibration max {b_max:.1%} "
               "(mean {b_mean:.1%}), after max {a_max:.1%} (mean {a_mean:.1%})."),
    "composed": ("`{id}`：实测 {meas:g} {unit}；组合值 {after:.4g} {unit}（{err:+.1%}），其中 "
                 "{frac:.0%} 取自测量（模型尚未定价的部分及余项），{mod:.0%} 为模型预测。",
                 "`{id}`: measured {meas:g} {unit}; composed {after:.4g} {unit} ({err:+.1%}), "
                 "of which {frac:.0%} is taken from the measurement (the parts the model does "
                 "not price, and the remainder) and {mod:.0%} is modelled."),
    "unpriced": ("模型尚未定价（{n} 条，保留并列出，不丢弃、不伪造）：{ids}。",
                 "Not priced by this model yet ({n} entries, listed, not dropped and not "
                 "faked): {ids}."),
    "heldout": ("留出检验：在 {tr} 条上拟合（{train}），预测其余 {te} 条：最大误差 {mx:.1%}"
                "（平均 {mean:.1%}）。",
                "Held-out check: fitted on {tr} entries ({train}), predicting the other {te}: "
                "max error {mx:.1%} (mean {mean:.1%})."),
    "heldout.failed": ("留出检验：半数条目的拟合失败（{why}）。",
                       "Held-out check: the fit to half the entries failed ({why})."),
    "alone": ("不能留出（各自是其参数的唯一依据）：{ids}。",
              "Cannot be held out (each is the only evidence for its parameters): {ids}."),
    "loo": ("逐条留一：{rows}。", "Leave-one-out (each entry predicted by a fit to all the "
            "others): {rows}."),
    "loo.sample": ("逐条留一（{n} 条中均匀选取 {k} 条，各自从完整拟合的参数值重新拟合）：{rows}。",
                   "Leave-one-out ({k} of the {n} entries, spread evenly, each refitted from "
                   "the full fit's values): {rows}."),
    "more": ("，另 {n} 条", ", and {n} more"),
    "h.e2e": ("### 端到端", "### End to end"),
    "e2e.intro": ("方案 `{plan}` 的卸载集合运行在覆盖层引擎 `{design}` 上（不融合、无常驻），"
                  "每 token 解码时间；基线为 PyTorch {base:.1f} ms。组合值：已运行形状的层"
                  "（{hit}/{off} 层）取{kind}值，其余取校准后的预测；组合值中 {frac:.0%} 为{kind}，"
                  "其余为模型。",
                  "Plan `{plan}`'s offload set on the overlay engine `{design}` (no fusion, no "
                  "residency), decode ms per token; baseline: PyTorch, {base:.1f} ms. Composed: "
                  "layers whose shape was run ({hit}/{off} layers) take the {kind} time, the "
                  "rest the calibrated projection; {frac:.0%} of the composed figure is "
                  "{kind}, the rest modelled."),
    "cols.e2e": ("|ms/token|加速比 (对 PyTorch 基线)|相对组合值",
                 "|ms/token|Speedup (vs PyTorch baseline)|vs composed"),
    "row.before": ("校准前预测", "Projected, before calibration"),
    "row.after": ("校准后预测", "Projected, after calibration"),
    "row.composed": ("组合值（{frac:.0%} {kind}）", "Composed ({frac:.0%} {kind})"),
    "kind.measured": ("实测", "measured"),
    "kind.simulated": ("仿真", "simulated"),
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


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def _err(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1%}"


#: Labels of the log's configuration fields (zh, en).
_CFG = {"board": ("板卡", "board"), "engine": ("引擎", "engine"),
        "bitstream": ("比特流", "bitstream"), "pl_clock_mhz": ("PL 时钟 MHz", "pl_clock_mhz"),
        "ps_clock_mhz": ("PS 时钟 MHz", "ps_clock_mhz"),
        "ddr_transfer_rate_mts": ("DDR 速率 MT/s", "ddr_transfer_rate_mts"),
        "threads": ("线程", "threads"), "runtime": ("运行时", "runtime")}


def _config_text(log: MeasurementLog, lang: str = "en") -> str:
    """The log's configuration in the report's language: labels translated, the log's own
    free-text values quoted verbatim as code (they are data, not the report's prose)."""
    cfg = log.config
    i = 0 if lang == "zh" else 1
    parts = [f"{_CFG['board'][i]} {cfg.board}"]
    if cfg.engine:
        parts.append(f"{_CFG['engine'][i]} " + ", ".join(f"{k} {v}" for k, v in
                                                        cfg.engine.items()))
    for key in ("bitstream", "pl_clock_mhz", "ps_clock_mhz", "ddr_transfer_rate_mts",
                "threads", "runtime"):
        v = getattr(cfg, key)
        if v is not None:
            text = f"{v:g}" if isinstance(v, float) else (f"`{v}`" if isinstance(v, str)
                                                           else f"{v}")
            parts.append(f"{_CFG[key][i]} {text}")
    return "; ".join(parts)


#: Most entry ids a sentence lists (a log may hold ten thousand).
MAX_IDS = 12


def _ids(ids: list[str], lang: str) -> str:
    """Entry ids as code, the first ``MAX_IDS`` of them and how many more."""
    shown = ", ".join(f"`{x}`" for x in ids[:MAX_IDS])
    return shown + (_t("more", lang, n=len(ids) - MAX_IDS) if len(ids) > MAX_IDS else "")


def render_calibration_section(cal: Calibration, res: LogFit, board_stem: str, lang: str, *,
                               log: MeasurementLog, e2e: EndToEnd | None,
                               replans: Sequence[tuple[RankedPlan, RankedPlan]],
                               repeats: int | None = None) -> str:
    """The whole section, fenced by this board's calibrate markers (pure)."""
    from dse.model.fit import source_params

    begin, end = sections.section_markers("calibrate", board_stem)
    out = [begin, _t("title", lang, board=cal.board), "", _t("h.source", lang), ""]
    key = f"backend.{cal.backend}"
    rows = [[_t("backend", lang), _t(key, lang) if key in _S else cal.backend],
            [_t("log", lang), (f"`{log.path}` (sha256 {log.sha256[:12]})" if log.path
                               else "—") + (f": `{log.title}`" if log.title else "")],
            [_t("config", lang), _config_text(log, lang)],
            [_t("created", lang), cal.created]]
    if repeats is not None:
        rows.append([_t("repeats", lang), repeats])
    rows.append([_t("file", lang), f"`{cal.label()}`" if cal.path else "—"])
    out += [md_table(_cols("cols.kv", lang), rows), "", _t("h.params", lang), ""]
    out.append(md_table(_cols("cols.params", lang), [
        [f"`{name}`", f"{p.default:g}", f"{p.value:.4g}",
         "—" if p.stderr is None else f"{p.stderr:.2g}"] for name, p in cal.params.items()]))
    out += ["", _t("params.note", lang, allowed=", ".join(
        f"`{p}`" for p in source_params(cal.backend))), "", _t("h.entries", lang), ""]
    erows = []
    for r in res.entries:
        erows.append([f"`{r.id}`", r.kind, r.what, f"{_num(r.measured)} {r.unit}",
                      _num(r.before), _err(r.error_before), _num(r.after), _err(r.error_after),
                      _t(f"st.{r.status}", lang)])
    out.append(md_table(_cols("cols.entries", lang), erows))
    b, a = cal.error_before, cal.error_after
    out += ["", _t("errors", lang, b_max=b.get("max_abs_rel_error", 0.0),
                   b_mean=b.get("mean_abs_rel_error", 0.0),
                   a_max=a.get("max_abs_rel_error", 0.0),
                   a_mean=a.get("mean_abs_rel_error", 0.0))]
    for r in res.entries:
        if r.status == "composed" and r.after is not None:
            out.append(_t("composed", lang, id=r.id, meas=r.measured, unit=r.unit,
                          after=r.after, err=r.error_after, frac=r.measured_fraction,
                          mod=1 - r.measured_fraction))
    unpriced = [f"`{r.id}`" for r in res.entries if r.status == "not priced"]
    if unpriced:
        out.append(_t("unpriced", lang, n=len(unpriced), ids=", ".join(unpriced)))
    held = res.held_out
    if held and "failed" in held:
        out.append(_t("heldout.failed", lang, why=held["failed"]))
    elif held:
        out.append(_t("heldout", lang, tr=len(held["train"]), te=len(held["test"]),
                      train=_ids(held["train"], lang),
                      mx=held["max_abs_rel_error"], mean=held["mean_abs_rel_error"]))
        if held.get("alone"):
            out.append(_t("alone", lang, ids=_ids(held["alone"], lang)))
        loo = held.get("leave_one_out") or {}
        if loo:
            rows = "; ".join(f"`{k}` {_err(v['error'])}" for k, v in loo.items())
            out.append(_t("loo.sample", lang, k=len(loo), n=held["leave_one_out_of"], rows=rows)
                       if held.get("leave_one_out_of") else _t("loo", lang, rows=rows))
    if e2e is not None:
        kind = _t(f"kind.{e2e.kind}", lang)
        out += ["", _t("h.e2e", lang), "",
                _t("e2e.intro", lang, plan=e2e.plan, design=e2e.design, base=e2e.baseline_ms,
                   hit=e2e.run_layers, off=e2e.offloaded_layers, kind=kind,
                   frac=e2e.run_fraction), ""]
        trows = []
        for label, ms in ((_t("row.before", lang), e2e.projected_before_ms),
                          (_t("row.after", lang), e2e.projected_after_ms),
                          (_t("row.composed", lang, frac=e2e.run_fraction, kind=kind),
                           e2e.composed_ms)):
            err = "—" if ms is e2e.composed_ms else f"{ms / e2e.composed_ms - 1:+.1%}"
            trows.append([label, f"{ms:,.1f}", f"{e2e.speedup(ms):.2f}x", err])
        out.append(md_table(_cols("cols.e2e", lang), trows))
    if replans:
        out += ["", _t("h.replan", lang), ""]
        out.append(md_table(_cols("cols.replan", lang), [
            [f"`{b.label}`", f"`{a.plan.design.label()}`", f"{b.objective_ms:,.1f}",
             f"{b.speedup:.2f}x", f"{a.objective_ms:,.1f}", f"{a.speedup:.2f}x"]
            for b, a in replans]))
    out.append(end)
    return "\n".join(out) + "\n"
