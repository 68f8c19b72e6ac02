"""The model x board matrix as a Markdown document and a PNG (``dse matrix``).

The Markdown opens with the grid (decode tok/s of the fastest feasible plan, or "no"), then
one row per model and board: fits or not and why, the plan and how to build it, decode tok/s,
time to first token and J/token. The PNG is the same grid, coloured by decode tok/s. Pure
rendering: the cells come from ``dse.search.matrix``.
"""

from __future__ import annotations

import io
import math

from dse.search.matrix import MatrixCell

_M: dict[str, tuple[str, str]] = {
    "title": ("# 哪个 BitNet 模型装得进哪块板卡", "# Which BitNet model fits which board"),
    "intro": ("每个已发布的预设在每块板卡上，只用模型的配置（无 profile）：解码在 {p} + {g} "
              "个 token 的上下文上，首 token 时间为 {p} 个提示 token 的预填充。每个方案是附带的 "
              "overlay 在该板卡上能构建的最快方案（其引擎模板），PS 运行 `native` 运行时"
              "（bitnet.cpp 类，每个内核按其在板卡核心上的指令数定价）；没有 profile 时 `torch` "
              "未测量。校准：无（模型默认值和各板卡文件的 `cost_overrides`）。",
              "Every published preset on every board, from the models' configs alone (no "
              "profile): decode at {p} + {g} tokens of context, prefill of {p} prompt tokens "
              "for the time to first token. Each plan is the fastest the shipped overlay "
              "builds on the board (its engine template), the PS running the `native` runtime "
              "(bitnet.cpp class, every kernel priced from its instruction count on the "
              "board's core); `torch` is not measured without a profile. Calibration: none "
              "(model defaults and each board file's `cost_overrides`)."),
    "searched": ("共搜索 {n} 个格子，用时 {s:.1f} s。", "{n} cells searched in {s:.1f} s."),
    "h.grid": ("## 解码 tok/s（能装下的最快可构建方案；“否”：都装不下）",
               "## Decode tok/s (fastest buildable plan that fits; \"no\": nothing fits)"),
    "model": ("模型", "model"),
    "board": ("板卡", "board"),
    "no": ("否", "no"),
    "yes": ("是", "yes"),
    "alt": ("各模型与板卡的解码 tok/s", "decode tok/s per model and board"),
    "h.all": ("## 每个模型在每块板卡上", "## Every model on every board"),
    "cols.all": ("模型|板卡|装得下|原因|方案（引擎设计 + PL 单元，KV 缓存）|解码 tok/s|"
                 "首 token 时间 s|J/token|仅 CPU tok/s",
                 "model|board|fits|why|plan (engine design + PL units, KV cache)|decode tok/s|"
                 "time to first token s|J/token|CPU alone tok/s"),
    "fits": ("装得下：DDR 用 {mem:,.0f} / {cap:,.0f} MiB", "fits: {mem:,.0f} of {cap:,.0f} MiB "
             "of DDR"),
    "foot": ("板卡文件有 `power:` 模型时给出 J/token（没有：—）。“仅 CPU”是 native 运行时、"
             "全部在板卡 CPU 上运行（装得下时）。",
             "J/token is given where the board file has a `power:` model (n/a: —). \"CPU "
             "alone\" is the native runtime with everything on the board's CPU, where it fits."),
    "h.configs": ("## 模型的配置", "## The models' configs"),
    "png.title": ("解码 tok/s，最快的可构建方案（PS 上为 native 运行时）",
                  "decode tok/s, fastest buildable plan (native runtime on the PS)"),
    "png.bar": ("解码 tok/s", "decode tok/s"),
    "png.nofit": ("装不下", "no fit"),
}


def _m(key: str, lang: str, **kw: object) -> str:
    text = _M[key][0 if lang == "zh" else 1]
    return text.format(**kw) if kw else text


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _grid(cells: tuple[MatrixCell, ...]) -> tuple[list[str], list[str], dict]:
    models = list(dict.fromkeys(c.model for c in cells))
    boards = list(dict.fromkeys(c.board for c in cells))
    return models, boards, {(c.model, c.board): c for c in cells}


def _why(c: MatrixCell, lang: str) -> str:
    """Why a cell fits (its DDR use) or not (what would), in ``lang``."""
    from dse.report.i18n import render_msg

    if c.feasible and c.memory_mib is not None:
        return _m("fits", lang, mem=c.memory_mib, cap=c.capacity_mib)
    if c.advice is not None:
        return ("；" if lang == "zh" else "; ").join(
            render_msg(m, lang) for m in c.advice.messages())
    return c.why


