"""The report section "Projected vs measured", in Chinese or English.

What ``dse calibrate`` found: where the measurements came from (the log, its configuration
and hash), the fitted parameters with their uncertainty, every log entry measured against
projected before and after the fit (and which ones the model cannot price yet), the
held-out check, composed end-to-end figures with the share taken from measurement stated,
and the best plans re-projected with the calibration. "Measured" is only said of what a
measurement produced: a simulation's figures are "simulated", a composition says its parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dse.hw.calibrate import EndToEnd
from dse.model.calibration import Calibration, FittedParam, bound_of
from dse.model.fit import LogFit
from dse.model.measurement_log import MeasurementLog
from dse.model.scenario import scenario_key
from dse.report import numbers, sections
from dse.report.i18n import pick
from dse.report.identity import plan_ref, scenario_diff, scenario_text
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
    "cols.params": ("参数|默认值|拟合值 ± 标准误差", "Parameter|Default|Fitted ± std. error"),
    "param.at_bound": ("（停在边界上，没有标准误差）", " (held at its bound: no standard error)"),
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
    "h.e2e": ("### 端到端：推荐方案", "### End to end: the recommended plan"),
    "e2e.intro": ("方案 {ref}，引擎 `{design}`，每 token 解码时间，场景：{scen}。基线：能装下的最快"
                  "仅 CPU 运行时 `{brt}`（KV {bkv}），校准后 {base} ms。",
                  "Plan {ref} on `{design}`, decode ms per token at {scen}. Baseline: the "
                  "fastest CPU-only runtime that fits, `{brt}` (KV {bkv}), {base} ms after "
                  "calibration."),
    "e2e.as_built": ("运行的引擎不是该方案的引擎：以下各值都是该方案的层在实际构建的引擎 "
                     "`{design}` 上的值。",
                     "The run's engine is not the plan's: every figure below is of the plan's "
                     "layers on the engine as built, `{design}`."),
    "e2e.composed": ("组合值：已运行形状的层（{hit}/{off} 个 PL 层）取{kind}值，其余取校准后的"
                     "预测；组合值中 {frac:.0%} 为{kind}，其余为模型。",
                     "Composed: the PL layers whose shape was run ({hit}/{off}) take the {kind} "
                     "time, everything else the calibrated projection; {frac:.0%} of the "
                     "composed figure is {kind}, the rest modelled."),
    "e2e.launch": ("板上测得的调用由 dse 的 Python PYNQ 驱动发起；该方案的 native 运行时按 C 驱动的"
                   "发起开销定价，两者相差这一开销。",
                   "The board's measured calls were launched by dse's Python PYNQ driver; the "
                   "plan's native runtime is priced with a C driver's launch, so the two "
                   "differ by that launch."),
    "cols.e2e": ("数值|ms/token|tok/s|对 `{brt}` 仅 CPU 的加速比|相对组合值|是什么",
                 "Figure|ms/token|tok/s|Speedup vs `{brt}` CPU-only|vs composed|What it is"),
    "row.before": ("校准前预测", "Projected, before calibration"),
    "row.before.what": ("模型默认参数（与 `dse explore` 的结论同一方案、同一场景时即结论中的"
                        "数值）",
                        "model defaults (the answer card's figure when the card is of this plan "
                        "at this scenario)"),
    "row.after": ("校准后预测", "Projected, after calibration"),
    "row.after.what": ("同一方案、同一场景，用本节的校准", "the same plan and scenario with this "
                       "section's calibration"),
    "row.composed": ("组合值", "Composed"),
    "row.composed.what": ("{frac:.0%} 为{kind}（{hit} 个层的形状），其余为校准后的模型",
                          "{frac:.0%} {kind} ({hit} layers' shapes), the rest the calibrated "
                          "model"),
    "kind.measured": ("实测", "measured"),
    "kind.simulated": ("仿真", "simulated"),
    "card.same": ("写入本节时，与上方 `dse explore` 结论中的推荐方案相同（方案 `{id}`，同一场景）；"
                  "之后若重新探索，结论会说明是否仍一致。",
                  "When this section was written, the answer card above was of the same plan "
                  "(plan `{id}`) at the same scenario; a later `dse explore` says in the card "
                  "whether it still is."),
    "card.other_plan": ("注意：上方结论推荐的是 {card}（{card_ms} ms/token，{card_scen}），"
                        "不是本节校准的 {ref}：两节由不同的运行写成（不同的方案版本、选项或"
                        "校准）。重新运行 `dse explore` 或 `dse calibrate` 使两者一致。",
                        "Note: the answer card above recommends {card} ({card_ms} ms/token at "
                        "{card_scen}), not {ref} calibrated here: the two sections were "
                        "written by different runs (another version of the plan, other options "
                        "or another calibration). Re-run `dse explore` or `dse calibrate` to "
                        "bring them into step."),
    "card.other_scen": ("与上方结论是同一方案（`{id}`），但场景不同：{diff}；结论中的 {card_ms} "
                        "ms/token 对应它自己的场景。",
                        "The same plan as the answer card above (`{id}`), at another "
                        "scenario: {diff}; the card's {card_ms} ms/token holds for its own."),
    "h.replan": ("### 用校准重新估算的最佳方案",
                 "### Best plans re-projected with the calibration"),
    "replan.intro": ("`dse explore` 的前几名方案，同一场景（{scen}）下用默认参数和用本节的校准"
                     "各搜索一次；校准后同名方案若不是同一方案，列出它的标识。",
                     "The search's top plans at one scenario ({scen}), searched with the model "
                     "defaults and again with this section's calibration; where the plan of "
                     "a label changes with the calibration, both identities are shown."),
    "cols.replan": ("方案|方案标识|引擎设计|校准前 (ms)|校准前加速比|校准后 (ms)|校准后加速比",
                    "Plan|Identity|Engine design|Before (ms)|Speedup before|After (ms)|"
                    "Speedup after"),
}


def _t(key: str, lang: str, **kw: object) -> str:
    return pick(_S, key, lang, **kw)


def _cols(key: str, lang: str, **kw: object) -> list[str]:
    return _t(key, lang, **kw).split("|")


def _fitted_text(name: str, p: FittedParam, lang: str) -> str:
    """A fitted value with its standard error; one the fit left on a bound has none (the fit
    holds it fixed there, ``dse.model.fit._covariance``), and says so rather than looking
    unconstrained."""
    if p.stderr is None and bound_of(name, p.value) is not None:
        return numbers.param_value(name, p.value) + _t("param.at_bound", lang)
    return numbers.param_value(name, p.value, p.stderr, with_err=True)


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


def _e2e_block(e2e: EndToEnd, lang: str, card: Mapping | None) -> list[str]:
    """The recommended plan's token before, after and composed, at its scenario, and how it
    relates to the answer card of the same report (``card``: that card's summary)."""
    kind = _t(f"kind.{e2e.kind}", lang)
    ref = plan_ref(e2e.plan, e2e.plan_id, lang)
    lines = [_t("h.e2e", lang), "",
             _t("e2e.intro", lang, ref=ref, design=e2e.design,
                scen=scenario_text(e2e.scenario, lang, False), brt=e2e.baseline_runtime,
                bkv=e2e.baseline_kv, base=numbers.ms(e2e.baseline_ms))]
    if card is not None:
        lines.append(_card_relation(e2e.plan_id, e2e.scenario, ref, card, lang))
    if e2e.as_built:
        lines.append(_t("e2e.as_built", lang, design=e2e.design))
    lines.append(_t("e2e.composed", lang, hit=e2e.run_layers, off=e2e.offloaded_layers,
                    kind=kind, frac=e2e.run_fraction))
    if e2e.launch_differs:
        lines.append(_t("e2e.launch", lang))
    rows = []
    for key, ms, what in (("row.before", e2e.projected_before_ms, _t("row.before.what", lang)),
                          ("row.after", e2e.projected_after_ms, _t("row.after.what", lang)),
                          ("row.composed", e2e.composed_ms, _t(
                              "row.composed.what", lang, frac=e2e.run_fraction, kind=kind,
                              hit=e2e.run_layers))):
        err = (numbers.MISSING if key == "row.composed"
               else numbers.signed_pct(ms / e2e.composed_ms - 1))
        rows.append([_t(key, lang), numbers.ms(ms), f"{1e3 / ms:.2f}" if ms > 0 else "—",
                     numbers.times(e2e.speedup(ms)), err, what])
    return [*lines, "", md_table(_cols("cols.e2e", lang, brt=e2e.baseline_runtime), rows)]


def _card_relation(plan_id: str, scenario: Mapping, ref: str, card: Mapping, lang: str
                   ) -> str:
    """One sentence: is the answer card above about this plan, at this scenario?"""
    card_scen = card.get("scenario")
    if card.get("plan_id") != plan_id:
        cs = scenario_text(card_scen, lang) if isinstance(card_scen, Mapping) else "?"
        return _t("card.other_plan", lang, ref=ref, card=plan_ref(
            str(card.get("plan")), str(card.get("plan_id") or "?"), lang),
            card_ms=numbers.ms(card.get("ms_per_token")), card_scen=cs)
    if not isinstance(card_scen, Mapping):
        return _t("card.same", lang, id=plan_id)
    mine = {**scenario, "calibration": card_scen.get("calibration", "none")}
    diff = scenario_diff(card_scen, mine, lang)
    if diff:
        return _t("card.other_scen", lang, id=plan_id, diff=diff,
                  card_ms=numbers.ms(card.get("ms_per_token")))
    return _t("card.same", lang, id=plan_id)


#: Most entry ids a sentence lists (a log may hold ten thousand).
MAX_IDS = 12


def _ids(ids: list[str], lang: str) -> str:
    """Entry ids as code, the first ``MAX_IDS`` of them and how many more."""
    shown = ", ".join(f"`{x}`" for x in ids[:MAX_IDS])
    return shown + (_t("more", lang, n=len(ids) - MAX_IDS) if len(ids) > MAX_IDS else "")


def render_calibration_section(cal: Calibration, res: LogFit, board_stem: str, lang: str, *,
                               log: MeasurementLog, e2e: EndToEnd | None,
                               replans: Sequence[tuple[RankedPlan, RankedPlan]],
                               repeats: int | None = None, card: Mapping | None = None
                               ) -> str:
    """The whole section, fenced by this board's calibrate markers (pure). ``card``: the
    summary of the same board's answer card in the report, which the end-to-end figures
    are related to (the same plan and scenario, or which differs)."""
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
        [f"`{name}`", numbers.param_value(name, p.default),
         _fitted_text(name, p, lang)]
        for name, p in cal.params.items()]))
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
        out += ["", *_e2e_block(e2e, lang, card)]
    if replans:
        scen = replans[0][0].decode.scenario
        out += ["", _t("h.replan", lang), "",
                _t("replan.intro", lang, scen=scenario_text(scenario_key(scen), lang, False))]
        b0 = replans[0][0]
        if card is not None and e2e is None:
            out.append(_card_relation(b0.plan.identity, scenario_key(scen), plan_ref(
                b0.label, b0.plan.identity, lang), card, lang))
        out.append("")
        rows = []
        for b, a in replans:
            ident = f"`{b.plan.identity}`" + (
                "" if a.plan.identity == b.plan.identity else f" → `{a.plan.identity}`")
            design = f"`{b.plan.design.label()}`" + (
                "" if a.plan.design.label() == b.plan.design.label()
                else f" → `{a.plan.design.label()}`")
            rows.append([f"`{b.label}`", ident, design, numbers.ms(b.objective_ms),
                         numbers.times(b.speedup), numbers.ms(a.objective_ms),
                         numbers.times(a.speedup)])
        out.append(md_table(_cols("cols.replan", lang), rows))
    plan = _plan_of(e2e, replans)
    if plan is not None:
        out += ["", calibrated_comment({**plan, "created": cal.created, "calibration":
                                        cal.label() if cal.path else None})]
    out.append(end)
    return "\n".join(out) + "\n"


