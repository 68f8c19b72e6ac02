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


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _grid(cells: tuple[MatrixCell, ...]) -> tuple[list[str], list[str], dict]:
    models = list(dict.fromkeys(c.model for c in cells))
    boards = list(dict.fromkeys(c.board for c in cells))
    return models, boards, {(c.model, c.board): c for c in cells}


def render_matrix_md(cells: tuple[MatrixCell, ...], *, prompt_tokens: int, gen_tokens: int,
                     sources: dict[str, str], plot: str | None = None, seconds: float | None
                     = None) -> str:
    """The whole document: grid, details, and how every figure was made."""
    models, boards, by = _grid(cells)
    lines = ["# Which BitNet model fits which board", "",
             f"Every published preset on every board, from the models' configs alone (no "
             f"profile): decode at {prompt_tokens} + {gen_tokens} tokens of context, "
             f"prefill of {prompt_tokens} prompt tokens for the time to first token. Each "
             f"plan is the fastest the shipped overlay builds on the board (its engine "
             f"template), the PS running the `native` runtime (bitnet.cpp class, every "
             f"kernel priced from its instruction count on the board's core); `torch` is not "
             f"measured without a profile. Calibration: none (model defaults and each board "
             f"file's `cost_overrides`).", ""]
    if seconds is not None:
        lines += [f"{len(cells)} cells searched in {seconds:.1f} s.", ""]
    lines += ["## Decode tok/s (fastest buildable plan that fits; \"no\": nothing fits)", "",
              "| model | " + " | ".join(boards) + " |",
              "|---|" + "---:|" * len(boards)]
    for m in models:
        row = []
        for b in boards:
            c = by[(m, b)]
            row.append(f"{c.decode_tok_s:.1f}" if c.feasible and c.decode_tok_s else "no")
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    lines.append("")
    if plot:
        lines += [f"![decode tok/s per model and board]({plot})", ""]
    lines += ["## Every model on every board", "",
              "| model | board | fits | why | plan (engine design + PL units, KV cache) | "
              "decode tok/s | time to first token s | J/token | CPU alone tok/s |",
              "|---|---|---|---|---|---:|---:|---:|---:|"]
    for c in cells:
        plan = "—" if c.plan is None else f"`{c.plan}`"
        if c.make:
            plan += f"<br>`{c.make}`"
        lines.append(
            f"| {c.model} | {c.board} | {'yes' if c.feasible else 'no'} | {c.why} | {plan} | "
            f"{_num(c.decode_tok_s, '.2f')} | "
            f"{_num(None if c.ttft_ms is None else c.ttft_ms / 1e3, '.2f')} | "
            f"{_num(c.j_per_token, '.3f')} | {_num(c.cpu_tok_s, '.2f')} |")
    lines += ["", "J/token is given where the board file has a `power:` model (n/a: —). "
              "\"CPU alone\" is the native runtime with everything on the board's CPU, where "
              "it fits.", "", "## The models' configs", ""]
    lines += [f"- **{name}**: {src}" for name, src in sources.items() if name in models]
    return "\n".join(lines) + "\n"


def render_matrix_png(cells: tuple[MatrixCell, ...], title: str = "") -> bytes:
    """The grid as a PNG: one square per model and board, coloured by decode tok/s (log
    scale), hatched grey where nothing fits."""
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
                ax.text(j, i, "no fit", ha="center", va="center", fontsize=7, color="0.25")
    ax.set_xticks(range(len(boards)), boards, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_title(title or "decode tok/s, fastest buildable plan (native runtime on the PS)",
                 fontsize=9)
    from matplotlib.ticker import FormatStrFormatter

    bar = fig.colorbar(im, ax=ax, label="decode tok/s")
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
