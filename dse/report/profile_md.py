"""Write a Profile as a Markdown report in the seed's format (sections 1-5), in zh or en.

The layout follows the seed report so old and new reports read alike and ``dse import`` reads
both; labels come from ``dse.report.i18n``, the table the importer uses. Section 6 differs on
purpose: the seed ranked layers by CPU time and called that FPGA advice, which the warm-up
artefact of layer 0 turned upside down; we point to ``dse explore`` and list flagged outliers
with their steady-state estimates instead. Unknown values print as ``—``.

What the seed lacks, written only when the profile holds it (so a report made from an imported
one is unchanged and round-trips): the prompt length and measurement notes of a ``dse profile``
run in the header, the measured host roofline (1), prefill vs decode per Linear role (3.4) and
the non-Linear modules (3.5), and links to the per-role and memory plots when their paths are
given. The importer skips all of these (it reads what the seed has), so reports we write still
import, with their count and sum cross-checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from statistics import median, pstdev

from dse.profile.format import ModuleRecord, Profile
from dse.report.i18n import LANGS, UNKNOWN, code_cell, columns, phase_label, t
from dse.report.profile_plots import role_times
from dse.report.table import md_table

TOP_N = 20
#: A memory timeline longer than this goes into a collapsed ``<details>`` block.
MEMORY_ROWS_SHOWN = 30
#: Provenance tool whose notes the header lists (a measured run; imports have their own).
MEASURED_BY = "dse profile"


def _f(x: float | None, digits: int = 2) -> str:
    return UNKNOWN if x is None else f"{x:.{digits}f}"


def _num(x: float | int | None) -> str:
    """Up to two decimals, trailing zeros dropped (3793.0 -> "3793")."""
    return UNKNOWN if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def _signed(x: float | None) -> str:
    return UNKNOWN if x is None else f"{x:+.2f}"


def _share(part: float, whole: float, digits: int) -> str:
    return f"{100 * part / whole:.{digits}f}" if whole else UNKNOWN


def format_params(n: int | None) -> str:
    """The seed's rounded parameter count: 6553600 -> "6.55M"."""
    if n is None:
        return UNKNOWN
    if n >= 10**6:
        return f"{n / 10**6:.2f}M"
    return f"{n / 10**3:.2f}K" if n >= 10**3 else str(n)


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _row_ms(m: ModuleRecord) -> float:
    """A layer's total as printed (0.01 ms): the Linear total is the sum of these, so a report
    we write always passes the importer's sum check however many rows it has."""
    return round(m.total_ms, 2)


def _factor(p: Profile) -> float | None:
    """The normalization factor: as implied by the normalized phase times where all are known
    (the seed's host ran at 3792.8 MHz, printed as 3793, so this matches its layer columns
    better), else current / reference MHz, else unknown."""
    if p.phases and all(ph.normalized_ms is not None for ph in p.phases):
        ms = sum(ph.ms for ph in p.phases)
        if ms > 0:
            return sum(ph.normalized_ms or 0.0 for ph in p.phases) / ms
    s = p.system
    return s.current_mhz / s.reference_mhz if s.current_mhz and s.reference_mhz else None


def _group_of(m: ModuleRecord) -> str:
    """``model.layers.3.mlp.up_proj`` -> ``mlp.up_proj`` (the seed's 模块类型); else the name."""
    match = re.search(r"(?:^|\.)layers\.\d+\.(.+)$", m.name)
    return match.group(1) if match else m.name


def _bullets(lang: str, items: Iterable[tuple[str, str]]) -> list[str]:
    return [f"- **{t(key, lang)}**: {value}" for key, value in items]


# -- sections ----------------------------------------------------------------------------------

def _header(p: Profile, lang: str) -> list[str]:
    lines = [t("title", lang), "",
             f"**{t('generated', lang)}**: {p.measured_at or UNKNOWN}", "",
             f"**{t('model_path', lang)}**: {code_cell(p.model)}", "",
             f"**{t('dtype', lang)}**: {code_cell(p.dtype)}", ""]
    if p.prompt_tokens is not None:
        lines += [f"**{t('prompt_tokens', lang)}**: {p.prompt_tokens}", ""]
    if p.provenance.tool == MEASURED_BY and p.provenance.notes:
        lines += [f"**{t('notes', lang)}**:", "",
                  *(f"- {note}" for note in p.provenance.notes), ""]
    return [*lines, ""]


def _system(p: Profile, lang: str) -> list[str]:
    s = p.system
    mhz = lambda v: UNKNOWN if v is None else f"{_num(v)} MHz"  # noqa: E731
    rows = [("cpu.model", s.cpu_model or UNKNOWN), ("cpu.arch", s.arch or UNKNOWN),
            ("cpu.physical", _num(s.physical_cores)), ("cpu.logical", _num(s.logical_cores)),
            ("cpu.base_mhz", mhz(s.base_mhz)), ("cpu.current_mhz", mhz(s.current_mhz)),
            ("cpu.threads", _num(s.torch_threads))]
    factor = _f(_factor(p), 3)
    return [t("s1", lang), "", t("s1.cpu", lang), "",
            md_table(columns("cols.cpu", lang), [(t(k, lang), v) for k, v in rows]), "",
            t("s1.norm", lang), "",
            *_bullets(lang, [("norm.reference", mhz(s.reference_mhz)), ("norm.factor", factor),
                             ("norm.formula", t("norm.formula_text", lang))]), "",
            *_roofline(p, lang)]


