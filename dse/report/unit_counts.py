"""The card's line on how many instances of each PL unit kind the best plan has, and why.

Shared by the report's card (``dse.report.explore_md``) and the console summary of
``dse explore``, which prints the same line without loading the report writer (issue 28: the
no-report run's start-up). Its words in both report languages live here, next to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dse.report import numbers
from dse.report.i18n import pick, render_msg

if TYPE_CHECKING:
    from dse.search.explore import ExploreResult

_S: dict[str, tuple[str, str]] = {
    "card.unit_counts": ("单元数", "How many units"),
    "card.unit_count_val": ("{kind}：{n} 个（搜索了 {opts}；{why}）",
                            "{kind}: {n} (searched {opts}; {why})"),
    "card.count_best": ("目标最低", "the lowest objective"),
    "card.count_more": ("{m} 个时 {ms} ms（{d:+.1%}）", "{m} would take {ms} ms ({d:+.1%})"),
    "card.count_cannot": ("{m} 个不可用：{why}", "{m} cannot: {why}"),
}


def _t(key: str, lang: str, **fields: object) -> str:
    return pick(_S, key, lang, **fields)


def unit_count_rows(result: ExploreResult, lang: str) -> list[tuple[str, str]]:
    """The card's line on how many instances of each unit kind the best plan has, and why:
    the next count's objective, or why it cannot be used."""
    out = []
    for kind in dict.fromkeys(u.kind for u in result.unit_counts):
        opts = [u for u in result.unit_counts if u.kind == kind]
        chosen = next((u for u in opts if u.chosen), None)
        counts = sorted({u.count for u in opts})
        if chosen is None or chosen.objective_ms is None or len(counts) < 3:
            continue
        nxt = next((u for u in opts if u.count == chosen.count + 1), None)
        if nxt is None:
            why = _t("card.count_best", lang)
        elif nxt.objective_ms is None:
            why = _t("card.count_cannot", lang, m=nxt.count, why=render_msg(nxt.why_not, lang))
        else:
            why = _t("card.count_more", lang, m=nxt.count, ms=numbers.ms(nxt.objective_ms),
                     d=nxt.objective_ms / chosen.objective_ms - 1)
        out.append((_t("card.unit_counts", lang), _t(
            "card.unit_count_val", lang, kind=kind, n=chosen.count,
            opts=f"{counts[0]}–{counts[-1]}", why=why)))
    return out


__all__ = ["unit_count_rows"]
