"""Plots for the exploration section: a roofline of the best plan and the Pareto scatter.

matplotlib is imported inside the functions and drives the Agg canvas directly (no pyplot,
no global backend switch), so importing this module costs nothing and plotting works
headless on the board's PS. Every PNG is rendered in memory and written atomically, so a
report never links to half a file.

Why the layouts are fixed: a figure laid out by matplotlib's constrained layout is measured
and drawn several times over (most of a report run's time went there), and log axes' default
labels are typeset as TeX (10^2). Each figure here has fixed margins, sized for its legend's
rows, and plain number labels, so it is drawn once (the roofline twice: its labels are placed
in pixels).

Language: every function takes ``lang`` (zh or en) and draws every word in it
(``dse.report.plot_text``), with the fonts ``dse.report.fonts.plot_font`` finds; a Chinese
plot without any CJK font is drawn in English, and ``write_plots`` returns the note saying so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from dse.io import atomic_write_bytes
from dse.model.cost import CallCost
from dse.report.numbers import ms as fmt_ms
from dse.report.plot_text import has as _has
from dse.report.plot_text import plan_name, pt
from dse.search.explore import ExploreResult, RankedPlan

_BOUND_COLORS = {"compute": "tab:blue", "ddr": "tab:red", "link": "tab:purple",
                 "overhead": "tab:orange"}
_PHASE_MARKERS = {"decode": "o", "prefill": "s"}
_DPI = 130


@dataclass(frozen=True)
class CallPoint:
    """One distinct accelerator call of a plan, placed on the roofline."""

    kind: str
    phase: str
    count: int
    intensity_ops_per_byte: float
    achieved_ops_per_s: float
    bound: str
    resident: bool


def call_ops(cc: CallCost) -> float:
    """Operations of one call: a multiply-accumulate is two (2 x N x K x M)."""
    return 2.0 * cc.n * cc.k * cc.m


def call_ddr_bytes(cc: CallCost) -> int:
    return cc.weight_bytes + cc.act_bytes + cc.out_bytes


def _kind(call_key: str) -> str:
    """``3.qkv`` -> ``qkv``; ``model.layers.0.mlp.down_proj`` -> ``down_proj``."""
    return call_key.rsplit(".", 1)[-1]


def call_points(plan: RankedPlan) -> list[CallPoint]:
    """The plan's offloaded calls over all its scenarios, equal calls merged (with a count)."""
    merged: dict[tuple, CallPoint] = {}
    for proj in plan.projections:
        for key, cc in proj.calls.items():
            resident = cc.weight_bytes == 0
            sig = (_kind(key), proj.scenario.phase, cc.n, cc.k, cc.m, cc.weight_bytes)
            if sig in merged:
                p = merged[sig]
                merged[sig] = CallPoint(p.kind, p.phase, p.count + 1, p.intensity_ops_per_byte,
                                        p.achieved_ops_per_s, p.bound, p.resident)
                continue
            ops = call_ops(cc)
            merged[sig] = CallPoint(sig[0], proj.scenario.phase, 1,
                                    ops / max(1, call_ddr_bytes(cc)), ops / cc.time_s,
                                    cc.bound, resident)
    return list(merged.values())


def link_bytes_per_s(plan: RankedPlan) -> float | None:
    """The input-stream rate the cost model used, read back from the calls (None if none).

    ``link_s`` is the larger of input bytes / input rate and output bytes / output rate, so
    (weights + activations) / ``link_s`` never exceeds the input rate and equals it on any
    input-bound call (nearly all: weights dwarf outputs). Reading it back keeps the roof
    consistent with the points whatever constants or calibration were in force.
    """
    rates = [(cc.weight_bytes + cc.act_bytes) / cc.link_s
             for proj in plan.projections for cc in proj.calls.values() if cc.link_s > 0]
    return max(rates) if rates else None


def _margins(fig, legend_rows: int = 0, left: float = 0.09, right: float = 0.98,
             top_in: float = 0.45, bottom_in: float = 0.65) -> None:
    """Fixed margins (no layout engine): the axis labels, the title, and ``legend_rows``
    rows of a figure legend below the axes (about 0.2 inch a row at 8 pt)."""
    h = fig.get_figheight()
    bottom = (bottom_in + 0.2 * legend_rows) / h
    fig.subplots_adjust(left=left, right=right, top=1 - top_in / h, bottom=bottom,
                        wspace=0.08)