def _roofline(p: Profile, lang: str) -> list[str]:
    """The measured host roofline (only when there is one: imported reports have none)."""
    r = p.system.roofline
    if r.peak_fp32_gflops is None and r.peak_bf16_gflops is None and \
            r.memory_bandwidth_gb_s is None:
        return []
    gf = lambda v: UNKNOWN if v is None else f"{v:.1f} GFLOP/s"  # noqa: E731
    rows = [(t("roof.fp32", lang), gf(r.peak_fp32_gflops)),
            (t("roof.bf16", lang), gf(r.peak_bf16_gflops)),
            (t("roof.bw", lang), UNKNOWN if r.memory_bandwidth_gb_s is None
             else f"{r.memory_bandwidth_gb_s:.1f} GB/s"),
            (t("roof.method", lang), r.method.replace("|", "\\|") or UNKNOWN)]
    return [t("s1.roof", lang), "", md_table(columns("cols.roof", lang), rows), ""]


def _phases(p: Profile, lang: str) -> list[str]:
    total = sum(ph.ms for ph in p.phases)
    norm_total = (sum(ph.normalized_ms for ph in p.phases if ph.normalized_ms is not None)
                  if any(ph.normalized_ms is not None for ph in p.phases) else None)
    rows = [(phase_label(ph.name, lang), _f(ph.ms), _f(ph.normalized_ms),
             _share(ph.ms, total, 1), _signed(ph.mem_delta_mb)) for ph in p.phases]
    rows.append((f"**{t('total', lang)}**", f"**{_f(total)}**", f"**{_f(norm_total)}**",
                 "**100.0**", "-"))
    decode = p.phase("decode")
    n = p.generated_tokens
    throughput = (f"{n / (decode.ms / 1000):.2f} tokens/s" if decode and decode.ms and n
                  else UNKNOWN)
    peak = (f"{p.peak_memory_mb:.2f} MB ({p.peak_memory_mb / 1024:.2f} GB)"
            if p.peak_memory_mb is not None else UNKNOWN)
    per_token = p.decode_ms_per_token
    return [t("s2", lang), "", md_table(columns("cols.phases", lang), rows), "",
            t("s2.summary", lang), "",
            *_bullets(lang, [
                ("sum.total_time", f"{total:.2f} ms ({total / 1000:.2f} s)"),
                ("sum.normalized_total", UNKNOWN if norm_total is None else f"{norm_total:.2f} ms"),
                ("sum.peak_memory", peak),
                ("sum.tokens", str(n)),
                ("sum.ms_per_token", UNKNOWN if per_token is None else f"{per_token:.2f} ms"),
                ("sum.throughput", throughput)]), ""]


def _image(key: str, lang: str, plots: Mapping[str, str], kind: str) -> list[str]:
    from dse.report.sections import image_link

    return [image_link(t(key, lang), plots[kind]), ""] if kind in plots else []


def _phase_split(p: Profile, lang: str, plots: Mapping[str, str]) -> list[str]:
    """3.4: per Linear role, prefill vs decode (only when the profile has the split)."""
    rows = role_times(p, linear=True)
    if not rows:
        return []
    decode_total = sum(r.decode_ms for r in rows)
    table = [(f"`{r.role}`", r.modules, r.prefill_calls, _f(r.prefill_ms), r.decode_calls,
              _f(r.decode_ms), _f(r.decode_ms / r.decode_calls, 3) if r.decode_calls
              else UNKNOWN, _share(r.decode_ms, decode_total, 2)) for r in rows]
    return [t("s3.phase", lang), "", t("split.text", lang), "",
            md_table(columns("cols.phase", lang), table), "",
            *_image("plot.roles", lang, plots, "roles")]


def _others(p: Profile, lang: str) -> list[str]:
    """3.5: the timed modules that are not Linear (norms, attention core, ...), per role."""
    rows = role_times(p, linear=False)
    if not rows:
        return []
    table = [(f"`{r.role}`", r.module_type, r.modules, r.prefill_calls + r.decode_calls,
              _f(r.prefill_ms), _f(r.decode_ms), _f(r.total_ms),
              _f(r.decode_ms / r.decode_calls, 3) if r.decode_calls else UNKNOWN)
             for r in sorted(rows, key=lambda r: -r.total_ms)]
    total = sum(r.total_ms for r in rows)
    return [t("s3.other", lang), "", t("other.text", lang), "",
            f"**{t('other.total', lang)}**: {total:.2f} ms", "",
            md_table(columns("cols.other", lang), table), ""]


