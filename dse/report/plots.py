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
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from dse.io import atomic_write_bytes
from dse.model.cost import CallCost
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


def _render(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _label_points(ax, points: list[CallPoint], gap_px: float = 15.0) -> None:
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
        text = f"{p.kind}{' (resident)' if p.resident else ''} ×{p.count}"
        dy = label_y[i] - pix[i][1]
        ax.annotate(text, (p.intensity_ops_per_byte, p.achieved_ops_per_s),
                    xycoords="data", textcoords="offset pixels", xytext=(14, dy - 4),
                    fontsize=8, va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6,
                                "shrinkA": 0, "shrinkB": 4})


def roofline_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes) -> Path:
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
            label=f"ternary engine roof: 2 × {design.total_lanes} lanes × "
                  f"{design.clock_mhz:g} MHz = {compute_roof / 1e9:.0f} Gop/s")
    if head_roof:
        ax.plot(x, np.full_like(x, head_roof), color="dimgray", lw=1.5, ls="-.",
                label=f"dense head roof ({design.head}): 2 × {design.head_macs} MACs × "
                      f"{design.clock_mhz:g} MHz = {head_roof / 1e9:.1f} Gop/s")
    ax.plot(x, x * ddr_sus, color="tab:red", lw=2,
            label=f"DDR roof: {ddr_sus / 1e9:.2f} GB/s "
                  f"({board.ddr.peak_bandwidth_gb_s:g} peak × {board.ddr.pl_efficiency:g})")
    ax.plot(x, x * ddr_peak, color="tab:red", lw=1, ls=":",
            label=f"DDR peak: {board.ddr.peak_bandwidth_gb_s:g} GB/s")
    if link:
        ax.plot(x, x * link, color="tab:purple", lw=1.5, ls="--",
                label=f"link roof: {link / 1e9:.2f} GB/s input stream "
                      f"({board.link.hp_ports} × {board.link.port_width_bits}-bit HP)")
    seen: set[tuple[str, str]] = set()
    for p in points:
        key = (p.bound, p.phase)
        ax.scatter(p.intensity_ops_per_byte, p.achieved_ops_per_s, s=70,
                   color=_BOUND_COLORS.get(p.bound, "gray"),
                   marker=_PHASE_MARKERS.get(p.phase, "D"), edgecolor="black", linewidth=0.6,
                   zorder=3, label=f"call, {p.phase}, {p.bound}-bound" if key not in seen
                   else None)
        seen.add(key)
    ymin = min([p.achieved_ops_per_s for p in points] + [compute_roof / 100]) / 3
    ax.set_ylim(ymin, max(roofs) * 4)
    ax.set_xlim(lo, hi)
    _plain_log(ax.xaxis)
    _plain_log(ax.yaxis)
    if not points:
        ax.text(0.5, 0.5, "the best plan offloads nothing", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_xlabel("operational intensity (ops per DDR byte: 2·N·K·M / (weight + act + out "
                  "bytes))")
    ax.set_ylabel("achieved throughput (ops/s, call time incl. overhead and PS work)")
    ax.set_title(f"{board.name}: roofline of plan '{best.label}' ({design.label()})",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    # Below the axes, so it never hides a point.
    handles = ax.get_legend_handles_labels()[0]
    _margins(fig, legend_rows=-(-len(handles) // 2), left=0.1)
    fig.legend(fontsize=8, loc="lower center", ncols=2, frameon=False)
    fig.draw_without_rendering()  # settle the ticks so data -> pixel transforms are final
    _label_points(ax, points)
    return write(path, _render(fig), "plot")


def plan_lut(plan: RankedPlan) -> float:
    return plan.decode.resources.lut


def plan_ddr_gb_s(result: ExploreResult, plan: RankedPlan) -> float:
    """DDR weight bandwidth the plan draws over its objective time (as the cloud's points)."""
    weights = [w for _, w in result.objective.scenarios()]
    nbytes = sum(w * p.ddr_weight_bytes for p, w in zip(plan.projections, weights,
                                                         strict=True))
    return nbytes / (plan.objective_ms * 1e-3) / 1e9 if plan.objective_ms > 0 else 0.0


def pareto_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes) -> Path:
    """Every evaluated design (grey), the Pareto fronts, and the best and naive plans."""
    from matplotlib.figure import Figure

    board = result.board
    against = f"the fastest CPU runtime that fits ({result.best.decode.baseline.runtime})"
    fig = Figure(figsize=(12, 5.8), dpi=_DPI)
    ax_lut, ax_ddr = fig.subplots(1, 2, sharey=True)
    panels = (
        (ax_lut, lambda p: p.lut, result.pareto_lut, plan_lut(result.best),
         plan_lut(result.naive), board.pl.lut * board.caps.lut,
         f"LUT cap ({board.caps.lut:.0%} of {board.pl.lut:,})",
         "LUTs used by the accelerator", "log"),
        (ax_ddr, lambda p: p.ddr_gb_s, result.pareto_ddr, plan_ddr_gb_s(result, result.best),
         plan_ddr_gb_s(result, result.naive), board.ddr_bytes_per_s / 1e9,
         f"sustained DDR {board.ddr_bytes_per_s / 1e9:.2f} GB/s",
         "DDR weight bandwidth drawn (GB/s, averaged over the objective time)", "log"),
    )
    for ax, cost, front, best_x, naive_x, limit, limit_label, xlabel, scale in panels:
        ax.scatter([cost(p) for p in result.cloud], [p.speedup for p in result.cloud], s=6,
                   color="0.75", label=f"designs evaluated ({result.designs_evaluated:,}; "
                                       f"{len(result.cloud):,} shown)")
        ax.plot([cost(p) for p in front], [p.speedup for p in front], color="tab:blue",
                marker="o", ms=4, lw=1.5, drawstyle="steps-post",
                label="Pareto front (no residency)")
        ax.scatter([best_x], [result.best.speedup], marker="*", s=260, color="tab:red",
                   edgecolor="black", zorder=4,
                   label=f"best plan: {result.best.speedup:.2f}x" + (
                       f" ({len(result.best.plan.resident)} layers resident)"
                       if result.best.plan.resident else ""))
        ax.scatter([naive_x], [result.naive.speedup], marker="X", s=120, color="tab:orange",
                   edgecolor="black", zorder=4,
                   label=f"naive top-5: {result.naive.speedup:.2f}x")
        limit_line = ax.axvline(limit, color="black", ls="--", lw=1, label=limit_label)
        ax.set_xscale(scale)
        _plain_log(ax.xaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(handles=[limit_line], fontsize=8, loc="lower right", framealpha=0.9)
    ax_lut.set_ylabel(f"speedup vs {against} (x)\nobjective: {result.objective.describe()}")
    ax_lut.set_title("LUT vs speedup", fontsize=10)
    ax_ddr.set_title("DDR bandwidth vs speedup", fontsize=10)
    fig.suptitle(f"{board.name}: design space ({result.objective.view} view)", fontsize=11)
    # One legend for both panels (same markers), below them so it hides no point.
    handles, labels = ax_lut.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True) if "cap" not in lab]
    _margins(fig, legend_rows=-(-len(keep) // 4), left=0.08, top_in=0.6)
    fig.legend(*zip(*keep, strict=True), fontsize=8.5, loc="lower center", ncols=4,
               frameon=False)
    return write(path, _render(fig), "plot")


def context_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes) -> Path:
    """Decode tok/s against context length for the top plans and the CPU-only baselines."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=_DPI)
    _margins(fig)
    ax = fig.subplots()
    for i, curve in enumerate(result.context_curves):
        xs = [c for c, _ in curve.points]
        ys = [t for _, t in curve.points]
        cpu = curve.label.startswith("CPU only")
        ax.plot(xs, ys, marker="o", ms=4, lw=1.6, ls="--" if cpu else "-",
                color="0.35" if cpu else f"C{i}", label=curve.label)
    obj = result.objective
    ax.axvline(obj.context_tokens, color="black", lw=0.8, ls=":",
               label=f"objective's context ({obj.context_tokens})")
    ax.set_xscale("log", base=2)
    _plain_log(ax.xaxis, si=False)
    ax.set_xlabel("context length (tokens in the KV cache)")
    ax.set_ylabel("decode tokens per second")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    ax.set_title(f"{result.board.name}: decode tok/s vs context ({obj.sequences} "
                 f"sequence(s))", fontsize=10)
    return write(path, _render(fig), "plot")


def energy_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes) -> Path:
    """Decode tok/s against J/token: every evaluated design, its Pareto front, the ranked
    plans and the CPU-only baselines (the board's power model)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), dpi=_DPI)
    _margins(fig)
    ax = fig.subplots()
    pts = [p for p in result.cloud if p.j_per_token is not None]
    ax.scatter([p.j_per_token for p in pts], [p.tokens_per_s for p in pts], s=6, color="0.75",
               label=f"designs evaluated ({len(pts):,} shown)")
    front = result.pareto_energy
    ax.plot([p.j_per_token for p in front], [p.tokens_per_s for p in front], color="tab:blue",
            marker="o", ms=4, lw=1.5, label="Pareto front (no residency)")
    best = result.best.decode
    if best.energy is not None:
        ax.scatter([best.energy.j_per_token], [best.tokens_per_s], marker="*", s=260,
                   color="tab:red", edgecolor="black", zorder=4,
                   label=f"best plan: {best.tokens_per_s:.2f} tok/s, "
                         f"{best.energy.j_per_token:.3f} J/token")
    for b in best.baselines:
        if b.energy is None:
            continue
        tok_s = best.tokens * 1e3 / b.ms
        ax.scatter([b.energy.j_per_token], [tok_s], marker="s", s=70, color="0.3",
                   edgecolor="black", zorder=4,
                   label=f"CPU only, {b.runtime}" + ("" if b.feasible else " (does not fit)"))
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_xlabel("joules per generated token (whole board)")
    ax.set_ylabel("decode tokens per second")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    ax.set_title(f"{result.board.name}: speed vs energy per token", fontsize=10)
    return write(path, _render(fig), "plot")


_COMPONENT_LABELS = {
    "ternary_pl": "ternary matmuls (PL)", "ternary_cpu": "ternary matmuls (CPU)",
    "head": "output head", "attention": "attention", "norms_quant_rope_residual":
    "norms, quant, RoPE, residuals", "elementwise": "FFN element-wise",
    "handoff": "hand-offs + per-call overhead", "sampling": "sampling"}


def breakdown_plot(result: ExploreResult, path: str | Path, write=atomic_write_bytes) -> Path:
    """Where a decode token goes: stacked bars for the top plans and the best CPU baseline."""
    from matplotlib.figure import Figure

    from dse.model.project import COMPONENTS

    bars = [(f"{rp.label}\n{rp.decode.tokens_per_s:.1f} tok/s", rp.decode.components)
            for rp in [p for p in result.plans if p.feasible][:3]]
    if result.base_breakdown:
        base = result.best.decode.baseline
        bars.append((f"CPU only ({base.runtime})\n{result.best.decode.tokens * 1e3 / base.ms:.1f} "
                     f"tok/s", result.base_breakdown))
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
               label=_COMPONENT_LABELS.get(key, key))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for xi, total in zip(x, bottom, strict=True):
        ax.text(xi, total, f"{total:,.1f} ms", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(x), [label for label, _ in bars], fontsize=9)
    ax.set_ylabel("ms per decode token")
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8.5, loc="upper left", framealpha=0.9)
    ax.set_title(f"{result.board.name}: where a decode token goes "
                 f"({result.objective.context_tokens} tokens of context)", fontsize=10)
    return write(path, _render(fig), "plot")


_PLOTS = ("breakdown", "roofline", "pareto", "energy", "context")


def plot_names(stem: str, board_stem: str) -> dict[str, str]:
    """File names of the plots of one report and board (relative to the report's folder)."""
    return {kind: f"{stem}-{board_stem}-{kind}.png" for kind in _PLOTS}


def write_plots(result: ExploreResult, out_dir: str | Path, stem: str,
                write=atomic_write_bytes) -> dict[str, str]:
    """Write the plots into ``out_dir``; return {kind: file name}.

    ``write(path, data, what)`` puts each PNG in place (default: at once; a command passes
    its ``dse.io.Outputs.add`` to commit them with its other outputs).
    """
    names = plot_names(stem, result.board.stem)
    out = Path(out_dir)
    breakdown_plot(result, out / names["breakdown"], write)
    roofline_plot(result, out / names["roofline"], write)
    pareto_plot(result, out / names["pareto"], write)
    if result.pareto_energy:
        energy_plot(result, out / names["energy"], write)
    else:
        names.pop("energy")
    if result.context_curves:
        context_plot(result, out / names["context"], write)
    else:
        names.pop("context")
    return names