def is_matrix_report(text: str) -> bool:
    """Whether ``text`` is a whole matrix report as ``render_matrix_md`` writes it (its title
    on the first line, in either language) and holds no other command's section: the only
    file ``dse matrix --report`` may replace."""
    from dse.report.sections import lines_outside_fences

    first = text.split("\n", 1)[0].rstrip("\r")
    if first not in _M["title"]:
        return False
    return not any(line.text.startswith("<!-- dse:") for line in lines_outside_fences(text))


def render_matrix_md(cells: tuple[MatrixCell, ...], *, prompt_tokens: int, gen_tokens: int,
                     sources: dict[str, str], plot: str | None = None, seconds: float | None
                     = None, lang: str = "en") -> str:
    """The whole document in ``lang``: grid, details, and how every figure was made."""
    models, boards, by = _grid(cells)
    lines = [_m("title", lang), "", _m("intro", lang, p=prompt_tokens, g=gen_tokens), ""]
    if seconds is not None:
        lines += [_m("searched", lang, n=len(cells), s=seconds), ""]
    lines += [_m("h.grid", lang), "",
              f"| {_m('model', lang)} | " + " | ".join(boards) + " |",
              "|---|" + "---:|" * len(boards)]
    for m in models:
        row = []
        for b in boards:
            c = by[(m, b)]
            row.append(f"{c.decode_tok_s:.1f}" if c.feasible and c.decode_tok_s
                       else _m("no", lang))
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    lines.append("")
    if plot:
        lines += [f"![{_m('alt', lang)}]({plot})", ""]
    lines += [_m("h.all", lang), "", "| " + " | ".join(_m("cols.all", lang).split("|")) + " |",
              "|---|---|---|---|---|---:|---:|---:|---:|"]
    for c in cells:
        plan = "—" if c.plan is None else f"`{c.plan}`"
        if c.make:
            plan += f"<br>`{c.make}`"
        lines.append(
            f"| {c.model} | {c.board} | {_m('yes' if c.feasible else 'no', lang)} | "
            f"{_why(c, lang)} | {plan} | "
            f"{_num(c.decode_tok_s, '.2f')} | "
            f"{_num(None if c.ttft_ms is None else c.ttft_ms / 1e3, '.2f')} | "
            f"{_num(c.j_per_token, '.3f')} | {_num(c.cpu_tok_s, '.2f')} |")
    lines += ["", _m("foot", lang), "", _m("h.configs", lang), ""]
    lines += [f"- **{name}**: {src}" for name, src in sources.items() if name in models]
    return "\n".join(lines) + "\n"


def render_matrix_png(cells: tuple[MatrixCell, ...], title: str = "", lang: str = "en"
                      ) -> bytes:
    """The grid as a PNG in ``lang``: one square per model and board, coloured by decode
    tok/s (log scale), hatched grey where nothing fits."""
    from matplotlib import rc_context

    from dse.report.fonts import plot_font, rc

    font = plot_font(lang)
    with rc_context(rc(font)):
        return _matrix_png(cells, title, font.lang)


def _matrix_png(cells: tuple[MatrixCell, ...], title: str, lang: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    models, boards, by = _grid(cells)
    speeds = [c.decode_tok_s for c in cells if c.feasible and c.decode_tok_s]
    lo, hi = (min(speeds), max(speeds)) if speeds else (1.0, 10.0)
    norm = LogNorm(vmin=lo, vmax=max(hi, lo * 1.01))
    fig = Figure(figsize=(1.3 * len(boards) + 3.2, 0.55 * len(models) + 1.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    grid = [[math.nan] * len(boards) for _ in models]
    for i, m in enumerate(models):
        for j, b in enumerate(boards):
            c = by[(m, b)]
            if c.feasible and c.decode_tok_s:
                grid[i][j] = c.decode_tok_s
    im = ax.imshow(grid, cmap="viridis", norm=norm, aspect="auto")
    for i, m in enumerate(models):
        for j, b in enumerate(boards):
            c = by[(m, b)]
            if c.feasible and c.decode_tok_s:
                ax.text(j, i, f"{c.decode_tok_s:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if norm(c.decode_tok_s) < 0.6 else "black")
            else:
                ax.add_patch(_no_fit_patch(j, i))
                ax.text(j, i, _m("png.nofit", lang), ha="center", va="center", fontsize=7,
                        color="0.25")
    ax.set_xticks(range(len(boards)), boards, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_title(title or _m("png.title", lang), fontsize=9)
    from matplotlib.ticker import FormatStrFormatter

    bar = fig.colorbar(im, ax=ax, label=_m("png.bar", lang))
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    bar.ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, metadata={"Software": None})
    return buf.getvalue()


def _no_fit_patch(x: float, y: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1.0, 1.0, facecolor="0.9", hatch="//",
                     edgecolor="0.7", linewidth=0.0)


__all__ = ["render_matrix_md", "render_matrix_png"]