def _linears(p: Profile, lang: str, plots: Mapping[str, str]) -> list[str]:
    mods = sorted(p.linears, key=lambda m: -m.total_ms)  # stable: ties keep profile order
    total = round(sum(_row_ms(m) for m in mods), 2)
    norm = _factor(p)
    top = [(i + 1, f"`{m.name}`", m.calls, _f(_row_ms(m)),
            UNKNOWN if norm is None else _f(_row_ms(m) * norm),
            _share(_row_ms(m), total, 2), format_params(m.params))
           for i, m in enumerate(mods[:TOP_N])]
    groups: dict[str, list[ModuleRecord]] = {}
    for m in mods:
        groups.setdefault(_group_of(m), []).append(m)
    gsum = {g: sum(_row_ms(m) for m in ms) for g, ms in groups.items()}
    grows = []
    for g in sorted(groups, key=lambda g: -gsum[g]):
        known = [m.params for m in groups[g] if m.params is not None]
        params = sum(known) if len(known) == len(groups[g]) else None
        grows.append((f"`{g}`", len(groups[g]), _f(gsum[g]), _share(gsum[g], total, 2),
                      format_params(params)))
    full = [(code_cell(m.name), m.calls, _f(_row_ms(m)), _share(_row_ms(m), total, 2),
             _shape(m.input_shape), _shape(m.output_shape), format_params(m.params))
            for m in mods]
    return [t("s3", lang), "",
            f"**{t('lin.count', lang)}**: {len(mods)}", "",
            f"**{t('lin.total', lang)}**: {total:.2f} ms", "", "",
            t("s3.top", lang), "", md_table(columns("cols.top", lang), top), "",
            t("s3.groups", lang), "", md_table(columns("cols.groups", lang), grows), "",
            t("s3.full", lang), "", "<details>",
            f"<summary>{t('lin.expand', lang).format(n=len(mods))}</summary>", "",
            md_table(columns("cols.full", lang), full), "", "</details>", "",
            *_phase_split(p, lang, plots), *_others(p, lang)]


def _tokens(p: Profile, lang: str) -> list[str]:
    ms = [tok.ms for tok in p.tokens]
    stats = [("tok.count", str(len(ms)))]
    if ms:
        stats += [("tok.min", f"{min(ms):.2f} ms"), ("tok.max", f"{max(ms):.2f} ms"),
                  ("tok.mean", f"{sum(ms) / len(ms):.2f} ms"),
                  ("tok.std", f"{pstdev(ms):.2f} ms"), ("tok.median", f"{median(ms):.2f} ms")]
    rows = [(tok.index, _num(tok.token_id), code_cell(tok.text), _f(tok.ms),
             _f(tok.normalized_ms), _f(tok.mem_mb)) for tok in p.tokens]
    return [t("s4", lang), "", t("s4.stats", lang), "", *_bullets(lang, stats), "",
            t("s4.list", lang), "", "<details>",
            f"<summary>{t('tok.expand', lang).format(n=len(rows))}</summary>", "",
            md_table(columns("cols.tokens", lang), rows), "", "</details>", ""]


def _memory(p: Profile, lang: str, plots: Mapping[str, str]) -> list[str]:
    rows = [(_f(s.t_s), _f(s.rss_mb), _f(s.vms_mb), _f(s.sys_used_mb), _f(s.sys_total_mb))
            for s in p.memory]
    table = [md_table(columns("cols.memory", lang), rows), ""]
    if len(rows) > MEMORY_ROWS_SHOWN:
        table = ["<details>", f"<summary>{t('mem.expand', lang).format(n=len(rows))}</summary>",
                 "", *table, "</details>", ""]
    return [t("s5", lang), "", *_image("plot.memory", lang, plots, "memory"), *table]


def _next_step(p: Profile, lang: str) -> list[str]:
    flagged = [m for m in p.modules if m.outlier]
    lines = [t("s6", lang), "", t("next.text", lang), "", t("s6.outliers", lang), ""]
    if not flagged:
        return [*lines, t("out.none", lang), ""]
    lines += [t("out.intro", lang), ""]
    for m in flagged:
        o = m.outlier
        assert o is not None
        reason = t("out.warmup" if m.layer_index == 0 else "out.other", lang)
        lines.append("- " + t("out.item", lang).format(
            name=m.name, total=_f(m.total_ms), steady=_f(o.steady_total_ms),
            ratio=f"{o.ratio:.1f}", excess=_f(o.excess_ms), reason=reason))
    return [*lines, ""]


def render_profile_report(profile: Profile, lang: str = "zh", *,
                          plots: Mapping[str, str] | None = None) -> str:
    """The whole report as Markdown text (ends with a newline).

    ``plots`` maps ``roles``/``memory`` to image paths relative to the report (from
    ``dse.report.profile_plots.write_profile_plots``); without it no image is linked.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    figs = dict(plots or {})
    parts = (_header, _system, _phases, lambda p, lg: _linears(p, lg, figs), _tokens,
             lambda p, lg: _memory(p, lg, figs), _next_step)
    lines = [line for part in parts for line in part(profile, lang)]
    return "\n".join([*lines, "---", "", t("footer", lang)]) + "\n"


__all__ = ["TOP_N", "format_params", "render_profile_report"]
