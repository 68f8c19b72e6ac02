"""How every section names a plan and the scenario its figures hold for.

A figure for a plan means nothing without the scenario it was priced at (context, prompt,
sequences, KV format, calibration): the same plan is 49 ms at 256 tokens of context and 60 ms
at 4096. Sections written by different commands (explore's card, calibrate's re-projection,
``dse project``, ``dse compare``) name a plan by its label and its identity
(``Plan.identity``: 8 hex digits of its content) and state the scenario beside each figure,
so a reader can tell "the same plan, the same scenario" from "another version of best" or "the
same plan at another context". Pure functions over plain values.
"""

from __future__ import annotations

from collections.abc import Mapping

from dse.model.scenario import scenario_key

__all__ = ["SCENARIO_FIELDS", "plan_ref", "scenario_diff", "scenario_key", "scenario_text"]

#: The fields of a scenario a figure depends on, in the order they are compared.
SCENARIO_FIELDS = ("phase", "m", "context_tokens", "sequences", "kv_dtype", "view",
                   "calibration")

_W = {
    "phase.decode": ("解码", "decode"),
    "phase.prefill": ("预填充 {m} 个提示 token", "prefill of {m} prompt tokens"),
    "ctx": ("上下文 {n} 个 token", "{n} tokens of context"),
    "seq": ("{n} 个序列", "{n} sequence{s}"),
    "kv": ("KV {kv}", "KV {kv}"),
    "cal": ("校准：{c}", "calibration: {c}"),
    "cal.none": ("无", "none"),
    "view.host-attached": ("主机连接视角", "host-attached view"),
    "plan": ("`{label}`（方案 `{id}`）", "`{label}` (plan `{id}`)"),
    "at": ("{phase}，{rest}", "{phase} at {rest}"),
    "sep": ("，", ", "),
    "diff": ("{field} {a} 对 {b}", "{field} {a} vs {b}"),
    "f.phase": ("阶段", "phase"), "f.m": ("M", "M"), "f.context_tokens": ("上下文", "context"),
    "f.sequences": ("序列数", "sequences"), "f.kv_dtype": ("KV 格式", "KV format"),
    "f.view": ("视角", "view"), "f.calibration": ("校准", "calibration"),
}


def _w(key: str, lang: str, **kw: object) -> str:
    text = _W[key][0 if lang == "zh" else 1]
    return text.format(**kw) if kw else text


def scenario_text(key: Mapping, lang: str, with_calibration: bool = True) -> str:
    """``decode at 256 tokens of context, 1 sequence(s), KV int8; calibration: none``."""
    phase = (_w("phase.decode", lang) if key["phase"] == "decode"
             else _w("phase.prefill", lang, m=key["m"]))
    parts = [_w("ctx", lang, n=key["context_tokens"]), _w("seq", lang, n=key["sequences"],
                                                         s="" if key["sequences"] == 1 else "s"),
             _w("kv", lang, kv=key["kv_dtype"])]
    if key.get("view") == "host-attached":
        parts.append(_w("view.host-attached", lang))
    text = _w("at", lang, phase=phase, rest=_w("sep", lang).join(parts))
    if with_calibration:
        cal = key.get("calibration") or "none"
        text += ("；" if lang == "zh" else "; ") + _w(
            "cal", lang, c=_w("cal.none", lang) if cal == "none" else f"`{cal}`")
    return text


def scenario_diff(a: Mapping, b: Mapping, lang: str) -> str:
    """How scenario ``a`` differs from ``b`` ("context 256 vs 1024"), '' if it does not."""
    diffs = [_w("diff", lang, field=_w(f"f.{f}", lang), a=a.get(f), b=b.get(f))
             for f in SCENARIO_FIELDS if f in a and f in b and a[f] != b[f]]
    return _w("sep", lang).join(diffs)


def plan_ref(label: str, identity: str, lang: str) -> str:
    """```best` (plan `3f2a9c1b`)``: a plan named by its label and its identity."""
    return _w("plan", lang, label=label, id=identity)