_CALIBRATED = "<!-- dse:calibrated "


def _plan_of(e2e: EndToEnd | None, replans) -> dict | None:
    """The plan the section speaks of (its end-to-end figures', else the re-projection's
    best): label, identity and scenario."""
    if e2e is not None:
        return {"plan": e2e.plan, "plan_id": e2e.plan_id, "scenario": e2e.scenario}
    if replans:
        b = replans[0][0]
        return {"plan": b.label, "plan_id": b.plan.identity,
                "scenario": scenario_key(b.decode.scenario)}
    return None


def calibrated_comment(data: Mapping) -> str:
    """The machine-readable line naming the plan a calibration section speaks of."""
    # the summary line's escaping: no value (a board's name, a file's) can end the comment
    return sections.summary_comment(dict(data)).replace(sections.SUMMARY_PREFIX, _CALIBRATED, 1)


def calibrated_summary(report_text: str, board_stem: str) -> dict | None:
    """The plan ``board_stem``'s calibration section in a report speaks of (None: no such
    section, or one without the line)."""
    import json

    begin, end = sections.section_markers("calibrate", board_stem)
    start = report_text.find(begin)
    stop = report_text.find(end, start) if start >= 0 else -1
    at = report_text.find(_CALIBRATED, start, stop) if stop >= 0 else -1
    if at < 0:
        return None
    close = report_text.find(" -->", at, stop)
    try:
        data = json.loads(report_text[at + len(_CALIBRATED):close])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