def _plain_log(axis, si: bool = True) -> None:
    """A log axis labelled with plain numbers (1, 10, 100, 0.5; 2k, 100G with ``si``) instead
    of TeX powers."""
    import math

    from matplotlib.ticker import FuncFormatter, NullFormatter

    def minor(v: float, _pos) -> str:  # 2 and 5 of each decade, for axes spanning few
        if v <= 0:
            return ""
        mantissa = round(v / 10 ** math.floor(math.log10(v)), 6)
        return fmt(v) if mantissa in (2.0, 5.0) else ""

    def fmt(v: float) -> str:
        return _si(v) if si else f"{v:g}"

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v)))
    lo, hi = sorted(axis.get_view_interval())
    few = lo > 0 and hi / lo < 300
    axis.set_minor_formatter(FuncFormatter(minor) if few else NullFormatter())


def _si(v: float) -> str:
    """A tick label: 0.5, 10, 2k, 100G (SI prefixes from a thousand up)."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{prefix}"
    return f"{v:g}"


def _phase(phase: str, lang: str) -> str:
    return pt(f"phase.{phase}", lang) if _has(f"phase.{phase}") else phase


def _bound(bound: str, lang: str) -> str:
    return pt(f"bound.{bound}", lang) if _has(f"bound.{bound}") else bound


def _objective(result: ExploreResult, lang: str) -> str:
    """The objective as the report's section words it (``dse.report.explore_md``)."""
    from dse.report.explore_md import objective_text

    return objective_text(result, lang)


def _render(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _label_points(ax, points: list[CallPoint], lang: str, gap_px: float = 15.0) -> None:
    """Label each point to its right, nudging labels apart vertically where points crowd.

    Calls of one plan often sit almost on top of each other (same packing, similar
    intensity); labels placed at a fixed offset would overprint, so they are spread in
    display space (pixels) and tied to their point by a thin leader.
    """
    pix = [ax.transData.transform((p.intensity_ops_per_byte, p.achieved_ops_per_s))
           for p in points]
    order = sorted(range(len(points)), key=lambda i: -pix[i][1])
    label_y: dict[int, float] = {}
    last: tuple[float, float] | None = None  # (x, y) in pixels of the previous label
    for i in order:
        x, y = pix[i]
        if last is not None and abs(x - last[0]) < 200 and last[1] - y < gap_px:
            y = last[1] - gap_px
        label_y[i] = y
        last = (x, y)
    for i, p in enumerate(points):
        text = pt("roof.point", lang, kind=p.kind,
                  res=pt("roof.resident", lang) if p.resident else "", n=p.count)
        dy = label_y[i] - pix[i][1]
        ax.annotate(text, (p.intensity_ops_per_byte, p.achieved_ops_per_s),
                    xycoords="data", textcoords="offset pixels", xytext=(14, dy - 4),
                    fontsize=8, va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6,
                                "shrinkA": 0, "shrinkB": 4})


