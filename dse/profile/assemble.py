"""Assemble a Profile from one run's raw data and the host description (pure, no torch).

Normalized times follow the seed: ``normalized = measured x (current MHz / reference MHz)``,
applied to phases and tokens (the report applies it to layers). Values are rounded to what
they can mean: times to 0.1 us, memory to 0.01 MB.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from dse.profile.calls import calls_of, module_records
from dse.profile.format import (
    PHASES,
    MemorySample,
    Phase,
    Profile,
    Provenance,
    SystemInfo,
    Token,
)
from dse.profile.runner import RunData

TOOL = "dse profile"


def _ms(x: float) -> float:
    return round(x, 4)


def _mb(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def build_profile(data: RunData, system: SystemInfo, *, lang: str = "zh",
                  created: str | None = None, measured_at: str | None = None) -> Profile:
    """The Profile of a run. ``created`` (UTC ISO) and ``measured_at`` (local, as the seed
    prints it) default to now."""
    factor = system.normalization if system.current_mhz and system.reference_mhz else None

    def norm(ms: float) -> float | None:
        return _ms(ms * factor) if factor else None

    phases = tuple(Phase(name=p, ms=_ms(data.phases_ms[p]), normalized_ms=norm(data.phases_ms[p]),
                         mem_delta_mb=_mb(data.phase_mem_mb.get(p)))
                   for p in PHASES if p in data.phases_ms)
    tokens = tuple(Token(index=i + 1, token_id=tid, text=text, ms=_ms(ms), normalized_ms=norm(ms),
                         mem_mb=_mb(mem))
                   for i, (tid, text, ms, mem) in enumerate(zip(
                       data.token_ids, data.token_texts, data.token_ms, data.token_mem_mb,
                       strict=True)))
    modules = tuple(replace(m, total_ms=_ms(m.total_ms),
                            prefill_ms=None if m.prefill_ms is None else _ms(m.prefill_ms),
                            decode_ms=None if m.decode_ms is None else _ms(m.decode_ms))
                    for m in module_records(data.trace, calls_of(data.trace)))
    t0 = data.memory[0].t_s if data.memory else 0.0
    memory = tuple(MemorySample(t_s=round(s.t_s - t0, 3), rss_mb=round(s.rss_mb, 2),
                                vms_mb=_mb(s.vms_mb), sys_used_mb=_mb(s.sys_used_mb),
                                sys_total_mb=_mb(s.sys_total_mb)) for s in data.memory)
    now = datetime.now(timezone.utc)
    return Profile(
        model=data.source.label, dtype=data.dtype, system=system, phases=phases,
        modules=modules, tokens=tokens, memory=memory,
        provenance=Provenance(tool=TOOL, created=created or now.isoformat(timespec="seconds"),
                              source=data.source.label, versions=dict(data.versions),
                              notes=tuple(data.notes)),
        prompt_tokens=data.prompt_len, peak_memory_mb=_mb(data.peak_rss_mb),
        measured_at=measured_at or now.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        report_lang=lang, model_config=data.model_config,
    )


__all__ = ["TOOL", "build_profile"]
