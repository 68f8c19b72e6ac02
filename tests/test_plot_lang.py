"""Plots speak the report's language: a Chinese report's plots have no English words in
their titles, axes, legends and annotations, an English one's no CJK character, and the
shipped font has a glyph for every Chinese character a plot can show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dse.model.board import load_board
from dse.model.project import CostContext
from dse.report import plot_text, plots
from dse.report.fonts import CJK_RE, SHIPPED_FAMILY, plot_font, shipped_path
from dse.search.explore import ExploreResult, explore
from dse.search.optimize import Objective

ROOT = Path(__file__).resolve().parents[1]

#: Latin-letter words a Chinese plot may show: units, part and format names, runtimes, the
#: seed report's own "token", and the layer kinds / design labels (identifiers with digits or
#: underscores are allowed by ``_allowed`` below).
ALLOWED = {"ms", "GB", "MB", "MiB", "MHz", "Gop", "LUT", "DDR", "PS", "PL", "HP", "KV", "MAC",
           "CPU", "FFN", "RSS", "token", "native", "torch", "int8", "fp16", "fp32", "bf16",
           "base3", "i2", "qkv", "gateup", "ZCU104", "KV260", "J", "VMAX"}


def _allowed(word: str, board: str) -> bool:
    return (word in ALLOWED or word in board or "_" in word or any(c.isdigit() for c in word))


@pytest.fixture(scope="module")
def result(seed_workload) -> ExploreResult:
    ctx = CostContext.for_board(load_board(ROOT / "boards" / "kv260.yaml"))
    return explore(seed_workload, ctx, Objective())


def _texts(result, tmp_path, lang, monkeypatch) -> list[str]:
    """Every text object of every plot ``write_plots`` draws in ``lang``."""
    from matplotlib.text import Text

    figs = []
    real = plots._render

    def keep(fig):
        figs.append(fig)
        return real(fig)

    monkeypatch.setattr(plots, "_render", keep)
    written = plots.write_plots(result, tmp_path, "r", lang=lang)
    assert written.lang == lang and written.note == ""
    assert len(figs) == len(written.names) >= 5
    out = []
    for fig in figs:
        for t in fig.findobj(Text):
            if t.get_visible() and t.get_text().strip():
                out.append(t.get_text())
    return out


def test_chinese_plots_have_no_english_words(result, tmp_path, monkeypatch):
    texts = _texts(result, tmp_path, "zh", monkeypatch)
    assert any(CJK_RE.search(t) for t in texts)
    # design labels are identifiers (the report prints them as code): taken out whole
    designs = sorted({rp.plan.design.label() for rp in (*result.plans, result.naive)},
                     key=len, reverse=True)
    for d in designs:
        texts = [t.replace(d, " ") for t in texts]
    english = sorted({w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z0-9_]+", t)
                      if not _allowed(w, result.board.name)})
    assert english == [], english


def test_english_plots_have_no_cjk(result, tmp_path, monkeypatch):
    texts = _texts(result, tmp_path, "en", monkeypatch)
    assert [t for t in texts if CJK_RE.search(t)] == []
    assert any("decode" in t for t in texts)


def test_the_shipped_font_covers_every_chinese_plot_string():
    from fontTools.ttLib import TTFont

    cmap = TTFont(shipped_path())["cmap"].getBestCmap()
    wanted = {c for zh, _ in plot_text._P.values() for c in CJK_RE.findall(zh)}
    wanted |= {c for v in (*plot_text._PLAN_NAMES.values(), *plot_text._UNIT_KINDS.values())
               for c in CJK_RE.findall(v)}
    from dse.report.matrix import _M

    wanted |= {c for k, (zh, _) in _M.items() if k.startswith("png.") for c in CJK_RE.findall(zh)}
    missing = sorted(c for c in wanted if ord(c) not in cmap)
    assert wanted and missing == [], "rebuild: python -m dse.report.fonts NotoSansCJK.ttc"


def test_chinese_plots_use_the_shipped_font():
    font = plot_font("zh")
    assert font.source == "shipped" and font.families[-1] == SHIPPED_FAMILY
    assert plot_font("en").families == ("DejaVu Sans",)


def test_without_any_cjk_font_plots_fall_back_to_english_and_say_so(monkeypatch, tmp_path):
    from matplotlib import font_manager

    from dse.report import fonts

    monkeypatch.setattr(fonts, "shipped_path", lambda: tmp_path / "missing.otf")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    fonts.plot_font.cache_clear()
    try:
        font = fonts.plot_font("zh")
    finally:
        fonts.plot_font.cache_clear()
    assert font.lang == "en" and font.source == "none"
    assert "未找到中文字体" in font.note


@pytest.mark.parametrize("label,zh", [
    ("best", "最佳方案"), ("best i2", "最佳方案（i2）"), ("best torch", "最佳方案（torch）"),
    ("what-if: head unit", "假设：输出头单元"), ("what-if: on-chip weights", "假设：片上权重"),
    ("what-if: attention + glue units", "假设：注意力 + 胶合 单元"),
    ("with attention unit", "加上注意力 单元"), ("naive top-5", "朴素前 5 层"),
    ("my plan", "my plan")])
def test_plan_names_in_chinese(label, zh):
    assert plot_text.plan_name(label, "zh") == zh
    assert plot_text.plan_name(label, "en") == label