def roofline_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes,
                  lang: str = "en") -> Path:
    """Log-log roofline of the best plan's calls against the engine, DDR and link roofs."""
    import numpy as np
    from matplotlib.figure import Figure

    best = result.best
    design = best.plan.design
    board = result.board
    points = call_points(best)
    compute_roof = 2.0 * design.total_lanes * design.clock_hz
    head_roof = 2.0 * design.head_macs * design.clock_hz if design.head else None
    ddr_sus = board.ddr_bytes_per_s
    ddr_peak = board.ddr.peak_bandwidth_gb_s * 1e9
    link = link_bytes_per_s(best)

    xs = [p.intensity_ops_per_byte for p in points]
    roofs = [r for r in (compute_roof, head_roof) if r]
    ridges = [r / ddr_sus for r in roofs]
    lo = min([*xs, *ridges, 1.0]) / 4
    hi = max([x_ * 12 for x_ in xs] + [r * 4 for r in ridges] + [40.0])  # room for labels
    x = np.geomspace(lo, hi, 256)

    fig = Figure(figsize=(9.5, 7.4), dpi=_DPI)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.plot(x, np.full_like(x, compute_roof), color="black", lw=2,
            label=pt("roof.engine", lang, lanes=design.total_lanes, mhz=design.clock_mhz,
                     gops=compute_roof / 1e9))
    if head_roof:
        ax.plot(x, np.full_like(x, head_roof), color="dimgray", lw=1.5, ls="-.",
                label=pt("roof.head", lang, head=design.head, macs=design.head_macs,
                         mhz=design.clock_mhz, gops=head_roof / 1e9))
    ax.plot(x, x * ddr_sus, color="tab:red", lw=2,
            label=pt("roof.ddr", lang, gbs=ddr_sus / 1e9, peak=board.ddr.peak_bandwidth_gb_s,
                     eff=board.ddr.pl_efficiency))
    ax.plot(x, x * ddr_peak, color="tab:red", lw=1, ls=":",
            label=pt("roof.peak", lang, peak=board.ddr.peak_bandwidth_gb_s))
    if link:
        ax.plot(x, x * link, color="tab:purple", lw=1.5, ls="--",
                label=pt("roof.link", lang, gbs=link / 1e9, ports=board.link.hp_ports,
                         bits=board.link.port_width_bits))
    seen: set[tuple[str, str]] = set()
    for p in points:
        key = (p.bound, p.phase)
        ax.scatter(p.intensity_ops_per_byte, p.achieved_ops_per_s, s=70,
                   color=_BOUND_COLORS.get(p.bound, "gray"),
                   marker=_PHASE_MARKERS.get(p.phase, "D"), edgecolor="black", linewidth=0.6,
                   zorder=3, label=pt("roof.call", lang, phase=_phase(p.phase, lang),
                                      bound=_bound(p.bound, lang))
                   if key not in seen else None)
        seen.add(key)
    ymin = min([p.achieved_ops_per_s for p in points] + [compute_roof / 100]) / 3
    ax.set_ylim(ymin, max(roofs) * 4)
    ax.set_xlim(lo, hi)
    _plain_log(ax.xaxis)
    _plain_log(ax.yaxis)
    if not points:
        ax.text(0.5, 0.5, pt("roof.nothing", lang), transform=ax.transAxes,
                ha="center", va="center")
    ax.set_xlabel(pt("roof.x", lang))
    ax.set_ylabel(pt("roof.y", lang))
    ax.set_title(pt("roof.title", lang, board=board.name, plan=plan_name(best.label, lang),
                    design=design.label()), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    # Below the axes, so it never hides a point.
    handles = ax.get_legend_handles_labels()[0]
    _margins(fig, legend_rows=-(-len(handles) // 2), left=0.1)
    fig.legend(fontsize=8, loc="lower center", ncols=2, frameon=False)
    fig.draw_without_rendering()  # settle the ticks so data -> pixel transforms are final
    _label_points(ax, points, lang)
    return write(path, _render(fig), "plot")


def plan_lut(plan: RankedPlan) -> float:
    return plan.decode.resources.lut


def plan_ddr_gb_s(result: ExploreResult, plan: RankedPlan) -> float:
    """DDR weight bandwidth the plan draws over its objective time (as the cloud's points)."""
    weights = plan.scenario_weights([w for _, w in result.objective.scenarios()])
    nbytes = sum(w * p.ddr_weight_bytes for p, w in zip(plan.projections, weights,
                                                         strict=True))
    return nbytes / (plan.objective_ms * 1e-3) / 1e9 if plan.objective_ms > 0 else 0.0


def pareto_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes,
                lang: str = "en") -> Path:
    """Every evaluated design (grey), the Pareto fronts, and the best and naive plans."""
    from matplotlib.figure import Figure

    board = result.board
    against = pt("pareto.against", lang, rt=result.best.decode.baseline.runtime)
    fig = Figure(figsize=(12, 5.8), dpi=_DPI)
    ax_lut, ax_ddr = fig.subplots(1, 2, sharey=True)
    panels = (
        (ax_lut, lambda p: p.lut, result.pareto_lut, plan_lut(result.best),
         plan_lut(result.naive), board.pl.lut * board.caps.lut,
         pt("pareto.lut_cap", lang, cap=board.caps.lut, lut=board.pl.lut),
         pt("pareto.lut_x", lang), "log"),
        (ax_ddr, lambda p: p.ddr_gb_s, result.pareto_ddr, plan_ddr_gb_s(result, result.best),
         plan_ddr_gb_s(result, result.naive), board.ddr_bytes_per_s / 1e9,
         pt("pareto.ddr_cap", lang, gbs=board.ddr_bytes_per_s / 1e9),
         pt("pareto.ddr_x", lang), "log"),
    )
    for ax, cost, front, best_x, naive_x, limit, limit_label, xlabel, scale in panels:
        ax.scatter([cost(p) for p in result.cloud], [p.speedup for p in result.cloud], s=6,
                   color="0.75", label=pt("designs", lang, n=result.designs_evaluated,
                                          shown=len(result.cloud)))
        ax.plot([cost(p) for p in front], [p.speedup for p in front], color="tab:blue",
                marker="o", ms=4, lw=1.5, drawstyle="steps-post",
                label=pt("front", lang))
        ax.scatter([best_x], [result.best.speedup], marker="*", s=260, color="tab:red",
                   edgecolor="black", zorder=4,
                   label=pt("pareto.best", lang, x=result.best.speedup) + (
                       pt("pareto.resident", lang, n=len(result.best.plan.resident))
                       if result.best.plan.resident else ""))
        ax.scatter([naive_x], [result.naive.speedup], marker="X", s=120, color="tab:orange",
                   edgecolor="black", zorder=4,
                   label=pt("pareto.naive", lang, x=result.naive.speedup))
        limit_line = ax.axvline(limit, color="black", ls="--", lw=1, label=limit_label)
        ax.set_xscale(scale)
        _plain_log(ax.xaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(handles=[limit_line], fontsize=8, loc="lower right", framealpha=0.9)
    ax_lut.set_ylabel(pt("pareto.y", lang, against=against,
                         objective=_objective(result, lang)))
    ax_lut.set_title(pt("pareto.lut_title", lang), fontsize=10)
    ax_ddr.set_title(pt("pareto.ddr_title", lang), fontsize=10)
    view = result.objective.view
    fig.suptitle(pt("pareto.title", lang, board=board.name,
                    view=pt(f"view.{view}", lang) if _has(f"view.{view}") else view),
                 fontsize=11)
    # One legend for both panels (same markers), below them so it hides no point.
    handles, labels = ax_lut.get_legend_handles_labels()
    caps = {ax.get_legend().get_texts()[0].get_text() for ax in (ax_lut, ax_ddr)}
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True) if lab not in caps]
    _margins(fig, legend_rows=-(-len(keep) // 4), left=0.08, top_in=0.6)
    fig.legend(*zip(*keep, strict=True), fontsize=8.5, loc="lower center", ncols=4,
               frameon=False)
    return write(path, _render(fig), "plot")


def context_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes,
                 lang: str = "en") -> Path:
    """Decode tok/s against context length for the top plans and the CPU-only baselines."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=_DPI)
    _margins(fig)
    ax = fig.subplots()
    for i, curve in enumerate(result.context_curves):
        xs = [c for c, _ in curve.points]
        ys = [t for _, t in curve.points]
        cpu = not curve.plan
        label = (pt("cpu_only.kv", lang, rt=curve.runtime, kv=curve.kv) if cpu else
                 pt("ctx.plan", lang, plan=plan_name(curve.plan, lang), design=curve.design,
                    kv=curve.kv))
        ax.plot(xs, ys, marker="o", ms=4, lw=1.6, ls="--" if cpu else "-",
                color="0.35" if cpu else f"C{i}", label=label)
        if curve.band:
            ax.fill_between(xs, [lo for lo, _ in curve.band], [hi for _, hi in curve.band],
                            color=f"C{i}", alpha=0.15, lw=0,
                            label=pt("ctx.band", lang, plan=plan_name(curve.plan, lang)))
    obj = result.objective
    ax.axvline(obj.context_tokens, color="black", lw=0.8, ls=":",
               label=pt("ctx.objective", lang, n=obj.context_tokens))
    ax.set_xscale("log", base=2)
    _plain_log(ax.xaxis, si=False)
    ax.set_xlabel(pt("ctx.x", lang))
    ax.set_ylabel(pt("tok_s", lang))
    # headroom above the highest curve or band for the legend (upper right), so it hides none
    top = max((y for c in result.context_curves
               for y in [*(t for _, t in c.points), *(hi for _, hi in c.band)]), default=1.0)
    ax.set_ylim(0, top * 1.5)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    ax.set_title(pt("ctx.title", lang, board=result.board.name, n=obj.sequences), fontsize=10)
    return write(path, _render(fig), "plot")


def sequences_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes,
                   lang: str = "en") -> Path:
    """Decode of a round of S sequences for the top plans (their engines built to hold the
    round) and the CPU-only baselines: aggregate tok/s (left) and each sequence's own tok/s
    (right) against S."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), dpi=_DPI)
    rows = (len(result.sequence_curves) + 1) // 2
    _margins(fig, legend_rows=rows, left=0.07)
    ax_all, ax_one = fig.subplots(1, 2)
    for i, curve in enumerate(result.sequence_curves):
        xs = [s for s, _, _ in curve.points]
        cpu = not curve.plan
        label = (pt("cpu_only.kv", lang, rt=curve.runtime, kv=curve.kv) if cpu else
                 pt("seq.plan", lang, plan=plan_name(curve.plan, lang), design=curve.design,
                    vpc=pt("seq.vpc", lang, n=curve.vpc) if curve.vpc > 1 else ""))
        style = {"marker": "o", "ms": 4, "lw": 1.6, "ls": "--" if cpu else "-",
                 "color": "0.35" if cpu else f"C{i}"}
        ax_all.plot(xs, [t for _, t, _ in curve.points], label=label, **style)
        ax_one.plot(xs, [1e3 / ms for _, _, ms in curve.points], **style)
    obj = result.objective
    for ax, what in ((ax_all, pt("seq.all", lang)), (ax_one, pt("seq.one", lang))):
        ax.axvline(obj.sequences, color="black", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        _plain_log(ax.xaxis, si=False)
        ax.set_xlabel(pt("seq.x", lang))
        ax.set_ylabel(what)
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.25)
    fig.legend(fontsize=8, loc="lower center", ncols=2, frameon=False)
    fig.suptitle(pt("seq.title", lang, board=result.board.name, n=obj.context_tokens,
                    s=obj.sequences), fontsize=10)
    return write(path, _render(fig), "plot")


def ttft_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes,
              lang: str = "en") -> Path:
    """Time to first token against the prompt's length for the top plans (their prompts in
    groups of G positions) and the CPU-only baselines (the prompt in one forward)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=_DPI)
    rows = len(result.prompt_curves)
    _margins(fig, legend_rows=rows)
    ax = fig.subplots()
    for i, curve in enumerate(result.prompt_curves):
        cpu = not curve.plan
        label = (pt("cpu_only.kv", lang, rt=curve.runtime, kv=curve.kv) if cpu else
                 pt("ttft.plan", lang, plan=plan_name(curve.plan, lang), design=curve.design,
                    groups=pt("ttft.groups", lang, g=curve.group) if curve.group else ""))
        ax.plot([n for n, _ in curve.points], [ms / 1e3 for _, ms in curve.points],
                marker="o", ms=4, lw=1.6, ls="--" if cpu else "-",
                color="0.35" if cpu else f"C{i}", label=label)
    obj = result.objective
    ax.axvline(obj.prompt_tokens, color="black", lw=0.8, ls=":",
               label=pt("ttft.objective", lang, n=obj.prompt_tokens))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _plain_log(ax.xaxis, si=False)
    _plain_log(ax.yaxis)
    ax.set_xlabel(pt("ttft.x", lang))
    ax.set_ylabel(pt("ttft.y", lang))
    ax.grid(True, which="both", alpha=0.25)
    fig.legend(fontsize=8, loc="lower center", ncols=1, frameon=False)
    ax.set_title(pt("ttft.title", lang, board=result.board.name), fontsize=10)
    return write(path, _render(fig), "plot")


def energy_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes,
                lang: str = "en") -> Path:
    """Decode tok/s against J/token: every evaluated design, its Pareto front, the ranked
    plans and the CPU-only baselines (the board's power model)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), dpi=_DPI)
    _margins(fig)
    ax = fig.subplots()
    pts = [p for p in result.cloud if p.j_per_token is not None]
    ax.scatter([p.j_per_token for p in pts], [p.tokens_per_s for p in pts], s=6, color="0.75",
               label=pt("designs.shown", lang, shown=len(pts)))
    front = result.pareto_energy
    ax.plot([p.j_per_token for p in front], [p.tokens_per_s for p in front], color="tab:blue",
            marker="o", ms=4, lw=1.5, label=pt("front", lang))
    best = result.best.decode
    if best.energy is not None:
        ax.scatter([best.energy.j_per_token], [best.tokens_per_s], marker="*", s=260,
                   color="tab:red", edgecolor="black", zorder=4,
                   label=pt("energy.best", lang, tok=best.tokens_per_s,
                            j=best.energy.j_per_token))
    for b in best.baselines:
        if b.energy is None:
            continue
        tok_s = best.tokens * 1e3 / b.ms
        ax.scatter([b.energy.j_per_token], [tok_s], marker="s", s=70, color="0.3",
                   edgecolor="black", zorder=4,
                   label=pt("cpu_only", lang, rt=b.runtime)
                   + ("" if b.feasible else pt("no_fit", lang)))
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_xlabel(pt("energy.x", lang))
    ax.set_ylabel(pt("tok_s", lang))
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    ax.set_title(pt("energy.title", lang, board=result.board.name), fontsize=10)
    return write(path, _render(fig), "plot")


def breakdown_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes,
                   lang: str = "en") -> Path:
    """Where a decode token goes: stacked bars for the top plans and the best CPU baseline."""
    from matplotlib.figure import Figure

    from dse.model.project import COMPONENTS

    bars = [(pt("bd.bar", lang, plan=plan_name(rp.label, lang), tok=rp.decode.tokens_per_s),
             rp.decode.components) for rp in [p for p in result.plans if p.feasible][:3]]
    if result.base_breakdown:
        base = result.best.decode.baseline
        bars.append((pt("bd.cpu", lang, rt=base.runtime,
                        tok=result.best.decode.tokens * 1e3 / base.ms), result.base_breakdown))
    fig = Figure(figsize=(9, 5.5), dpi=_DPI)
    _margins(fig, bottom_in=0.75)
    ax = fig.subplots()
    x = range(len(bars))
    bottom = [0.0] * len(bars)
    for i, key in enumerate(COMPONENTS):
        vals = [comp.get(key, 0.0) for _, comp in bars]
        if max(vals, default=0.0) <= 0:
            continue
        ax.bar(x, vals, bottom=bottom, color=f"C{i}", edgecolor="white", width=0.6,
               label=pt(f"comp.{key}", lang) if _has(f"comp.{key}") else key)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for xi, total in zip(x, bottom, strict=True):
        ax.text(xi, total, pt("bd.total", lang, ms=fmt_ms(total)), ha="center", va="bottom",
                fontsize=9)
    ax.set_xticks(list(x), [label for label, _ in bars], fontsize=9)
    ax.set_ylabel(pt("bd.y", lang))
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8.5, loc="upper left", framealpha=0.9)
    ax.set_title(pt("bd.title", lang, board=result.board.name,
                    n=result.objective.context_tokens), fontsize=10)
    return write(path, _render(fig), "plot")


