"""The font a Chinese plot is drawn with: dse's shipped CJK subset, a system font, or none.

Why a shipped font: matplotlib's own DejaVu Sans has no Chinese glyphs, and most servers and
boards have no CJK font either, so a Chinese report's plots would show empty boxes. dse ships
``dse/data/fonts/dse-cjk-sans.otf``: Noto Sans CJK SC (SIL Open Font License 1.1, text beside
it) cut down to the Chinese characters dse's own sources use (about 500 glyphs, ~0.1 MB).
Latin text keeps DejaVu Sans; matplotlib falls back per glyph to the CJK font.

Fallback, in order: the shipped subset; a CJK font installed on the system (Noto/Source Han,
WenQuanYi, SimHei, ...); else the plots are drawn in English and ``PlotFont.note`` says so
(the report prints the note under the plots).

``python -m dse.report.fonts NotoSansCJK-Regular.ttc`` rebuilds the subset from a Noto CJK
file (``--font-number 2`` is Simplified Chinese in the .ttc) after Chinese strings change;
``tests/test_plot_lang.py`` fails if a plot string has a character the subset lacks.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: Family name the shipped subset registers under (not a Reserved Font Name of the source).
SHIPPED_FAMILY = "dse CJK Sans"
SHIPPED_FILE = "dse-cjk-sans.otf"
#: Families tried when the shipped file is missing, by what their names contain.
SYSTEM_HINTS = ("Noto Sans CJK", "Noto Sans SC", "Source Han Sans", "WenQuanYi", "SimHei",
                "Microsoft YaHei", "PingFang", "Hiragino Sans GB", "Droid Sans Fallback",
                "AR PL", "Noto Serif CJK")
LATIN_FAMILY = "DejaVu Sans"
#: Characters that need a CJK font (ideographs, CJK punctuation, full-width forms).
CJK_RE = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]")


@dataclass(frozen=True)
class PlotFont:
    """How plots of one language are drawn: their language, font families and a note."""

    lang: str
    families: tuple[str, ...]
    source: str  # "shipped", "system: <family>", "latin" or "none"
    note: str = ""


def shipped_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "fonts" / SHIPPED_FILE


@cache
def plot_font(lang: str) -> PlotFont:
    """The fonts of ``lang``'s plots (registered with matplotlib once per process)."""
    if lang != "zh":
        return PlotFont(lang, (LATIN_FAMILY,), "latin")
    from matplotlib import font_manager

    path = shipped_path()
    if path.is_file():
        try:
            font_manager.fontManager.addfont(str(path))
            return PlotFont(lang, (LATIN_FAMILY, SHIPPED_FAMILY), "shipped")
        except (OSError, RuntimeError, ValueError):
            pass
    for entry in font_manager.fontManager.ttflist:
        if any(h.lower() in entry.name.lower() for h in SYSTEM_HINTS):
            return PlotFont(lang, (LATIN_FAMILY, entry.name), f"system: {entry.name}")
    return PlotFont("en", (LATIN_FAMILY,), "none",
                    note=f"图中文字为英文：未找到中文字体（dse 自带的 {SHIPPED_FILE} 缺失，系统也"
                    f"没有 CJK 字体）")


def rc(font: PlotFont) -> dict[str, object]:
    """matplotlib settings for a figure drawn with ``font`` (use in ``rc_context``)."""
    return {"font.family": list(font.families), "axes.unicode_minus": False}


# -- building the subset (a maintainer's step, not run by dse) ---------------------------------

def source_chars(root: Path | None = None) -> str:
    """Every CJK character in dse's own sources and data (what the subset must cover)."""
    root = root or Path(__file__).resolve().parent.parent
    chars: set[str] = set()
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".md", ".yaml") and p.is_file():
            chars.update(CJK_RE.findall(p.read_text(encoding="utf-8")))
    return "".join(sorted(chars))


def build_subset(source: Path, out: Path, font_number: int = 2) -> int:
    """Cut ``source`` (a Noto Sans CJK .ttc/.otf) down to ``source_chars()`` under the family
    name ``SHIPPED_FAMILY``; return the number of characters kept."""
    from fontTools import subset

    chars = source_chars()
    opts = subset.Options()
    opts.layout_features = []
    opts.hinting = False
    opts.font_number = font_number
    opts.name_IDs = ["*"]
    font = subset.load_font(str(source), opts)
    sub = subset.Subsetter(opts)
    sub.populate(text=chars)
    sub.subset(font)
    name = font["name"]
    for rec in name.names:
        if rec.nameID in (1, 16):
            rec.string = SHIPPED_FAMILY
        elif rec.nameID in (4,):
            rec.string = f"{SHIPPED_FAMILY} Regular"
        elif rec.nameID == 6:
            rec.string = SHIPPED_FAMILY.replace(" ", "") + "-Regular"
        elif rec.nameID == 3:
            rec.string = f"{SHIPPED_FAMILY}: subset of Noto Sans CJK SC"
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [SHIPPED_FAMILY.replace(" ", "") + "-Regular"]
    out.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(out), opts)
    return len(chars)


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m dse.report.fonts",
                                description="rebuild dse's CJK font subset")
    p.add_argument("source", type=Path, help="NotoSansCJK-Regular.ttc (or an SC .otf)")
    p.add_argument("--font-number", type=int, default=2, help="font in the .ttc (2: SC)")
    p.add_argument("-o", "--output", type=Path, default=shipped_path())
    args = p.parse_args(argv)
    n = build_subset(args.source, args.output, args.font_number)
    print(f"{args.output}: {n} characters, {args.output.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
