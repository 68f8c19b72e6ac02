"""Turn the recorder's raw event stream into per-call records and per-module ModuleRecords.

Pure Python (no torch), so it is tested and reasoned about apart from the measuring. The
stream (``dse.profile.hooks.RawTrace``) holds a start and an end event per call, nested when a
timed module calls timed children (attention -> q/k/v/o and its sub-norm). A module of an
exclusive kind (``KINDS_EXCLUSIVE``: the attention module) is charged its own time minus its
timed children's, which is the attention core; every other module is charged its whole call.
Each call belongs to the phase of the last ``mark`` at or before its start event and carries
the shapes probed for its module in that phase.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from dse.profile.format import ModuleRecord, layer_index_of, role_of
from dse.profile.hooks import KINDS_EXCLUSIVE, RawTrace
from dse.profile.outliers import flag_warmup_outliers

#: Phase of calls made before the first ``mark`` (none in a normal run).
UNMARKED = ""


@dataclass(frozen=True)
class Call:
    """One timed call of one module."""

    module: int
    phase: str
    start_ns: int
    #: Whole call, children included.
    inclusive_ns: int
    #: Charged time: inclusive minus timed children for exclusive kinds, else inclusive.
    ns: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def _phase_finder(trace: RawTrace):
    marks = sorted(trace.marks, key=lambda m: m[1])
    starts = [j for _, j in marks]
    names = [p for p, _ in marks]

    def phase_of(event_index: int) -> str:
        k = bisect_right(starts, event_index) - 1
        return names[k] if k >= 0 else UNMARKED

    return phase_of


def calls_of(trace: RawTrace) -> list[Call]:
    """Every completed call, in start order (a call cut short by an exception is dropped)."""
    phase_of = _phase_finder(trace)
    shapes: dict[tuple[str, int], tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for j, i, in_shape, out_shape in trace.probes:
        shapes.setdefault((phase_of(j), i), (in_shape, out_shape))
    exclusive = [k in KINDS_EXCLUSIVE for k in trace.kinds]
    stack: list[list[int]] = []  # [module, start_ns, start_event, children_ns]
    out: list[tuple[int, Call]] = []
    for j, (ev, t) in enumerate(zip(trace.events, trace.times_ns, strict=True)):
        if ev >= 0:
            stack.append([ev, t, j, 0])
            continue
        module = ~ev
        while stack and stack[-1][0] != module:  # an inner call that never ended
            stack.pop()
        if not stack:
            continue
        _, t0, j0, children = stack.pop()
        dur = t - t0
        if stack:
            stack[-1][3] += dur
        phase = phase_of(j0)
        in_shape, out_shape = shapes.get((phase, module), ((), ()))
        out.append((j0, Call(module, phase, t0, dur, dur - children if exclusive[module] else dur,
                             in_shape, out_shape)))
    out.sort(key=lambda x: x[0])
    return [c for _, c in out]


def module_records(trace: RawTrace, calls: Sequence[Call],
                   phases: Sequence[str] = ("prefill", "decode")) -> tuple[ModuleRecord, ...]:
    """One record per timed module (in model order) over the calls of ``phases``.

    ``total_ms`` sums the prefill and decode calls; shapes are the decode probe's where the
    module ran in decode (one token: what the cost model sizes calls by), else the prefill's.
    Modules that never ran are left out. Warm-up outliers are flagged as for an imported
    report (with warm-up runs excluded, normally none is).
    """
    n = len(trace.names)
    ns = {p: [0] * n for p in phases}
    count = {p: [0] * n for p in phases}
    shape: dict[tuple[str, int], tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for c in calls:
        if c.phase not in ns:
            continue
        ns[c.phase][c.module] += c.ns
        count[c.phase][c.module] += 1
        shape.setdefault((c.phase, c.module), (c.input_shape, c.output_shape))
    records = []
    pre, dec = ("prefill", "decode") if set(phases) >= {"prefill", "decode"} else (None, None)
    for i, name in enumerate(trace.names):
        calls_i = sum(count[p][i] for p in phases)
        if not calls_i:
            continue
        in_shape, out_shape = next(
            (shape[(p, i)] for p in reversed(phases) if (p, i) in shape), ((), ()))
        records.append(ModuleRecord(
            name=name, module_type=trace.kinds[i], role=role_of(name),
            layer_index=layer_index_of(name),
            input_shape=in_shape or (1,), output_shape=out_shape or (1,),
            params=trace.params[i], calls=calls_i,
            total_ms=sum(ns[p][i] for p in phases) / 1e6,
            prefill_ms=ns[pre][i] / 1e6 if pre else None,
            decode_ms=ns[dec][i] / 1e6 if dec else None,
            prefill_calls=count[pre][i] if pre else None,
            decode_calls=count[dec][i] if dec else None,
        ))
    return flag_warmup_outliers(records)


__all__ = ["UNMARKED", "Call", "calls_of", "module_records"]