_PLOTS = ("breakdown", "roofline", "pareto", "energy", "context", "sequences", "ttft")


def plot_names(stem: str, board_stem: str) -> dict[str, str]:
    """File names of the plots of one report and board (relative to the report's folder)."""
    return {kind: f"{stem}-{board_stem}-{kind}.png" for kind in _PLOTS}


def write_plots(result: ExploreResult, out_dir: str | Path, stem: str,
                write=atomic_write_bytes, lang: str = "en") -> PlotSet:
    """Write the plots into ``out_dir`` in ``lang``; return their names and the font note.

    ``write(path, data, what)`` puts each PNG in place (default: at once; a command passes
    its ``dse.io.Outputs.add`` to commit them with its other outputs). A Chinese plot set
    without any CJK font is drawn in English and ``PlotSet.note`` says so.
    """
    from matplotlib import rc_context

    from dse.report.fonts import plot_font, rc

    font = plot_font(lang)
    names = plot_names(stem, result.board.stem)
    out = Path(out_dir)
    lg = font.lang
    with rc_context(rc(font)):
        breakdown_plot(result, out / names["breakdown"], write, lg)
        roofline_plot(result, out / names["roofline"], write, lg)
        pareto_plot(result, out / names["pareto"], write, lg)
        if result.pareto_energy:
            energy_plot(result, out / names["energy"], write, lg)
        else:
            names.pop("energy")
        if result.context_curves:
            context_plot(result, out / names["context"], write, lg)
        else:
            names.pop("context")
        for kind, curves, plot in (("sequences", result.sequence_curves, sequences_plot),
                                   ("ttft", result.prompt_curves, ttft_plot)):
            if curves:
                plot(result, out / names[kind], write, lg)
            else:
                names.pop(kind)
    return PlotSet(names, font.lang, font.note)


@dataclass(frozen=True)
class PlotSet:
    """The plots one run wrote: {kind: file name}, the language they are drawn in and, when
    that is not the report's, why (no CJK font)."""

    names: dict[str, str]
    lang: str
    note: str = ""
