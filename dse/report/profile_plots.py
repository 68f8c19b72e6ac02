"""Plots for the profiling report: time per module role (prefill vs decode) and memory.

Same conventions as ``dse.report.plots``: matplotlib imported inside the functions, the Agg
canvas driven directly (no pyplot, no global backend), each PNG rendered in memory and written
atomically. ``role_times`` is the pure part (also used by the report's per-role tables).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from dse.io import atomic_write_bytes
from dse.profile.format import LINEAR_ROLES, Profile
from dse.report.plot_text import pt

_DPI = 130


@dataclass(frozen=True)
class RoleTime:
    """All modules of one role (``q_proj``, ``input_layernorm``, ...) summed."""

    role: str
    module_type: str
    modules: int
    prefill_ms: float
    decode_ms: float
    prefill_calls: int
    decode_calls: int

    @property
    def total_ms(self) -> float:
        return self.prefill_ms + self.decode_ms


def role_times(profile: Profile, *, linear: bool | None = None) -> list[RoleTime]:
    """Per-role sums of the modules with a prefill/decode split (``linear``: only Linear,
    only non-Linear, or both), Linear roles first in execution order, then by total time."""
    acc: dict[tuple[str, str], list[float]] = {}
    for m in profile.modules:
        if m.prefill_ms is None or m.decode_ms is None:
            continue
        if linear is not None and m.is_linear != linear:
            continue
        a = acc.setdefault((m.role, m.module_type), [0, 0.0, 0.0, 0, 0])
        a[0] += 1
        a[1] += m.prefill_ms
        a[2] += m.decode_ms
        a[3] += m.prefill_calls or 0
        a[4] += m.decode_calls or 0
    rows = [RoleTime(role, kind, int(a[0]), a[1], a[2], int(a[3]), int(a[4]))
            for (role, kind), a in acc.items()]
    order = {r: i for i, r in enumerate(LINEAR_ROLES)}
    return sorted(rows, key=lambda r: (r.role not in order, order.get(r.role, 0),
                                       -r.total_ms))


def _render(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def role_time_plot(profile: Profile, path: str | Path, write=atomic_write_bytes,
                   lang: str = "en") -> Path:
    """Horizontal bars per role: prefill and decode time, ms (all calls of all its modules)."""
    from matplotlib.figure import Figure

    rows = role_times(profile)
    fig = Figure(figsize=(9, 0.36 * max(4, len(rows)) + 1.6), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))
    h = 0.4
    ax.barh([i - h / 2 for i in y], [r.prefill_ms for r in rows], height=h, color="tab:orange",
            label=pt("prof.prefill", lang))
    ax.barh([i + h / 2 for i in y], [r.decode_ms for r in rows], height=h, color="tab:blue",
            label=pt("prof.decode", lang, n=profile.generated_tokens))
    ax.set_yticks(y, [f"{r.role} ({r.module_type}, ×{r.modules})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(pt("prof.x", lang))
    ax.set_title(pt("prof.title", lang, model=profile.model, dtype=profile.dtype), fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    if not rows:
        ax.text(0.5, 0.5, pt("prof.none", lang), transform=ax.transAxes,
                ha="center", va="center")
    ax.legend(fontsize=8, loc="lower right")
    return write(path, _render(fig), "plot")


def memory_plot(profile: Profile, path: str | Path, write=atomic_write_bytes,
                lang: str = "en") -> Path:
    """Process RSS and system memory in use over the run, with the peak marked."""
    from matplotlib.figure import Figure

    s = profile.memory
    fig = Figure(figsize=(9, 4.2), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    t = [x.t_s for x in s]
    ax.plot(t, [x.rss_mb for x in s], color="tab:blue", lw=1.6, label=pt("mem.rss", lang))
    used = [(x.t_s, x.sys_used_mb) for x in s if x.sys_used_mb is not None]
    if used:
        ax.plot(*zip(*used, strict=True), color="tab:gray", lw=1, ls="--",
                label=pt("mem.sys", lang))
    if profile.peak_memory_mb is not None:
        ax.axhline(profile.peak_memory_mb, color="tab:red", lw=1, ls=":",
                   label=pt("mem.peak", lang, mb=profile.peak_memory_mb))
    ax.set_xlabel(pt("mem.x", lang))
    ax.set_ylabel(pt("mem.y", lang))
    ax.set_ylim(bottom=0)
    ax.set_title(pt("mem.title", lang, model=profile.model, dtype=profile.dtype), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return write(path, _render(fig), "plot")


def plot_names(stem: str) -> dict[str, str]:
    """File names of a profile's plots (relative to the report's folder)."""
    return {kind: f"{stem}-{kind}.png" for kind in ("roles", "memory")}


def write_profile_plots(profile: Profile, out_dir: str | Path, stem: str,
                        write=atomic_write_bytes, lang: str = "en") -> dict[str, str]:
    """Write both plots into ``out_dir`` in ``lang``; return {"roles": name, "memory": name}.

    ``write(path, data, what)`` puts each PNG in place (default: at once; a command passes
    its ``dse.io.Outputs.add`` to commit them with its other outputs). Chinese plots use
    ``dse.report.fonts.plot_font`` (English if no CJK font can be had).
    """
    from matplotlib import rc_context

    from dse.report.fonts import plot_font, rc

    font = plot_font(lang)
    names = plot_names(stem)
    out = Path(out_dir)
    with rc_context(rc(font)):
        role_time_plot(profile, out / names["roles"], write, font.lang)
        memory_plot(profile, out / names["memory"], write, font.lang)
    return names


__all__ = ["RoleTime", "memory_plot", "plot_names", "role_time_plot", "role_times",
           "write_profile_plots"]
